"""Tail prediction with a trained model: top-k tails for (head, relation), each marked known or predicted.

`Predictor` keeps the model and its id maps warm, so a query costs one row of scores (a matrix
product for RotatE, ComplEx, DistMult) and a top-k. Known tails are the graph's accepted facts;
the caller passes them in (one Cypher query per pair, or all of them at once for a batch).
A grounded model (kge/grounded.py) also answers for a head it was never trained on, from its
name's text features (`grounded_by_name`); its tails are the model's entities.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from akg.errors import InputError
from akg.relations import normalise_relation, resolve
from akg.names import normalise_name
from kge.scoring import score_all
from kge.store import StoredModel


Line = tuple[int, str, str]   # a batch file's (line number, head, relation)
Problem = tuple[int, str]     # (line number, what is wrong with it)


@dataclass(frozen=True)
class Prediction:
    tail: str
    score: float
    known: bool

    def as_dict(self) -> dict:
        return {"tail": self.tail, "score": round(self.score, 6), "status": "known" if self.known else "predicted"}


class Predictor:
    """Top-k tails of a stored model. A grounded model (kge/grounded.py) also takes heads it was never
    trained on: they are represented from their names' features (`grounded_by_name` tells which);
    a plain model answers an unknown name with suggestions."""

    def __init__(self, stored: StoredModel, device: str = "cpu", *, feature_cache: Path | None = None,
                 encoder=None):
        from kge import grounded

        self.stored = stored
        self.model = stored.load_model(device)
        self.device = device
        self.entity_to_id = stored.entity_to_id
        self.relation_to_id = stored.relation_to_id
        self.id_to_entity = [None] * len(self.entity_to_id)
        for name, i in self.entity_to_id.items():
            self.id_to_entity[i] = name
        self.grounded = grounded.is_grounded(self.model)
        self._feature_cache = feature_cache
        self._encoder = encoder
        self._grounder = None

    def in_model(self, name: str) -> bool:
        return name in self.entity_to_id

    def grounded_by_name(self, name: str) -> bool:
        """True for a head this (grounded) model represents from its name alone."""
        return self.grounded and name not in self.entity_to_id

    @property
    def grounder(self):
        if self._grounder is None:
            from kge import grounded
            from kge.features import default_cache_dir

            cache = self._feature_cache if self._feature_cache is not None else default_cache_dir()
            self._grounder = grounded.Grounder.of(self.model, cache, device=self.device, encoder=self._encoder)
        return self._grounder

    def _entity(self, text: str) -> str:
        name = normalise_name(text)
        if name in self.entity_to_id:
            return name
        if self.grounded:
            if not name:
                raise InputError(f"empty entity name {text!r}")
            return name  # represented from its name's features
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
        name = self._entity(head)
        plain, _ = self._relation(relation)
        return name, plain

    def resolve_lines(self, lines: Iterable[Line]) -> tuple[list[Line], list[Problem]]:
        """(line, head, relation) triples resolved as `resolve_pair` does: the ones it takes, normalised,
        and (line, problem) for each it refuses (an unknown entity or relation), so one bad line of a
        batch costs that line only."""
        good, bad = [], []
        for line, head, relation in lines:
            try:
                good.append((line, *self.resolve_pair(head, relation)))
            except InputError as e:
                bad.append((line, e.problem))
        return good, bad

    def predict_batch(self, pairs: Iterable[tuple[str, str]], k: int = 10,
                      known: Mapping[tuple[str, str], Iterable[str]] | None = None) -> list[list[Prediction]]:
        if k < 1:
            raise InputError("k must be at least 1")
        resolved = [self.resolve_pair(h, r) for h, r in pairs]
        if not resolved:
            return []
        new_names = sorted({h for h, _ in resolved if h not in self.entity_to_id})
        with contextlib.ExitStack() as stack:
            head_id = dict(self.entity_to_id)
            if new_names:
                from kge import grounded

                first = stack.enter_context(grounded.extended(self.model, self.grounder.features(new_names)))
                head_id.update({name: first + i for i, name in enumerate(new_names)})
            ids = [(head_id[h], self.relation_to_id[r]) for h, r in resolved]
            return self._top_tails(ids, [set((known or {}).get(pair, ())) for pair in resolved], k)

    def _top_tails(self, ids: list[tuple[int, int]], known: list[set[str]], k: int) -> list[list[Prediction]]:
        """The k best tails of each (head id, relation id), among the model's entities (an entity
        represented from features alone is a head only), marked known from `known`."""
        batch = torch.tensor([(h, r, 0) for h, r in ids], dtype=torch.long, device=self.device)
        n_known = len(self.id_to_entity)
        k = min(k, n_known)
        names, results = self.id_to_entity, []
        for start in range(0, len(batch), 2048):
            scores = score_all(self.model, batch[start:start + 2048], "tail", precise=False)[:, :n_known]
            top = torch.topk(scores, k, dim=1)
            for mine, vals, idx in zip(known[start:start + 2048], top.values.tolist(), top.indices.tolist()):
                results.append([Prediction(names[i], v, names[i] in mine) for v, i in zip(vals, idx)])
        return results

    @property
    def audio_grounded(self) -> bool:
        """True for a model grounded in audio too (`akg train --grounded text,audio`): it takes clips."""
        from kge import grounded

        rep = grounded.representation(self.model)
        return rep is not None and rep.audio

    def check_audio(self, relation: str) -> str:
        """The relation, normalised, if this model can answer for a clip; else a clear error."""
        if not self.audio_grounded:
            raise InputError(f"model {self.stored.name} is not grounded in audio, so it cannot answer for a clip: "
                             "train one with `akg train --grounded text,audio --audio-examples DIR --meta CSV`")
        return self._relation(relation)[0]

    def predict_audio(self, audio, relation: str, k: int = 10) -> list[Prediction]:
        """Top-k tails for a sound that is no entity, given its CLAP audio embedding: the embedding is
        the audio feature of an entity that has neither name nor structure (kge/grounded.py)."""
        from kge import grounded

        if k < 1:
            raise InputError("k must be at least 1")
        plain = self.check_audio(relation)
        rep = grounded.representation(self.model)
        feats = torch.as_tensor(audio, dtype=torch.float32).reshape(1, -1)
        if feats.shape[1] != rep.audio_features.shape[1]:
            raise InputError(f"an audio embedding of {feats.shape[1]} numbers; model {self.stored.name} takes "
                             f"{rep.audio_features.shape[1]}")
        with grounded.extended(self.model, None, audio=feats.to(self.device)) as first:
            return self._top_tails([(first, self.relation_to_id[plain])], [set()], k)[0]

    def predict(self, head: str, relation: str, k: int = 10, known: Iterable[str] = ()) -> list[Prediction]:
        pair = self.resolve_pair(head, relation)
        return self.predict_batch([pair], k, {pair: list(known)})[0]


def read_pairs(text: str) -> tuple[list[Line], list[Problem]]:
    """The head<TAB>relation lines of a batch file: (line, head, relation) for each well-formed one,
    (line, problem) for each other; blank lines and # comments are skipped."""
    pairs, bad = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\r").split("\t")
        if len(parts) != 2:
            bad.append((lineno, f"expected head<TAB>relation, got {len(parts)} tab-separated field(s)"))
        elif not all(p.strip() for p in parts):
            bad.append((lineno, "expected head<TAB>relation, got an empty one"))
        else:
            pairs.append((lineno, parts[0], parts[1]))
    return pairs, bad


def batch_pairs(predictor: Predictor, text: str, source: str) -> tuple[list[Line], list[Problem]]:
    """The lines of a batch file that can be answered, resolved, and the problems of the others, by
    line; an InputError naming `source` when no line can be answered."""
    pairs, bad = read_pairs(text)
    good, unknown = predictor.resolve_lines(pairs)
    problems = sorted(bad + unknown)
    if not good:
        if not problems:
            raise InputError("no head/relation pairs", file=source)
        shown = "; ".join(f"line {n}: {p}" for n, p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InputError(f"none of its {len(problems)} line(s) could be answered: {shown}{more}", file=source)
    return good, problems
