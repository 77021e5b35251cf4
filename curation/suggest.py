"""Suggestions: a KGE model's best-scored triples that the graph does not have, queued as pending.

Candidates are the (head, relation) pairs of the accepted training triples (what the model was
trained to complete); a predicted tail is skipped when the graph has that triple with any status
(a rejected triple is not suggested again), when it is the head itself, or when a name breaks the
rules of akg.names (older graphs may hold such names; `akg check` lists them). The best `top` by model
score across all pairs are created with status `pending`, split `train` (accepting one grows the
training set, which makes models trained before stale), source `kge`, and the model's name and
score, as one recorded change (so `akg curate revert` removes a batch of suggestions at once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from akg import queries
from akg.changelog import now_iso
from akg.errors import InputError
from akg.graph import Graph
from akg.names import name_problem
from curation.commit import Committed, Effect, commit

PER_PAIR = 10   # tails considered per (head, relation) before the global cut


def candidates(graph: Graph, predictor, *, top: int, relations: set[str] | None = None,
               progress: Callable[[int], None] | None = None) -> list[tuple[tuple[str, str, str], float]]:
    """The `top` best new triples by model score, best first."""
    if top < 1:
        raise InputError("the number of suggestions per pair (top) must be at least 1")
    # One read: the tails each pair has with any status (skipped), and the accepted training pairs.
    present: dict[tuple[str, str], set[str]] = defaultdict(set)
    train_pairs: set[tuple[str, str]] = set()
    for row in graph.read(queries.get("graph_state_triples")):
        present[(row["head"], row["relation"])].add(row["tail"])
        if row["status"] == "accepted" and row["split"] == "train":
            train_pairs.add((row["head"], row["relation"]))
    pairs = sorted((h, r) for h, r in train_pairs
                   if h in predictor.entity_to_id and r in predictor.relation_to_id and name_problem(h) is None
                   and (relations is None or r in relations))
    if not pairs:
        raise InputError("no (head, relation) pair of the training triples is known to this model")
    found: list[tuple[tuple[str, str, str], float]] = []
    for start in range(0, len(pairs), 4096):
        chunk = pairs[start:start + 4096]
        for (head, relation), preds in zip(chunk, predictor.predict_batch(chunk, k=PER_PAIR)):
            have = present.get((head, relation), set())
            found.extend(((head, relation, p.tail), p.score) for p in preds
                         if p.tail not in have and p.tail != head and name_problem(p.tail) is None)
        if progress:
            progress(len(chunk))
    found.sort(key=lambda c: (-c[1], c[0]))
    return found[:top]


def queue(graph: Graph, suggestions: list[tuple[tuple[str, str, str], float]], *, model: str, by: str) -> Committed:
    """Create the suggested triples as pending, as one change."""
    stamp = now_iso()
    effects = [Effect(triple, None, {
        "relation": triple[1], "sources": ["kge"], "source_files": [], "status": "pending", "split": "train",
        "suggested_by": model, "score": round(float(score), 6), "created_at": stamp, "updated_at": stamp})
        for triple, score in suggestions]
    return commit(graph, effects, {"action": "suggest", "by": by, "note": f"top {len(effects)} predictions of model {model}"})
