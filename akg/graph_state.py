"""The graph's state and its version: the core rule every stage uses to say which graph it saw.

A graph's *version* is `akg.hashing.set_version` of its accepted triples (it changes whenever a triple
becomes accepted or stops being accepted); its *state hash* covers every triple with its status and
split. Both come from one read of `graph_state_triples`.
"""

from __future__ import annotations

from akg import queries
from akg.graph import Graph
from akg.hashing import content_hash, set_version

State = list[tuple[str, str, str, str, str]]  # (head, relation, tail, status, split)


def read_state(graph: Graph) -> State:
    return [(r["head"], r["relation"], r["tail"], r["status"] or "", r["split"] or "")
            for r in graph.read(queries.get("graph_state_triples"))]


def version_of(state: State) -> str:
    return set_version((h, r, t) for h, r, t, st, _ in state if st == "accepted")


def graph_version(graph: Graph) -> str:
    """The graph's version: changes whenever a triple becomes accepted or stops being accepted."""
    return version_of(read_state(graph))


def state_hash(graph: Graph) -> str:
    """Hash of every triple with its status and split: changes with any write to a triple's status."""
    return content_hash(read_state(graph))


def recorded_head(graph: Graph) -> dict:
    """The change log's head as recorded (one node, one quick read): {'seq', 'version'}; None values
    before the change log exists. `seq` moves with every change, so it can key caches of graph reads."""
    rows = graph.read(queries.get("graph_state"))
    if not rows:
        return {"seq": None, "version": None}
    return {"seq": rows[0]["seq"], "version": rows[0]["version"]}
