"""Enriched prompts for a label set, and their text embeddings, computed once and cached on disk.

For every label of the set that maps to an AKG entity, the facts about that entity for the chosen
relations: known tails (accepted in the graph) and, with a KGE model, its top-m predicted tails per
relation that the graph does not already hold, each marked predicted with its score. With a
grounded KGE model (kge/grounded.py), a label without an AKG entity gets predicted tails too: the
model represents the label's own text from its name's features. Facts are
merged and de-duplicated by tail (a known fact wins over a prediction of the same tail). Each fact
becomes a prompt from a template, the paper's "label plus tail" by default.

The whole bank (every label's base prompt and enriched prompts, embedded by the encoder) is cached
under AKG_HOME/cache/prompts/ by a key over the encoder, the label set (labels and entities), the
graph's version, the KGE model and these settings. So refining a clip costs one audio embedding and
small matrix products, and any change to what the prompts depend on builds a new bank.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import string
import warnings
import zipfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from akg import queries
from akg.errors import InputError
from akg.relations import RELATIONS, resolve

DEFAULT_RELATIONS = ("has parent", "is a type of", "occurs in", "emitted by", "produced during", "co-occurs with")


@dataclass(frozen=True)
class EnrichSettings:
    relations: tuple[str, ...] = DEFAULT_RELATIONS
    top_m: int = 3                               # predicted tails per relation
    base_template: str = "{label}"
    template: str = "{label}, {tail}"            # the paper's label plus tail
    max_prompts: int = 64                        # per label: known facts first, then predictions by confidence

    def __post_init__(self):
        for t, needs in ((self.base_template, {"label"}), (self.template, {"label", "tail"})):
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
            except ValueError as e:
                raise InputError(f"prompt template {t!r}: {e}") from None
            if fields - {"label", "tail", "relation"}:
                raise InputError(f"prompt template {t!r}: only {{label}}, {{tail}} and {{relation}} can be filled in")
            if needs - fields:
                raise InputError(f"prompt template {t!r} lacks {', '.join('{' + n + '}' for n in sorted(needs - fields))}")
        if self.top_m < 0 or self.max_prompts < 0:
            raise InputError("top_m (predicted tails per relation) and the prompt limit must not be negative")
        if not self.relations:
            raise InputError("the relation list names no relation")

    @classmethod
    def parse_relations(cls, text: str | None) -> tuple[str, ...]:
        if text is None:
            return DEFAULT_RELATIONS
        if text.strip().lower() == "all":
            return RELATIONS
        return tuple(dict.fromkeys(resolve(r) for r in text.split(",") if r.strip()))


@dataclass(frozen=True)
class Fact:
    relation: str
    tail: str
    kind: str                 # "known" or "predicted"
    score: float | None       # the KGE score of a prediction
    confidence: float         # 1 for a known fact; exp(score - best score of its head and relation)


@dataclass
class PromptBank:
    key: str
    label_texts: list[str]
    base_prompts: list[str]
    prompts: list[str]                       # enriched prompts of every label, label by label
    facts: list[Fact]
    owner: np.ndarray                        # label index of each enriched prompt
    offsets: np.ndarray                      # prompts of label l: offsets[l]:offsets[l+1]
    base_emb: np.ndarray                     # (labels, dim)
    prompt_emb: np.ndarray                   # (prompts, dim)
    consistency: np.ndarray = field(default=None)   # cos(prompt text, its label's base text)

    def __post_init__(self):
        if self.consistency is None:
            self.consistency = (self.prompt_emb * self.base_emb[self.owner]).sum(1) if len(self.prompts) else np.zeros(0)

    def of(self, label: int) -> slice:
        return slice(int(self.offsets[label]), int(self.offsets[label + 1]))


def gather_facts(graph, entities: list[str], settings: EnrichSettings, predictor=None) -> dict[str, list[Fact]]:
    """Facts per entity: known (graph) and predicted (KGE), merged and de-duplicated by tail."""
    known: dict[tuple[str, str], list[str]] = defaultdict(list)
    if entities and settings.relations:
        for row in graph.read(queries.get("accepted_tails_of"), {"heads": entities, "relations": list(settings.relations)}):
            known[(row["head"], row["relation"])] = sorted(row["tails"])
    facts: dict[str, list[Fact]] = {e: [] for e in entities}
    for (head, relation), tails in sorted(known.items()):
        facts[head].extend(Fact(relation, t, "known", None, 1.0) for t in tails)
    if predictor is not None and settings.top_m > 0:
        # a grounded model also predicts for names it was not trained on, from their text features
        grounded = getattr(predictor, "grounded", False)
        pairs = [(e, r) for e in entities if grounded or e in predictor.entity_to_id
                 for r in settings.relations if r in predictor.relation_to_id]
        extra = max((len(v) for v in known.values()), default=0)
        for (head, relation), preds in zip(pairs, predictor.predict_batch(pairs, settings.top_m + extra, known) if pairs else []):
            best = preds[0].score if preds else 0.0
            fresh = [p for p in preds if not p.known and p.tail != head][: settings.top_m]
            facts[head].extend(Fact(relation, p.tail, "predicted", p.score, math.exp(p.score - best)) for p in fresh)
    merged = {}
    for head, items in facts.items():
        by_tail: dict[str, Fact] = {}
        for f in sorted(items, key=lambda f: (f.kind != "known", -f.confidence, f.relation, f.tail)):
            if f.tail != head:
                by_tail.setdefault(f.tail, f)
        merged[head] = list(by_tail.values())[: settings.max_prompts]
    return merged


def kge_head(label, predictor=None) -> str | None:
    """Whose facts enrich a label: its AKG entity; without one, with a grounded KGE model, its own
    text (normalised), which that model represents from its name, so it still gets predicted tails."""
    if label.entity:
        return label.entity
    if predictor is not None and getattr(predictor, "grounded", False):
        from akg.names import normalise_name

        return normalise_name(label.text) or None
    return None


def kge_fingerprint(stored) -> str:
    """Which KGE model exactly: a retrained model of the same name and graph is another model."""
    weights = Path(stored.path) / "weights.safetensors"
    st = weights.stat()
    return f"{Path(stored.path).resolve()}|{stored.config.get('created_at')}|{st.st_size}|{st.st_mtime_ns}"


def bank_key(encoder_identity: str, label_set_identity: str, graph_version: str, kge_identity: str,
             settings: EnrichSettings) -> str:
    blob = json.dumps({"encoder": encoder_identity, "labels": label_set_identity, "graph": graph_version,
                       "kge": kge_identity, "settings": asdict(settings), "format": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def build_bank(label_set, encoder, graph, *, settings: EnrichSettings, predictor=None, graph_version: str,
               cache_dir: Path | None = None) -> tuple[PromptBank, bool]:
    """The prompt bank for this label set; (bank, True) when it came from the cache."""
    kge_identity = "none" if predictor is None else kge_fingerprint(predictor.stored)
    key = bank_key(encoder.identity, label_set.identity(), graph_version, kge_identity, settings)
    cached = Path(cache_dir) / f"{key}.npz" if cache_dir else None
    if cached is not None and cached.exists():
        try:
            bank = load_bank(cached)
            if bank.key == key and bank.label_texts == [label.text for label in label_set.labels]:
                return bank, True
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
            pass  # a damaged or foreign cache file is a miss: built again below, and rewritten

    labels = label_set.labels
    heads = [kge_head(label, predictor) for label in labels]
    entities = sorted({h for h in heads if h})
    facts_of = gather_facts(graph, entities, settings, predictor)
    base_prompts, prompts, facts, owner, offsets = [], [], [], [], [0]
    for i, label in enumerate(labels):
        base_prompts.append(settings.base_template.format(label=label.text))
        for f in facts_of.get(heads[i], []) if heads[i] else []:
            prompts.append(settings.template.format(label=label.text, tail=f.tail, relation=f.relation))
            facts.append(f)
            owner.append(i)
        offsets.append(len(prompts))
    base_emb = encoder.embed_text(base_prompts)
    prompt_emb = encoder.embed_text(prompts) if prompts else np.zeros((0, base_emb.shape[1]), np.float32)
    bank = PromptBank(key, [l.text for l in labels], base_prompts, prompts, facts, np.asarray(owner, dtype=np.int64),
                      np.asarray(offsets, dtype=np.int64), base_emb, prompt_emb)
    if cached is not None:
        try:
            save_bank(bank, cached)
        except OSError as e:  # a read-only or full disk costs the cache, not the result
            warnings.warn(f"could not cache the prompt bank in {cached.parent}: {e}")
    return bank, False


def save_bank(bank: PromptBank, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"key": bank.key, "label_texts": bank.label_texts, "base_prompts": bank.base_prompts,
            "prompts": bank.prompts, "facts": [asdict(f) for f in bank.facts]}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, base_emb=bank.base_emb, prompt_emb=bank.prompt_emb, owner=bank.owner, offsets=bank.offsets,
                     meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
        tmp.replace(path)  # complete or absent, never half-written
    finally:
        tmp.unlink(missing_ok=True)


def load_bank(path: Path) -> PromptBank:
    """A bank saved by `save_bank`; a ValueError (or KeyError, TypeError) for a file that is not
    one, or whose parts do not fit together, so that it is never used to score anything."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode("utf-8"))
        owner, offsets, base_emb, prompt_emb = z["owner"], z["offsets"], z["base_emb"], z["prompt_emb"]
    facts = [Fact(**f) for f in meta["facts"]]
    labels, prompts = len(meta["label_texts"]), len(meta["prompts"])
    fits = (len(meta["base_prompts"]) == labels and len(facts) == prompts
            and base_emb.dtype == prompt_emb.dtype == np.float32 and base_emb.ndim == prompt_emb.ndim == 2
            and base_emb.shape[0] == labels and prompt_emb.shape == (prompts, base_emb.shape[1])
            and np.isfinite(base_emb).all() and np.isfinite(prompt_emb).all()
            and offsets.dtype.kind == owner.dtype.kind == "i" and offsets.shape == (labels + 1,)
            and offsets[0] == 0 and offsets[-1] == prompts and (np.diff(offsets) >= 0).all()
            and np.array_equal(owner, np.repeat(np.arange(labels), np.diff(offsets)))
            and all(f.kind in ("known", "predicted") and isinstance(f.confidence, (int, float)) for f in facts))
    if not fits:
        raise ValueError(f"{path}: the parts of the prompt bank do not fit together")
    return PromptBank(meta["key"], meta["label_texts"], meta["base_prompts"], meta["prompts"], facts, owner, offsets,
                      base_emb, prompt_emb)
