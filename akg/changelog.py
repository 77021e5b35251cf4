"""The change log: every change to the AKG's triples, recorded in the graph beside them.

Layout (cypher/curation.cypher):
- one `(:GraphState {id: 1, seq, version, accepted})`: the sequence number of the last change and
  the graph's version (akg.hashing.set_version of the accepted triples), kept up to date by every
  writing transaction. Each such transaction takes it first (`graph_state_lock`), which
  serialises writers on Neo4j and makes concurrent ones conflict (and retry) on ArcadeDB.
- `(:Change {id, seq, at, by, action, note, ...})`: one per command (an accept, a bulk apply, a
  revert, an ingest run).
- `(:ChangeItem {change, seq, key, head, relation, tail, before, after, was_accepted, is_accepted})`:
  one per triple a change touched; `before`/`after` are the triple's whole property map as JSON
  (null: the triple did not exist), so any change can be undone exactly.
- `(:Version {seq, version, accepted, at, change, cause})`: checkpoints, the graph's version after
  a change. `akg diff V1 V2` replays the items between two checkpoints' sequence numbers.

Ingest records one Change per run, with items only for the triples whose accepted-ness changed
(what versions and diffs need); curation records every triple it touches.
"""

from __future__ import annotations

import getpass
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from akg import queries
from akg.errors import ConflictError, GraphError
from akg.graph import Graph
from akg.hashing import set_version, shift_version

Run = Callable[..., list[dict]]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def who() -> str:
    """The user name recorded for changes a command makes without --by (an ingest)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers) and no LOGNAME/USER
        return "unknown"


def new_change_id() -> str:
    """Sortable by time, unique without coordination: c-20261122-190102-3f2a9c."""
    return f"c-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def triple_key(head: str, relation: str, tail: str) -> str:
    return f"{head}\t{relation}\t{tail}"


def is_accepted(props: dict | None) -> bool:
    return props is not None and props.get("status") == "accepted"


@dataclass(frozen=True)
class Item:
    """One triple's properties before and after a change (None: absent)."""
    head: str
    relation: str
    tail: str
    before: dict | None
    after: dict | None

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.head, self.relation, self.tail)

    def record(self, change_id: str, seq: int) -> dict:
        return {"change": change_id, "seq": seq, "key": triple_key(*self.triple),
                "head": self.head, "relation": self.relation, "tail": self.tail,
                "before": None if self.before is None else json.dumps(self.before, sort_keys=True),
                "after": None if self.after is None else json.dumps(self.after, sort_keys=True),
                "was_accepted": is_accepted(self.before), "is_accepted": is_accepted(self.after)}


def item_from_record(rec: dict) -> Item:
    return Item(rec["head"], rec["relation"], rec["tail"],
                None if rec.get("before") is None else json.loads(rec["before"]),
                None if rec.get("after") is None else json.loads(rec["after"]))


def ensure_state(graph: Graph) -> None:
    """Create the change log's head for a graph that has none, its version computed from the graph.

    Idempotent (MERGE on a unique id): two first commands racing here agree, because the version
    is a function of the accepted triples and both computed it before either changed anything.
    """
    if graph.read(queries.get("graph_state")):
        return
    version, accepted = graph.read_unit(computed_version, name="graph version")
    try:
        graph.write(queries.get("graph_state_init"), {"version": version, "accepted": accepted, "now": now_iso()})
    except GraphError as e:  # another first command created it at the same moment (ArcadeDB)
        if "Duplicated key" not in str(e):
            raise


def computed_version(run: Run) -> tuple[str, int]:
    """The version and number of accepted triples, computed from the triples themselves (one read)."""
    accepted = {(r["head"], r["relation"], r["tail"])
                for r in run(queries.get("graph_state_triples")) if r["status"] == "accepted"}
    return set_version(accepted), len(accepted)


def lock(run: Run, now: str) -> dict:
    """Take the graph-state lock inside a write transaction; return {seq, version, accepted}."""
    rows = run(queries.get("graph_state_lock"), {"now": now})
    if not rows:
        raise ConflictError("the graph has no change-log head (GraphState); it is created on first use, try again")
    return rows[0]


def record(run: Run, state: dict, *, change: dict | None, change_id: str, items: list[Item], now: str,
           checkpoint: str | None, touched: int | None = None) -> dict:
    """Record a change inside the transaction that made it (after `lock`); return the new state.

    `change` is the Change node's properties (None: add items to a Change recorded earlier, as
    ingest's later batches do). `touched` is how many triples this transaction wrote (default: its
    items); the Change counts them as they are written, so a run killed half way says what it did.
    `checkpoint`, when given, is the cause written on a Version node if the version moved.
    """
    seq = state["seq"] + 1
    added = [i.triple for i in items if is_accepted(i.after) and not is_accepted(i.before)]
    removed = [i.triple for i in items if is_accepted(i.before) and not is_accepted(i.after)]
    version = shift_version(state["version"], added=added, removed=removed)
    accepted = state["accepted"] + len(added) - len(removed)
    count = len(items) if touched is None else touched
    if change is not None:
        run(queries.get("changelog_changes"), {"changes": [{**change, "id": change_id, "seq": seq, "at": now,
                                                            "triples": count}]})
    elif count:
        run(queries.get("change_add_triples"), {"id": change_id, "n": count})
    if items:
        run(queries.get("changelog_items"), {"items": [i.record(change_id, seq) for i in items]})
    if checkpoint and version != state["version"]:
        run(queries.get("changelog_versions"), {"versions": [
            {"seq": seq, "version": version, "accepted": accepted, "at": now, "change": change_id, "cause": checkpoint}]})
    moved = run(queries.get("graph_state_advance"), {"expected_seq": state["seq"], "seq": seq, "version": version,
                                                     "accepted": accepted, "now": now})
    if not moved:  # cannot happen under the lock; a guard against a writer that skipped it
        raise ConflictError("another change was recorded at the same time; nothing was written, try again")
    return {"seq": seq, "version": version, "accepted": accepted}


def checkpoint_interrupted(graph: Graph) -> str | None:
    """After an ingest that was killed half way (its change has no summary): a checkpoint naming the
    state it left, so `akg diff` can start from it. Returns that change's id, or None.

    Ingest calls this while it holds the ingest lock, so no other ingest of this machine is running
    (an ingest writes its checkpoint only when it ends)."""
    latest = graph.read(queries.get("change_last"))
    if not latest or latest[0]["action"] != "ingest" or latest[0]["summary"] is not None:
        return None
    change_id = latest[0]["id"]
    checkpoint(graph, change_id=change_id, cause=f"the state an interrupted ingest left ({change_id})")
    return change_id


def checkpoint(graph: Graph, *, change_id: str, cause: str) -> None:
    """Record the current version as a checkpoint, unless the last checkpoint already has it."""
    def work(run: Run) -> None:
        now = now_iso()
        state = lock(run, now)
        last = run(queries.get("version_last"))
        if last and last[0]["version"] == state["version"]:
            return
        run(queries.get("changelog_versions"), {"versions": [
            {"seq": state["seq"], "version": state["version"], "accepted": state["accepted"], "at": now,
             "change": change_id, "cause": cause}]})

    graph.write_unit(work, name="version checkpoint")
