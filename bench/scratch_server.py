"""A fresh embedded graph server for a benchmark: temporary AKG_HOME, free loopback ports.

    with scratch_graph("akg-kge-bench-") as (graph, home, state):
        ...

The environment (AKG_HOME and the rest) points at it while the block runs and is restored after;
the server is stopped and its home removed whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def scratch_graph(prefix: str, *, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()):
    home = Path(tempfile.mkdtemp(prefix=prefix))
    changes = {"AKG_HOME": str(home), "AKG_BOLT_PORT": "0", "AKG_HTTP_PORT": "0", **(env or {})}
    removed = ("AKG_URI", *unset)
    saved = {k: os.environ.get(k) for k in (*changes, *removed)}
    os.environ.update(changes)
    for k in removed:
        os.environ.pop(k, None)
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
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
