"""Graph versions: the checkpoints of the change log, diffs between them, and a consistency check.

A version is akg.hashing.set_version of the accepted triples. The change log keeps it current in
every writing transaction (akg.changelog) and writes a checkpoint whenever it moves; a diff
replays the change items between two checkpoints. `verify` recomputes the version from the
triples themselves, which catches writes made around the service (a Cypher shell, say).
"""

from __future__ import annotations

from dataclasses import dataclass

from akg import changelog, queries
from akg.errors import InputError
from akg.graph import Graph
from akg.hashing import short


def list_versions(graph: Graph) -> list[dict]:
    changelog.ensure_state(graph)
    return graph.read(queries.get("versions_list"))


def find(versions: list[dict], ref: str) -> dict:
    """A checkpoint by version prefix (at least 6 hex digits); the latest when repeated."""
    ref = ref.strip().lower()
    if len(ref) < 6:
        raise InputError(f"give at least 6 characters of a version, got {ref!r} (see `akg versions`)")
    hits = [v for v in versions if v["version"].startswith(ref)]
    if not hits:
        raise InputError(f"unknown version {ref!r}: `akg versions` lists the graph's versions")
    if len({v["version"] for v in hits}) > 1:
        raise InputError(f"version prefix {ref!r} is ambiguous: "
                         + ", ".join(sorted({short(v['version']) for v in hits})))
    return hits[-1]


@dataclass
class Diff:
    old: dict
    new: dict
    added: list[tuple[str, str, str]]
    removed: list[tuple[str, str, str]]

    def as_dict(self) -> dict:
        return {"from": self.old, "to": self.new,
                "added": [list(t) for t in self.added], "removed": [list(t) for t in self.removed]}


def diff(graph: Graph, old_ref: str, new_ref: str) -> Diff:
    """Triples accepted in `new` and not in `old` (added) and the reverse (removed)."""
    versions = list_versions(graph)
    old, new = (_resolve(graph, versions, ref) for ref in (old_ref, new_ref))
    low, high = sorted((old["seq"], new["seq"]))
    first: dict[tuple, bool] = {}
    last: dict[tuple, bool] = {}
    for row in graph.read(queries.get("accepted_changes_between"), {"after": low, "upto": high}):
        key = (row["head"], row["relation"], row["tail"])
        first.setdefault(key, row["was_accepted"])
        last[key] = row["is_accepted"]
    gained = sorted(k for k in last if last[k] and not first[k])
    lost = sorted(k for k in last if first[k] and not last[k])
    if old["seq"] > new["seq"]:
        gained, lost = lost, gained
    return Diff(old, new, gained, lost)


def _resolve(graph: Graph, versions: list[dict], ref: str) -> dict:
    """`current` is the change log's head itself, not its last checkpoint: an ingest that failed
    half way moved the version without writing the checkpoint its end would have."""
    if ref.strip().lower() == "current":
        state = graph.read(queries.get("graph_state"))[0]
        return {**state, "at": None, "change": None, "cause": "current"}
    return find(versions, ref)


def verify(graph: Graph) -> dict:
    """Compare the recorded version with one computed from the triples now."""
    changelog.ensure_state(graph)

    def work(run):
        return run(queries.get("graph_state"))[0], *changelog.computed_version(run)

    state, computed, count = graph.read_unit(work, name="version check")
    return {"recorded": state["version"], "computed": computed, "accepted": count,
            "consistent": state["version"] == computed and state["accepted"] == count}
