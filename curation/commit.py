"""Writing a curation change: every triple checked against what the curator saw, all or nothing.

A change is a list of `Effect`s: for one triple, the properties the curator's decision was based
on (`seen`, None: the triple was absent) and the properties it should have after (`after`, None:
delete it). The write transaction takes the graph-state lock, re-reads every triple, and refuses
the whole change with a ConflictError if any of them moved since it was seen (its `rev`, the
sequence number of its last write, differs, or it appeared or vanished). Otherwise it writes the triples and
records the change, its items and the new graph version (akg.changelog) in the same transaction.

On Neo4j the lock serialises concurrent changes, so the second one re-reads after the first has
committed; on ArcadeDB both may pass the check, then one fails at commit with a transient
conflict and is retried by the driver, and the retry finds the first one's write. Either way one
curator wins and the other gets the conflict, and nothing is half-written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from akg import changelog, queries
from akg.errors import ConflictError, InputError
from akg.graph import Graph
from akg.hashing import short
from curation.triples import Run, Triple, check_names, existing_entities, read_properties, show


def rev(props: dict | None) -> int | None:
    """A triple's revision: the change-log sequence number of its last write (0: as ingest created it).

    Stamped from the sequence under the lock, so it only ever grows and is never reused, even by a
    triple deleted (a revert) and created again: a decision made about the old one cannot pass."""
    return None if props is None else int(props.get("rev") or 0)


@dataclass(frozen=True)
class Effect:
    triple: Triple
    seen: dict | None
    after: dict | None


@dataclass
class Committed:
    change_id: str
    seq: int
    version: str
    accepted: int
    items: list[changelog.Item] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"change": self.change_id, "seq": self.seq, "version": self.version, "accepted": self.accepted,
                "triples": [{"head": i.head, "relation": i.relation, "tail": i.tail,
                             "before": (i.before or {}).get("status"), "after": (i.after or {}).get("status")}
                            for i in self.items]}


def describe_conflict(triple: Triple, seen: dict | None, now: dict | None) -> str:
    if now is None:
        return f"{show(triple)} was removed since you read it"
    if seen is None:
        return f"{show(triple)} was added since you read it (status {now.get('status')})"
    who = (f"by {now['curated_by']} at {now.get('curated_at', '?')}" if now.get("curated_by")
           else f"at {now.get('updated_at', '?')}")
    return (f"{show(triple)} was changed {who} since you read it "
            f"(now {now.get('status')}, revision {rev(now)}; you saw {seen.get('status')}, revision {rev(seen)})")


def commit(graph: Graph, effects: list[Effect], change: dict, *,
           also: Callable[[Run, str], None] | None = None) -> Committed:
    """Apply the effects and record them as one change (`change`: action, by, note...).

    `also(run, change_id)` runs extra statements in the same transaction (a revert marks the change
    it undid). Raises ConflictError, with every conflicting triple named, and writes nothing.
    """
    if not effects:
        raise InputError("nothing to change")
    triples = [e.triple for e in effects]
    if len(set(triples)) != len(triples):
        raise InputError("a change names the same triple twice")
    for e in effects:  # the last guard of every curation path (decisions, suggestions, future APIs)
        if e.seen is None and e.after is not None:
            check_names(e.triple)
    changelog.ensure_state(graph)
    change_id = changelog.new_change_id()
    cause = f"{change['action']} by {change['by']}"

    def work(run: Run) -> Committed:
        now = changelog.now_iso()
        state = changelog.lock(run, now)
        current = read_properties(run, triples)
        conflicts = [describe_conflict(e.triple, e.seen, current.get(e.triple)) for e in effects
                     if rev(current.get(e.triple)) != rev(e.seen)]
        if conflicts:
            more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
            raise ConflictError("conflict, nothing was changed: " + "; ".join(conflicts[:5]) + more)
        stamped = [Effect(e.triple, e.seen, None if e.after is None else {**e.after, "rev": state["seq"] + 1})
                   for e in effects]
        _write(run, stamped, current, now)
        items = [changelog.Item(*e.triple, current.get(e.triple), e.after) for e in stamped]
        if also:
            also(run, change_id)
        new = changelog.record(run, state, change=change, change_id=change_id, items=items, now=now,
                               checkpoint=cause)
        return Committed(change_id, new["seq"], new["version"], new["accepted"], items)

    return graph.write_unit(work, name=f"curation ({change['action']})")


def _write(run: Run, effects: list[Effect], current: dict, now: str) -> None:
    creates, sets, deletes = defaultdict(list), defaultdict(list), defaultdict(list)
    for e in effects:
        head, relation, tail = e.triple
        row = {"head": head, "tail": tail}
        if e.after is None:
            deletes[relation].append(row)
        elif e.triple in current:
            sets[relation].append({**row, "props": e.after})
        else:
            creates[relation].append({**row, "props": e.after})
    new_names = {n for rows in creates.values() for r in rows for n in (r["head"], r["tail"])}
    if new_names:
        missing = sorted(new_names - existing_entities(run, new_names))
        if missing:
            run(queries.get("ingest_create_entities"), {"names": missing, "now": now})
    for query, groups in (("curation_delete_triples", deletes), ("curation_set_triples", sets),
                          ("curation_create_triples", creates)):
        for relation, rows in groups.items():
            run(queries.get(query), {"rows": rows}, relation)


def summary_line(done: Committed) -> str:
    return (f"change {done.change_id}: {len(done.items)} triple(s); graph version {short(done.version)} "
            f"({done.accepted} accepted triples)")

