"""Ordered schema migrations, recorded in the graph as (:Migration {id, name, applied_at}).

Each migration is a file `cypher/migrations/NNN_name.cypher`; each of its blocks is one schema
statement written to be idempotent (IF NOT EXISTS), because schema statements cannot share a
transaction with data writes on Neo4j and are not rolled back on ArcadeDB. A migration is recorded
only after all its statements succeeded, so a crash in between is repaired by the next run.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from importlib import resources

from akg import queries
from akg.errors import AkgError
from akg.graph import Graph

_FILE = re.compile(r"(\d{3})_([a-z0-9_]+)\.cypher")
ATTEMPTS = 5


@dataclass(frozen=True)
class Migration:
    id: int
    name: str
    statements: tuple[queries.Query, ...]


@cache
def all_migrations() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files("cypher.migrations").iterdir():
        m = _FILE.fullmatch(entry.name)
        if m:
            stmts = tuple(queries.parse(entry.read_text(encoding="utf-8"), f"migrations/{entry.name}"))
            found.append(Migration(int(m.group(1)), entry.name.removesuffix(".cypher"), stmts))
    found.sort(key=lambda m: m.id)
    ids = [m.id for m in found]
    assert len(ids) == len(set(ids)), f"two migrations share an id: {ids}"
    return tuple(found)


def applied(graph: Graph) -> set[int]:
    return {row["id"] for row in graph.read(queries.get("migrations_applied"))}


def apply(graph: Graph) -> list[str]:
    """Apply the migrations the graph has not recorded yet; return their names.

    Several first commands may race here (`akg stats & akg stats & akg curate list` on a new
    AKG_HOME). On the embedded server a file lock makes them take turns, so the later ones find the
    work done. Every statement is idempotent, so where no lock is shared (two machines on one
    ArcadeDB, whose optimistic transactions report the clash as a duplicate key) the loser tries
    again and finds the work done.
    """
    if applied(graph) >= {m.id for m in all_migrations()}:
        return []  # the usual case: nothing to do, no lock taken
    with graph.exclusive("migrations"):
        for attempt in range(ATTEMPTS):
            try:
                return _apply(graph)
            except AkgError:
                if attempt == ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
    return []


def _apply(graph: Graph) -> list[str]:
    done = applied(graph)
    ran = []
    for mig in all_migrations():
        if mig.id in done:
            continue
        for stmt in mig.statements:
            graph.write(stmt)
        graph.write(queries.get("migration_record"), {
            "id": mig.id, "name": mig.name, "applied_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        ran.append(mig.name)
    return ran
