"""Choose the graph server and connect: AKG_URI if set, else the embedded server (started if needed)."""

from __future__ import annotations

import neo4j

from akg import migrations
from akg.config import Settings
from akg.embedded import EmbeddedServer
from akg.graph import Graph, wrap_driver_errors


def embedded_server(settings: Settings) -> EmbeddedServer:
    return EmbeddedServer(settings.home, database=settings.database, heap=settings.server_heap)


def connect(settings: Settings | None = None, *, migrate: bool = True) -> Graph:
    """A Graph on the configured server, with the schema migrations applied (idempotent)."""
    settings = settings or Settings.from_env()
    lock_dir = None
    if settings.external:
        uri, auth, describe = settings.uri, (settings.user, settings.password), settings.uri
    else:
        server = embedded_server(settings)
        state = server.ensure_running()
        uri, auth = state.bolt_uri, server.credentials()
        describe = f"embedded server {state.bolt_uri} (AKG_HOME={settings.home})"
        lock_dir = server.home
    driver = neo4j.GraphDatabase.driver(uri, auth=auth)
    try:
        with wrap_driver_errors(f"connecting to {describe}"):
            driver.verify_connectivity()
        graph = Graph(driver, settings.database, describe=describe, lock_dir=lock_dir)
        if migrate:
            migrations.apply(graph)
        return graph
    except BaseException:
        driver.close()
        raise
