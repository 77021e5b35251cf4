"""Ordered schema migrations, recorded in the graph as (:Migration {id, name, applied_at}).

Each migration is a file `cypher/migrations/NNN_name.cypher`; each of its blocks is one schema
statement written to be idempotent (IF NOT EXISTS), because schema statements cannot share a
transaction with data writes on Neo4j and are not rolled back on ArcadeDB. A migration is recorded
only after all its statements succeeded, so a crash in between is repaired by the next run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from importlib import resources

from akg import queries
from akg.errors import AkgError
from akg.graph import Graph

_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.cypher$")


@dataclass(frozen=True)
class Migration:
    id: int
    name: str
    statements: tuple[queries.Query, ...]


@cache
def all_migrations() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files("cypher.migrations").iterdir():
        m = _FILE.match(entry.name)
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

    Two first commands may race here; every statement is idempotent, so the loser of a race on
    the migration log simply tries once more and finds the work done.
    """
    try:
        return _apply(graph)
    except AkgError:
        return _apply(graph)


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
