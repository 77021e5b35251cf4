"""`akg query`: read-only Cypher with parameters, a timeout and a row limit."""

from __future__ import annotations

import json

import click

from akg.cli import echo_json
from akg.connect import connect_read_only
from akg.readonly import run_read_only


def parse_param(text: str) -> tuple[str, object]:
    """`k=v`: v is read as JSON when it parses (5, 1.5, true, ["a"]), else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise click.BadParameter(f"{text!r}: expected NAME=VALUE", param_hint="--param")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


@click.command()
@click.argument("cypher")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="A query parameter ($NAME); VALUE is JSON if it parses, else a string. Repeatable.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, max=3600, min_open=True),
              help="Seconds before the query is abandoned.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1), help="Most rows to return.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def query(cypher: str, params: tuple[str, ...], timeout: float, limit: int, as_json: bool) -> None:
    """Run a read-only Cypher query. Anything that would write is refused; the graph stays unchanged.

    \b
    akg query 'MATCH (:Entity {name: $name})-[r]->(t) RETURN type(r) AS rel, t.name AS tail' --param name=dog
    """
    values = dict(parse_param(p) for p in params)
    with connect_read_only() as graph:  # the server refuses this connection's writes; no migrations either
        result = run_read_only(graph, cypher, values, timeout=timeout, limit=limit)
    if as_json:
        echo_json({"columns": result.columns, "rows": result.rows, "truncated": result.truncated,
                   "row_count": len(result.rows), "seconds": round(result.seconds, 4)})
        return
    if not result.rows:
        click.echo("(no rows)")
    else:
        import pandas as pd

        frame = pd.DataFrame([{k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                               for k, v in row.items()} for row in result.rows], columns=result.columns)
        click.echo(frame.to_string(index=False))
    tail = f"{len(result.rows)} row(s) in {result.seconds:.3f} s"
    if result.truncated:
        tail += f"; truncated at --limit {limit}"
    click.echo(tail, err=True)
