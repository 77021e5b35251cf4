"""A fresh embedded graph server for a benchmark: temporary AKG_HOME, free loopback ports.

    with scratch_graph("akg-kge-bench-") as (graph, home, state):
        ...

The environment (AKG_HOME and the rest) points at it while the block runs and is restored after;
the server is stopped and its home removed whatever happens. scratch_neo4j_graph does the same on
the Neo4j test server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def _environment(changes: dict[str, str], removed: tuple[str, ...] = ()):
    """os.environ with `changes` set and `removed` unset for the block, restored after."""
    saved = {k: os.environ.get(k) for k in (*changes, *removed)}
    os.environ.update(changes)
    for k in removed:
        os.environ.pop(k, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def scratch_graph(prefix: str, *, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()):
    home = Path(tempfile.mkdtemp(prefix=prefix))
    changes = {"AKG_HOME": str(home), "AKG_BOLT_PORT": "0", "AKG_HTTP_PORT": "0", **(env or {})}
    with _environment(changes, ("AKG_URI", *unset)):
        from akg.config import Settings
        from akg.connect import connect, embedded_server

        server = embedded_server(Settings.from_env())
        try:
            state = server.start()
            with connect() as graph:
                yield graph, home, state
        finally:
            server.stop()
            shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def scratch_neo4j_graph(prefix: str):
    """As scratch_graph, on the Neo4j test server (tests/neo4j_server.py; Java 17+ and Maven): yields
    (graph, home, servers), servers[-1] being the one running (a fault run appends its restart)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import neo4j_server

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    servers = [neo4j_server.start(folder / "neo4j")]
    try:
        with _environment({**servers[0].env, "AKG_HOME": str(folder / "home")}):
            from akg.connect import connect

            with connect() as graph:
                yield graph, folder / "home", servers
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
