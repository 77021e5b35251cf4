"""`akg labels`: the label sets for zero-shot classification, and how much of each the AKG covers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from akg.cli import echo_json
from akg.errors import AkgError
from reasoning import labels as L

NO_ENTITY = "—"


class _Group(click.Group):
    """Library errors as clean messages, also when the group is invoked on its own (tests)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AkgError as e:
            raise click.ClickException(str(e)) from e


def _open_graph(use_graph: bool):
    """A graph when one is reachable, else None (and a note on stderr)."""
    if not use_graph:
        return None
    from akg.connect import connect

    try:
        return connect()
    except AkgError as e:
        click.echo(f"note: no graph ({e}); coverage left out", err=True)
        return None


mapping_option = click.option("--mapping", type=click.Path(path_type=Path), default=None,
                              help="salt_event_mapping.tsv or its folder (default: $AKG_LABEL_SETS_DIR, "
                                   "else AKG_HOME/data/label_sets, where `akg dataset fetch` puts it)")
graph_option = click.option("--graph/--no-graph", "use_graph", default=True, show_default=True,
                            help="choose AKG entities and show coverage (when a graph is reachable)")
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")


@click.group(cls=_Group)
def labels() -> None:
    """Label sets: SALT's mappings of 28 datasets' labels to standard events, and custom label files."""


@labels.command("list")
@mapping_option
@graph_option
@json_option
def list_(mapping: Path | None, use_graph: bool, as_json: bool) -> None:
    """Every label set: key, title, label count and, with a graph, AKG coverage."""
    path = L.find_mapping(mapping)
    rows = L.available(path)
    graph = _open_graph(use_graph)
    if graph is not None:
        with graph:
            existing = L.graph_existing(graph)
            for row in rows:
                row["coverage"] = L.resolve_entities(L.load(row["key"], path), existing).coverage()
    if as_json:
        echo_json({"mapping": str(path), "label_sets": rows})
        return
    width = max(len(r["key"]) for r in rows)
    twidth = max(len(r["title"]) for r in rows)
    head = f"{'key':<{width}}  {'title':<{twidth}}  {'labels':>6}"
    click.echo(head + ("  AKG coverage" if graph is not None else ""))
    for r in rows:
        line = f"{r['key']:<{width}}  {r['title']:<{twidth}}  {r['labels']:>6}"
        if "coverage" in r:
            c = r["coverage"]
            line += f"  {c['with_entity']:>4}/{c['labels']:<4} {c['ratio']:6.1%}"
        click.echo(line)
    click.echo(f"(from {path})")


@labels.command("show")
@click.argument("name")
@mapping_option
@graph_option
@json_option
def show(name: str, mapping: Path | None, use_graph: bool, as_json: bool) -> None:
    """One label set (a key from `list`, or a label file): each label, its entity and SALT events."""
    label_set = L.load(name, mapping)
    graph = _open_graph(use_graph)
    coverage = None
    if graph is not None:
        with graph:
            label_set = L.resolve_entities(label_set, L.graph_existing(graph))
        coverage = label_set.coverage()
    if as_json:
        data = {"key": label_set.key, "title": label_set.title, "source": label_set.source,
                "identity": label_set.identity(), "notes": list(label_set.notes),
                "labels": [{"name": lb.name, "text": lb.text, "entity": lb.entity, "events": list(lb.events)}
                           for lb in label_set.labels]}
        if coverage is not None:
            data["coverage"] = coverage
        echo_json(data)
        return
    click.echo(f"{label_set.key}: {label_set.title}, {len(label_set.labels)} labels (from {label_set.source})")
    if coverage is not None:
        click.echo(f"AKG coverage: {coverage['with_entity']}/{coverage['labels']} ({coverage['ratio']:.1%})")
    for note in label_set.notes:
        click.echo(f"note: {note}")
    nwidth = min(40, max(len(lb.name) for lb in label_set.labels))
    twidth = min(40, max(len(lb.text) for lb in label_set.labels))
    ewidth = min(40, max(len(lb.entity or NO_ENTITY) for lb in label_set.labels))
    click.echo(f"{'label':<{nwidth}}  {'text':<{twidth}}  {'entity':<{ewidth}}  SALT events (most specific first)")
    for lb in label_set.labels:
        events = ", ".join(lb.events) if lb.events else NO_ENTITY
        click.echo(f"{lb.name:<{nwidth}}  {lb.text:<{twidth}}  {lb.entity or NO_ENTITY:<{ewidth}}  {events}")
