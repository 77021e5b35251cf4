"""Read-only Cypher, whatever is typed: the gate behind `akg query` and the explorer's console.

Defence in depth, so that no single layer's miss can write, change the schema, call a writing
procedure or read a file:

1. The lexical gate (akg.gate): what a read cannot contain is refused before anything is sent, and
   the server receives the statement as the gate read it (comments removed).
2. The connection (akg.connect.connect_read_only): the server itself refuses writes. On the
   embedded server the query runs as a user whose security group may only read records (no
   schema, no security, no file access); on Neo4j in READ access mode, which Neo4j enforces, and
   `EXPLAIN` must report query type `r` first. LOAD CSV from files is switched off on both servers
   (the embedded server's settings; `docker-compose.yml` for Neo4j).
3. The transaction is always rolled back, never committed, and its summary must report a read.

Runaway work is contained: a query that passes its time limit is stopped on the server
(`TERMINATE TRANSACTIONS`, which both servers understand; Neo4j also enforces the transaction
timeout itself), and at most `MAX_RUNNING` console queries run at once on this machine, counted
across processes with lock files under AKG_HOME. Each console query carries a marker with its
deadline, so one whose process died (killed, machine asleep) is stopped by the next console query.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neo4j import graph as ng

from akg import queries
from akg.errors import AkgError, ConfigError, GraphError, InputError, QueryBusy, QueryRefused, QueryTimeout
from akg.gate import checked_text
from akg.graph import Graph

MAX_RUNNING = 2          # console queries at once on this machine (all processes together)
MAX_TIMEOUT = 3600.0     # seconds; a console query is not a batch job
STOP_WAIT = 5.0          # seconds to wait for a stopped query to let go
_MARKER = re.compile(r"/\*akg-console:([0-9a-f]+):(\d+)\*/")


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


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


# --- slots: at most MAX_RUNNING console queries at once on this machine -------------------------

class _Slot:
    """One of MAX_RUNNING lock files under AKG_HOME/console/, held while a query runs on the server.

    An flock is released by the kernel when its process ends, so a killed process never keeps a slot.
    """

    def __init__(self, home: Path | None):
        self._file = None
        if home is None:
            return
        folder = Path(home) / "console"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(MAX_RUNNING):
            f = open(folder / f"slot-{i}.lock", "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            self._file = f
            return
        raise QueryBusy(f"{MAX_RUNNING} console queries are already running on this machine; "
                           "try again when one of them has finished")

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


# --- stopping queries on the server --------------------------------------------------------------

def _console_transactions(graph: Graph) -> list[tuple[str, str, int]]:
    """(transaction id, marker token, deadline in ms) of the console queries running on the server."""
    with graph.errors("listing running queries"), graph.driver.session(database=graph.database) as s:
        rows = s.run(queries.get("console_transactions").text).data()
    found = []
    for row in rows:
        m = _MARKER.search(row.get("currentQuery") or "")
        if m:
            found.append((row["transactionId"], m.group(1), int(m.group(2))))
    return found


def _terminate(graph: Graph, ids: list[str]) -> None:
    if ids:
        with graph.errors("stopping queries"), graph.driver.session(database=graph.database) as s:
            s.run(queries.get("console_terminate").text, {"ids": ids}).consume()


def stop(graph: Graph, token: str) -> bool:
    """Stop the console query carrying `token` on the server; True if it was running."""
    ids = [tid for tid, t, _ in _console_transactions(graph) if t == token]
    _terminate(graph, ids)
    return bool(ids)


def reap(graph: Graph) -> int:
    """Stop console queries whose deadline has passed (their process died without stopping them)."""
    now_ms = int(time.time() * 1000)
    ids = [tid for tid, _, deadline in _console_transactions(graph) if deadline < now_ms]
    _terminate(graph, ids)
    return len(ids)


# --- the query -----------------------------------------------------------------------------------

def _check_connection(graph: Graph) -> None:
    if not graph.read_only:
        raise ConfigError("read-only queries run on a read-only connection (akg.connect.connect_read_only), "
                          "never on the service's own")


def run_read_only(graph: Graph, text: str, params: dict | None = None, *,
                  timeout: float = 30.0, limit: int = 1000) -> QueryResult:
    _check_connection(graph)
    if not 0 < timeout <= MAX_TIMEOUT:
        raise InputError(f"the timeout must be more than 0 and at most {MAX_TIMEOUT:g} s, got {timeout:g}")
    if limit < 1:
        raise InputError(f"the row limit must be at least 1, got {limit}")
    checked = checked_text(text)
    params = params or {}
    token = secrets.token_hex(8)
    deadline_ms = int((time.time() + timeout + STOP_WAIT) * 1000)
    sent = f"/*akg-console:{token}:{deadline_ms}*/ {checked}"  # how a stuck query is found again
    with contextlib.suppress(AkgError):
        reap(graph)  # best effort: a server that cannot list transactions still answers queries
    if graph.dialect == "neo4j":
        with graph.errors("query"), graph.session() as s:
            explained = s.run("EXPLAIN " + sent, params).consume()
        if explained.query_type != "r":
            raise QueryRefused(f"read-only: the server classifies this query as {explained.query_type!r}, not read ('r'). "
                               "The graph is unchanged.")

    slot = _Slot(graph.home)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            with graph.errors("query"), graph.session() as s:
                tx = s.begin_transaction(timeout=timeout)
                try:
                    result = tx.run(sent, params)
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
        except GraphError as e:
            outcome["error"] = _refused_by_server(e) or e
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e
        finally:
            slot.release()  # only when the query really ended on the server (finished or stopped)

    started = time.monotonic()
    worker = threading.Thread(target=work, name="akg-read-only-query", daemon=True)
    worker.start()
    try:
        worker.join(timeout + 0.5)
    except BaseException:  # Ctrl-C: do not leave the query running on the server
        _stop_quietly(graph, token, worker)
        raise
    if worker.is_alive():
        stopped = _stop_quietly(graph, token, worker)
        raise QueryTimeout(f"the query ran past its {timeout:g} s limit and was "
                           + ("stopped on the server (nothing was changed)" if stopped else
                              "abandoned; the server could not be asked to stop it (nothing was changed)"))
    if "error" in outcome:
        if isinstance(outcome["error"], GraphError) and time.monotonic() - started >= timeout:
            # Neo4j enforces the transaction timeout itself and reports the stop as an error
            raise QueryTimeout(f"the query ran past its {timeout:g} s limit and was stopped on the server "
                               "(nothing was changed)")
        raise outcome["error"]
    columns, rows, truncated = outcome["result"]
    return QueryResult(columns, rows, truncated, time.monotonic() - started)


def _refused_by_server(error: GraphError) -> QueryRefused | None:
    """The server's own refusal of a write (layer 2) as the gate's refusal: one kind of answer."""
    code = getattr(error.__cause__, "code", None) or ""
    if code.endswith(("Security.Forbidden", "Statement.AccessMode")):
        return QueryRefused(f"read-only: the server refused the query on this read-only connection "
                            f"({(getattr(error.__cause__, 'message', None) or code).splitlines()[0]}). The graph is unchanged.")
    return None


def _stop_quietly(graph: Graph, token: str, worker: threading.Thread) -> bool:
    """Ask the server to stop the query and wait (briefly) for it to let go; True if it ended."""
    try:
        stop(graph, token)
    except AkgError:
        pass
    worker.join(STOP_WAIT)
    return not worker.is_alive()
