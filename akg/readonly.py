"""Read-only Cypher, whatever is typed: the gate behind `akg query` and the UI's console.

Three layers, because the two servers differ (ArcadeDB 26.10 answers `EXPLAIN` with query type
`w` for every query, ignores transaction timeouts, and even *executes* schema commands under
`EXPLAIN`; schema commands are also not rolled back there):

1. A lexical check: after comments, the statement must begin with a reading clause (MATCH,
   OPTIONAL MATCH, WITH, UNWIND, RETURN, CALL, SHOW). Schema and admin commands (CREATE INDEX,
   DROP CONSTRAINT...) can only stand at the start of a statement, so they stop here, before
   anything reaches the server.
2. On Neo4j, `EXPLAIN` must report query type `r`.
3. The query runs in an explicit transaction that is always rolled back, never committed, and the
   result's own summary must report type `r` with no updates. A write that slipped past 1 and 2
   (say inside `CALL { ... }`) is refused and leaves nothing behind.

A timeout is sent to the server (Neo4j enforces it) and also enforced by the client, which stops
waiting; the row limit stops fetching after `limit` rows and says the result was truncated.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import neo4j
from neo4j import graph as ng

from akg.errors import QueryRefused, QueryTimeout
from akg.graph import Graph, wrap_driver_errors

READ_LEADS = {"MATCH", "OPTIONAL", "WITH", "UNWIND", "RETURN", "CALL", "SHOW"}
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", re.S)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


def lexical_check(text: str) -> None:
    code = _COMMENTS.sub(" ", _STRINGS.sub("''", text)).strip()
    if not code:
        raise QueryRefused("the query is empty")
    if ";" in code.rstrip().rstrip(";"):
        raise QueryRefused("one statement at a time: the query contains ';'")
    words = code.split(None, 2)
    lead = words[0].upper()
    if lead in {"EXPLAIN", "PROFILE"}:
        raise QueryRefused(f"{lead} is not offered here: EXPLAIN executes schema commands on the embedded server, and PROFILE runs the query")
    if lead not in READ_LEADS:
        raise QueryRefused(f"read-only: a query may not begin with {words[0]!r}; "
                           f"it must begin with one of {', '.join(sorted(READ_LEADS))}. The graph is unchanged.")


def to_plain(value: Any) -> Any:
    """Driver values to JSON-friendly Python: nodes, relationships and paths become dicts."""
    if isinstance(value, ng.Node):
        return {"labels": sorted(value.labels), "properties": {k: to_plain(v) for k, v in value.items()}}
    if isinstance(value, ng.Relationship):
        return {"type": value.type,
                "start": value.start_node.get("name") if value.start_node else None,
                "end": value.end_node.get("name") if value.end_node else None,
                "properties": {k: to_plain(v) for k, v in value.items()}}
    if isinstance(value, ng.Path):
        return {"nodes": [to_plain(n) for n in value.nodes], "relationships": [to_plain(r) for r in value.relationships]}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # temporal and spatial values


def run_read_only(graph: Graph, text: str, params: dict | None = None, *,
                  timeout: float = 30.0, limit: int = 1000) -> QueryResult:
    lexical_check(text)
    params = params or {}
    if graph.dialect == "neo4j":
        with wrap_driver_errors("query"), graph.session(default_access_mode=neo4j.READ_ACCESS) as s:
            explained = s.run("EXPLAIN " + text, params).consume()
        if explained.query_type != "r":
            raise QueryRefused(f"read-only: the server classifies this query as {explained.query_type!r}, not read ('r'). The graph is unchanged.")

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            with wrap_driver_errors("query"), graph.session(default_access_mode=neo4j.READ_ACCESS) as s:
                tx = s.begin_transaction(timeout=timeout)
                try:
                    result = tx.run(text, params)
                    rows, truncated = [], False
                    for record in result:
                        if len(rows) == limit:
                            truncated = True
                            break
                        rows.append({k: to_plain(v) for k, v in record.items()})
                    columns = list(result.keys())
                    summary = result.consume()
                finally:
                    tx.rollback()  # never commit, whatever happened
            c = summary.counters
            if summary.query_type not in (None, "r") or c.contains_updates or c.contains_system_updates:
                raise QueryRefused(f"read-only: the query turned out to write (type {summary.query_type!r}); "
                                   "it was rolled back and the graph is unchanged.")
            outcome["result"] = (columns, rows, truncated)
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e

    started = time.monotonic()
    worker = threading.Thread(target=work, name="akg-read-only-query", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    if worker.is_alive():
        raise QueryTimeout(f"the query ran past its {timeout:g} s limit and was abandoned (nothing was changed)")
    if "error" in outcome:
        raise outcome["error"]
    columns, rows, truncated = outcome["result"]
    return QueryResult(columns, rows, truncated, time.monotonic() - started)
