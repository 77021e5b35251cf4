"""Read-only Cypher, whatever is typed: the gate behind `akg query` and the UI's console.

Three layers, because the two servers differ (ArcadeDB 26.10 answers `EXPLAIN` with query type
`w` for every query, ignores transaction timeouts, and even *executes* schema commands under
`EXPLAIN`; schema commands are also not rolled back there):

1. A lexical check, by one left-to-right scan of comments, strings and words: the statement must
   begin with a reading clause (MATCH, OPTIONAL MATCH, WITH, UNWIND, RETURN, CALL, SHOW); write
   and schema keywords (CREATE, MERGE, SET, DELETE, DROP, LOAD...) are refused wherever they
   stand; a procedure may be called only from a short list of read procedures (ArcadeDB's
   `do.when` would run any command). Nothing reaches the server before this passes.
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
# Keywords that have no place in a read: refused wherever they stand outside strings and comments.
# (LOAD: `LOAD CSV FROM 'file:///...'` reads the server's files, credentials included.)
WRITE_WORDS = {"CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "LOAD", "FOREACH", "ALTER",
               "GRANT", "DENY", "REVOKE", "RENAME", "TERMINATE", "START", "STOP", "ENABLE", "DEALLOCATE", "REALLOCATE"}
# Procedures may do anything (ArcadeDB's `do.when` runs schema commands), so only these are callable.
READ_PROCEDURES = {"db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
                   "db.schema.nodetypeproperties", "db.schema.reltypeproperties", "dbms.components", "db.info"}
# One left-to-right scan, so that a quote inside a comment (or the reverse) cannot hide code.
_TOKENS = re.compile(r"""
    (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>`[^`]*`)
  | (?P<unterminated>/\*|['"`])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<semicolon>;)
  | (?P<other>\S)
""", re.S | re.X)


# ArcadeDB ignores transaction timeouts: a query abandoned at its time limit keeps running on the
# server until it ends. At most this many run at once, so repeated slow queries cannot pile up.
MAX_RUNNING = 2
_RUNNING = threading.BoundedSemaphore(MAX_RUNNING)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


def lexical_check(text: str) -> None:
    """Refuse, before anything is sent, what a read-only query cannot contain (layer 1)."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKENS.finditer(text) if m.lastgroup != "comment"]
    if any(kind == "unterminated" for kind, _ in tokens):
        raise QueryRefused("the query has an unterminated string, quoted name or comment")
    if not tokens:
        raise QueryRefused("the query is empty")
    if any(kind == "semicolon" for kind, _ in tokens[:-1]):
        raise QueryRefused("one statement at a time: the query contains ';'")
    lead = tokens[0][1].upper()
    if lead in {"EXPLAIN", "PROFILE"}:
        raise QueryRefused(f"{lead} is not offered here: EXPLAIN executes schema commands on the embedded server, "
                           "and PROFILE runs the query")
    if tokens[0][0] != "word" or lead not in READ_LEADS:
        raise QueryRefused(f"read-only: a query may not begin with {tokens[0][1]!r}; "
                           f"it must begin with one of {', '.join(sorted(READ_LEADS))}. The graph is unchanged.")
    for i, (kind, value) in enumerate(tokens):
        if kind != "word":
            continue
        if value.upper() in WRITE_WORDS:
            raise QueryRefused(f"read-only: {value.upper()} is not allowed in a query here. The graph is unchanged.")
        if value.upper() == "CALL":
            following = tokens[i + 1] if i + 1 < len(tokens) else ("end", "")
            if following == ("other", "{"):
                continue  # a subquery: its clauses are checked like the rest
            # the procedure's name, however it is written: db.labels, `db.labels`, db.`labels`
            parts, j = [], i + 1
            while j < len(tokens) and (tokens[j][0] in ("word", "name") or tokens[j] == ("other", ".")):
                parts.append(tokens[j][1].strip("`"))
                j += 1
            procedure = "".join(parts)
            if procedure.lower() not in READ_PROCEDURES:
                raise QueryRefused(f"read-only: procedure {procedure or '(none)'!r} is not on the list of read procedures "
                                   f"({', '.join(sorted(READ_PROCEDURES))}). The graph is unchanged.")


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

    if not _RUNNING.acquire(blocking=False):
        raise QueryRefused(f"{MAX_RUNNING} earlier queries are still running (past their time limit the server "
                           "finishes them before it lets go); try again in a moment")
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
        finally:
            _RUNNING.release()  # only when the query really ended, abandoned or not

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
