"""Choose the graph server and connect: AKG_URI if set, else the embedded server (started if needed).

Two kinds of connection. `connect` is the service's own (ingest, curation, training...): it may
write, through the code of this project only. `connect_read_only` is what people's Cypher runs on
(`akg query`, the explorer's console): the server itself refuses its writes, whatever got past the
gate. On the embedded server it logs in as a user whose security group may only read; on Neo4j it
opens every session in READ access mode, which Neo4j enforces (and AKG_READ_USER/AKG_READ_PASSWORD
may name a user of its own).
"""

from __future__ import annotations

import neo4j

from akg import migrations
from akg.config import Settings
from akg.embedded import EmbeddedServer
from akg.errors import ConfigError
from akg.graph import Graph, wrap_driver_errors


def embedded_server(settings: Settings) -> EmbeddedServer:
    return EmbeddedServer(settings.home, database=settings.database, heap=settings.server_heap,
                          bolt_port=settings.bolt_port, http_port=settings.http_port)


def _lost(settings: Settings, server: EmbeddedServer | None) -> str:
    """What to check when the server stops answering, for this kind of server."""
    if server is None:
        return (f"check that the server at AKG_URI={settings.uri} is running and reachable "
                "(and AKG_URI, AKG_DATABASE are right)")
    return (f"the embedded server of AKG_HOME={settings.home} stopped (killed, or the machine restarted): "
            f"`akg db start` restarts it, then run the command again; its log is {server.log_file}")


def _open(settings: Settings, *, read_only: bool) -> Graph:
    server = None if settings.external else embedded_server(settings)
    if server is None:
        uri, describe, lock_dir = settings.uri, settings.uri, None
        auth = (settings.user, settings.password)
        if read_only and settings.read_user:
            auth = (settings.read_user, settings.read_password)
    else:
        state = server.ensure_reader() if read_only else server.ensure_running()
        uri, lock_dir = state.bolt_uri, server.home
        describe = f"embedded server {state.bolt_uri} (AKG_HOME={settings.home})"
        auth = server.reader_credentials() if read_only else server.credentials()
    lost = _lost(settings, server)
    driver = neo4j.GraphDatabase.driver(uri, auth=auth)
    try:
        with wrap_driver_errors(f"connecting to {describe}", lost):
            driver.verify_connectivity()
        graph = Graph(driver, settings.database, describe=describe, lock_dir=lock_dir, home=settings.home,
                      read_only=read_only, lost=lost)
    except BaseException:
        driver.close()
        raise
    if read_only and graph.dialect == "arcadedb" and server is None and not settings.read_user:
        driver.close()
        raise ConfigError(f"the server at AKG_URI={settings.uri} is ArcadeDB, which does not enforce read-only "
                          "sessions: set AKG_READ_USER and AKG_READ_PASSWORD to a user that may only read")
    return graph


def connect(settings: Settings | None = None, *, migrate: bool = True) -> Graph:
    """The service's own connection, with the schema migrations applied (idempotent)."""
    settings = settings or Settings.from_env()
    graph = _open(settings, read_only=False)
    try:
        if migrate:
            migrations.apply(graph)
        return graph
    except BaseException:
        graph.close()
        raise


def connect_read_only(settings: Settings | None = None) -> Graph:
    """A connection on which the server refuses writes: for Cypher that people type."""
    return _open(settings or Settings.from_env(), read_only=True)
