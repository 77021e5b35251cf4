"""The graph connection: one database on one Bolt server (Neo4j 5 or the embedded ArcadeDB).

The driver is created by `akg.connect` and passed in; this module only runs work on it. Every call
runs in an explicit, managed transaction: ArcadeDB (26.10) can apply part of a failed auto-commit
`UNWIND ... MERGE` statement, and explicit transactions are atomic on both servers. Driver errors
are wrapped here into `akg.errors` so that nothing above this module imports `neo4j`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import neo4j
import neo4j.exceptions as nx

from akg.errors import ConfigError, GraphError, GraphUnavailable
from akg.queries import Query

Params = dict[str, Any] | None


@contextlib.contextmanager
def wrap_driver_errors(where: str) -> Iterator[None]:
    try:
        yield
    except nx.AuthError as e:
        raise ConfigError(f"{where}: authentication failed ({e.message}); check AKG_USER/AKG_PASSWORD") from e
    except (nx.ServiceUnavailable, nx.SessionExpired, OSError) as e:
        raise GraphUnavailable(f"{where}: the graph server is not reachable ({e}); see `akg db status`") from e
    except nx.Neo4jError as e:
        raise GraphError(f"{where}: {e.message or e}") from e
    except nx.DriverError as e:
        raise GraphError(f"{where}: {e}") from e


def _text(query: str | Query, relation: str | None) -> tuple[str, str]:
    if isinstance(query, Query):
        return query.render(relation), query.name
    return query, "query"


def _unit(work):
    def tx_work(tx):
        def run(query: str | Query, params: Params = None, relation: str | None = None) -> list[dict]:
            text, _ = _text(query, relation)
            return [r.data() for r in tx.run(text, params or {})]

        return work(run)

    return tx_work


class Graph:
    def __init__(self, driver: neo4j.Driver, database: str, *, describe: str = "", lock_dir=None):
        self.driver = driver
        self.database = database
        self.describe = describe or database
        self.lock_dir = lock_dir  # the embedded server's home: where `exclusive` keeps its lock files
        agent = driver.get_server_info().agent if driver else ""
        # ArcadeDB announces itself as "Neo4j/5.26.0 compatible (ArcadeDB 26.10.2)".
        self.dialect = "arcadedb" if "arcadedb" in agent.lower() else "neo4j"
        self.server_agent = agent

    def session(self, **kw) -> neo4j.Session:
        return self.driver.session(database=self.database, **kw)

    def read(self, query: str | Query, params: Params = None, *, relation: str | None = None) -> list[dict]:
        text, name = _text(query, relation)
        with wrap_driver_errors(name), self.session() as s:
            return s.execute_read(lambda tx: [r.data() for r in tx.run(text, params or {})])

    def write(self, query: str | Query, params: Params = None, *, relation: str | None = None) -> dict:
        """Run one write in its own transaction; return the summary counters as a dict."""
        text, name = _text(query, relation)

        def work(tx):
            return vars(tx.run(text, params or {}).consume().counters)

        with wrap_driver_errors(name), self.session() as s:
            return s.execute_write(work)

    def write_unit(self, work: Callable[[Callable[..., list[dict]]], Any], name: str = "write") -> Any:
        """Run several statements as one atomic transaction (retried on transient errors).

        `work` receives `run(query, params, relation=None) -> rows`.
        """
        with wrap_driver_errors(name), self.session() as s:
            return s.execute_write(_unit(work))

    def read_unit(self, work: Callable[[Callable[..., list[dict]]], Any], name: str = "read") -> Any:
        """Several reads in one transaction (one consistent view); `work` as for `write_unit`."""
        with wrap_driver_errors(name), self.session() as s:
            return s.execute_read(_unit(work))

    @contextlib.contextmanager
    def exclusive(self, name: str):
        """Serialise a whole job (an ingest) against the same job in other processes on this machine.

        ArcadeDB's optimistic transactions let two concurrent ingests both see a triple missing and
        both create it; for the embedded server a file lock in its home rules that out. Neo4j locks
        the ingest lock node inside each transaction (cypher/ingest.cypher), so nothing is needed.
        """
        if self.lock_dir is None:
            yield
            return
        import fcntl
        from pathlib import Path

        path = Path(self.lock_dir) / f"{name}.lock"
        with open(path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
