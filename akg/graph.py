"""The graph connection: one database on one Bolt server (Neo4j 5 or the embedded ArcadeDB).

The driver is created by `akg.connect` and passed in; this module only runs work on it. Every call
runs in an explicit transaction: ArcadeDB (26.10) can apply part of a failed auto-commit
`UNWIND ... MERGE` statement, and explicit transactions are atomic on both servers. Driver errors
are wrapped here into `akg.errors` so that nothing above this module imports `neo4j`.

Transactions are retried here, not by the driver's managed transactions: a transient error (a
deadlock on Neo4j, an optimistic-concurrency conflict on ArcadeDB) is retried with back-off for up
to `RETRY_SECONDS`, but a server that stopped answering is reported after one quick second try,
in one line naming the server and what to check. (The driver's own loop retries an unreachable
server for 30 s and logs each attempt: a killed server meant half a minute of warnings.)
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import neo4j
import neo4j.exceptions as nx

from akg import change_signal
from akg.errors import ConfigError, GraphError, GraphUnavailable
from akg.queries import Query

Params = dict[str, Any] | None
RETRY_SECONDS = 30.0
_UNREACHABLE = (nx.ServiceUnavailable, nx.SessionExpired)

# The driver logs connection failures and retries as warnings; without a handler Python prints them
# on stderr. The errors reach the user as one line (wrap_driver_errors); the log stays quiet.
logging.getLogger("neo4j").addHandler(logging.NullHandler())
logging.getLogger("neo4j").propagate = False


@contextlib.contextmanager
def wrap_driver_errors(where: str, lost: str = "see `akg db status`") -> Iterator[None]:
    """Driver errors as akg errors; `lost` says what to check when the server cannot be reached."""
    try:
        yield
    except nx.AuthError as e:
        raise ConfigError(f"{where}: authentication failed ({e.message}); check AKG_USER/AKG_PASSWORD") from None
    except (*_UNREACHABLE, OSError) as e:
        raise GraphUnavailable(f"{where}: the graph server is not reachable ({_first_line(e)}); {lost}") from None
    except nx.Neo4jError as e:
        raise GraphError(f"{where}: {_first_line(e.message or e)}") from e
    except nx.DriverError as e:
        raise GraphError(f"{where}: {_first_line(e)}") from e


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _text(query: str | Query, relation: str | None) -> tuple[str, str]:
    if isinstance(query, Query):
        return query.render(relation), query.name
    return query, "query"


def _runner(tx):
    def run(query: str | Query, params: Params = None, relation: str | None = None) -> list[dict]:
        text, _ = _text(query, relation)
        return [r.data() for r in tx.run(text, params or {})]

    return run


class Graph:
    """A database on a server. `read_only` connections (akg.connect.connect_read_only) open every
    session in READ access mode and, on the embedded server, log in as a user the server forbids
    to write: what the Cypher console runs on."""

    def __init__(self, driver: neo4j.Driver, database: str, *, describe: str = "", lock_dir=None, home=None,
                 read_only: bool = False, lost: str = "see `akg db status`"):
        self.driver = driver
        self.database = database
        self.describe = describe or database
        self.lock_dir = lock_dir  # the embedded server's home: where `exclusive` keeps its lock files
        self.home = home          # AKG_HOME: where state shared by this machine's processes lives
        self.read_only = read_only
        self.lost = lost          # what to check when the server stops answering
        agent = driver.get_server_info().agent if driver else ""
        # ArcadeDB announces itself as "Neo4j/5.26.0 compatible (ArcadeDB 26.10.2)".
        self.dialect = "arcadedb" if "arcadedb" in agent.lower() else "neo4j"
        self.server_agent = agent

    def session(self, **kw) -> neo4j.Session:
        if self.read_only:
            kw["default_access_mode"] = neo4j.READ_ACCESS
        return self.driver.session(database=self.database, **kw)

    def errors(self, where: str):
        """`wrap_driver_errors` with this server's advice for when it cannot be reached."""
        return wrap_driver_errors(where, self.lost)

    def _transaction(self, work: Callable[[Any], Any], name: str, *, write: bool) -> Any:
        mode = neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS
        deadline = time.monotonic() + RETRY_SECONDS
        delay, unreachable_tries = 0.05, 0
        with self.errors(name), self.session(default_access_mode=mode) as s:
            while True:
                try:
                    with s.begin_transaction() as tx:
                        result = work(tx)
                        if write:
                            tx.commit()
                            if self.home is not None:  # tell this machine's caches (akg.change_signal)
                                change_signal.renew(self.home, self.database)
                        return result  # a read is closed (rolled back) on leaving: it changed nothing
                except _UNREACHABLE:
                    unreachable_tries += 1
                    if unreachable_tries > 1:
                        raise
                    time.sleep(0.2)  # one quick second try: a connection the server closed is replaced
                except (nx.Neo4jError, nx.DriverError) as e:
                    if not e.is_retryable() or time.monotonic() + delay > deadline:
                        raise
                    time.sleep(delay * (0.5 + random.random()))  # jitter: two retrying writers part ways
                    delay = min(delay * 2, 1.0)

    def read(self, query: str | Query, params: Params = None, *, relation: str | None = None) -> list[dict]:
        text, name = _text(query, relation)
        return self._transaction(lambda tx: [r.data() for r in tx.run(text, params or {})], name, write=False)

    def write(self, query: str | Query, params: Params = None, *, relation: str | None = None) -> dict:
        """Run one write in its own transaction; return the summary counters as a dict."""
        text, name = _text(query, relation)
        return self._transaction(lambda tx: vars(tx.run(text, params or {}).consume().counters), name, write=True)

    def write_unit(self, work: Callable[[Callable[..., list[dict]]], Any], name: str = "write") -> Any:
        """Run several statements as one atomic transaction (retried on transient errors).

        `work` receives `run(query, params, relation=None) -> rows`.
        """
        return self._transaction(lambda tx: work(_runner(tx)), name, write=True)

    def read_unit(self, work: Callable[[Callable[..., list[dict]]], Any], name: str = "read") -> Any:
        """Several reads in one transaction (one consistent view); `work` as for `write_unit`."""
        return self._transaction(lambda tx: work(_runner(tx)), name, write=False)

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
        from pathlib import Path

        from akg.files import held_lock

        with held_lock(Path(self.lock_dir) / f"{name}.lock"):
            yield

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
