"""Tail prediction with a trained model: top-k tails for (head, relation), each marked known or predicted.

`Predictor` keeps the model and its id maps warm, so a query costs one row of scores (a matrix
product for RotatE, ComplEx, DistMult) and a top-k. Known tails are the graph's accepted facts;
the caller passes them in (one Cypher query per pair, or all of them at once for a batch).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from akg.errors import InputError
from akg.relations import normalise_relation, resolve
from akg_loader.tsv import normalise_name
from kge.scoring import score_all
from kge.store import StoredModel


@dataclass(frozen=True)
class Prediction:
    tail: str
    score: float
    known: bool

    def as_dict(self) -> dict:
        return {"tail": self.tail, "score": round(self.score, 6), "status": "known" if self.known else "predicted"}


class Predictor:
    def __init__(self, stored: StoredModel, device: str = "cpu"):
        self.stored = stored
        self.model = stored.load_model(device)
        self.device = device
        self.entity_to_id = stored.entity_to_id
        self.relation_to_id = stored.relation_to_id
        self.id_to_entity = [None] * len(self.entity_to_id)
        for name, i in self.entity_to_id.items():
            self.id_to_entity[i] = name

    def _entity(self, text: str) -> int:
        name = normalise_name(text)
        if name in self.entity_to_id:
            return self.entity_to_id[name]
        close = difflib.get_close_matches(name, self.entity_to_id.keys(), n=5, cutoff=0.6)
        close += [e for e in self.entity_to_id if name and name in e and e not in close][: 5 - len(close)]
        hint = f"; close names: {', '.join(repr(c) for c in close)}" if close else ""
        raise InputError(f"unknown entity {text!r}: model {self.stored.name} has no such entity{hint}")

    def _relation(self, text: str) -> tuple[str, int]:
        plain = resolve(text) if normalise_relation(text) not in self.relation_to_id else normalise_relation(text)
        if plain not in self.relation_to_id:
            raise InputError(f"relation {plain!r} does not occur in the training triples of model {self.stored.name}")
        return plain, self.relation_to_id[plain]

    def resolve_pair(self, head: str, relation: str) -> tuple[str, str]:
        """Normalised (head, relation), or a clear error with suggestions."""
        h = self._entity(head)
        plain, _ = self._relation(relation)
        return self.id_to_entity[h], plain

    def predict_batch(self, pairs: Iterable[tuple[str, str]], k: int = 10,
                      known: Mapping[tuple[str, str], Iterable[str]] | None = None) -> list[list[Prediction]]:
        if k < 1:
            raise InputError("k must be at least 1")
        resolved = [self.resolve_pair(h, r) for h, r in pairs]
        if not resolved:
            return []
        ids = torch.tensor([(self.entity_to_id[h], self.relation_to_id[r], 0) for h, r in resolved],
                           dtype=torch.long, device=self.device)
        k = min(k, len(self.id_to_entity))
        names, results = self.id_to_entity, []
        for start in range(0, len(ids), 2048):
            top = torch.topk(score_all(self.model, ids[start:start + 2048], "tail", precise=False), k, dim=1)
            for pair, vals, idx in zip(resolved[start:start + 2048], top.values.tolist(), top.indices.tolist()):
                known_tails = set((known or {}).get(pair, ()))
                results.append([Prediction(names[i], v, names[i] in known_tails) for v, i in zip(vals, idx)])
        return results

    def predict(self, head: str, relation: str, k: int = 10, known: Iterable[str] = ()) -> list[Prediction]:
        pair = self.resolve_pair(head, relation)
        return self.predict_batch([pair], k, {pair: list(known)})[0]
