"""What the AKG says about a text: its entities, their facts, and the enriched variants of the text.

Linking. A text is linked to AKG entities two ways: names in the text (the longest word n-grams, up
to four words, that are entity names, a plural 's' dropped when that finds one: "dogs barking"
links `dog`), and the nearest entity names by CLAP text embedding (`nearest`, at least
`min_similarity` cosine), which catches "a hound howling" when no name occurs in it.

Facts. For each linked entity, its known tails (accepted triples, the `accepted_tails_of` query)
and a KGE model's predicted tails for the chosen relations: reasoning.prompts.gather_facts, as
classify uses them (a known fact wins over the prediction of the same tail).

Variants, at three granularities (after ASK's multi-granularity knowledge):
- `entity`:   "TEXT, ENTITY" for an entity linked by embedding only (a named one is in the text already);
- `relation`: "TEXT, RELATION TAIL" for a non-taxonomic fact ("a dog barking, occurs in park");
- `parent`:   "TEXT, TAIL" for a taxonomic fact (`has parent`, `is a type of`; the paper's label plus tail).
A text keeps at most `max_variants`, known facts first, then predictions by confidence.

Everything a query needs that does not depend on the query is cached: the entity names and their
embeddings (on disk under AKG_HOME/cache/entities, by encoder and graph version), each entity's
facts and each variant text's embedding (in memory), so a new query costs its text embeddings
that are new, a few dictionary look-ups and small matrix products; a text seen before (a repeated
query, a caption of another ablation) is one look-up. An enricher serves one graph version: the
callers open a new one when the graph changes (the explorer keys it by version).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasoning.prompts import EnrichSettings, gather_facts

GRANULARITIES = ("entity", "relation", "parent")
NEAREST = 2            # entities linked by name embedding besides those named in the text
MIN_SIMILARITY = 0.5   # the least cosine of such a link
TAXONOMY = ("has parent", "is a type of")
MAX_NGRAM = 4
_WORDS = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


@dataclass
class EntityTable:
    names: list[str]
    emb: np.ndarray                       # (entities, dim), unit rows
    index_of: dict = field(default_factory=dict)

    def __post_init__(self):
        self.index_of = {n: i for i, n in enumerate(self.names)}


def entity_table(graph, encoder, *, graph_version: str, cache_dir: Path | None) -> EntityTable:
    """Every entity's name and CLAP text embedding; cached by encoder and graph version."""
    from akg import queries

    key = hashlib.sha256(f"{encoder.identity}|{graph_version}|1".encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"{key}.npz" if cache_dir else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                names, emb = [str(n) for n in z["names"]], z["emb"]
            if emb.ndim == 2 and emb.shape[0] == len(names) and np.isfinite(emb).all():
                return EntityTable(names, emb.astype(np.float32))
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is a miss
    rows = graph.read(queries.get("entity_names"), {})
    names = sorted(rows[0]["names"]) if rows else []
    emb = encoder.embed_text(names) if names else np.zeros((0, 1), np.float32)
    if path is not None:
        import os

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.savez(f, names=np.asarray(names, dtype=str), emb=emb)
            tmp.replace(path)
        except OSError:
            pass  # a read-only disk costs the cache, not the result
    return EntityTable(names, np.asarray(emb, np.float32))


@dataclass(frozen=True)
class Link:
    entity: str
    how: str          # "named" (in the text) or "nearest" (by text embedding)
    score: float      # 1 for a named entity, the cosine for a nearest one


@dataclass(frozen=True)
class Variant:
    text: str
    granularity: str  # "entity", "relation" or "parent"
    entity: str
    relation: str | None
    tail: str | None
    kind: str         # "link" (entity granularity), "known" or "predicted"
    confidence: float # the link's cosine, 1 for a known fact, exp(score - best) for a prediction

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def named_entities(text: str, table: EntityTable, limit: int = 3) -> list[str]:
    """Entity names in the text: longest n-grams first, not overlapping, in the text's order."""
    words = _WORDS.findall(text.lower())
    taken, found = [False] * len(words), []
    for n in range(min(MAX_NGRAM, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            if any(taken[i:i + n]):
                continue
            gram = " ".join(words[i:i + n])
            name = gram if gram in table.index_of else (gram[:-1] if gram.endswith("s") and gram[:-1] in table.index_of else None)
            if name is not None:
                found.append((i, name))
                taken[i:i + n] = [True] * n
    out = []
    for _, name in sorted(found):
        if name not in out:
            out.append(name)
    return out[:limit]


class Enricher:
    """Links texts to the AKG and builds their weighted variants; holds the caches a session reuses.

    Safe to share between threads (the explorer keeps one for all its sessions; the service's request
    threads share the one akg.api keeps): its caches are ordered dicts that evict as they fill, so
    every read-and-change of them runs under one re-entrant lock (expand's steps call embed and facts).
    Concurrent expansions therefore take turns; parallel searches come from worker processes."""

    def __init__(self, graph, encoder, table: EntityTable, *, enrich: EnrichSettings = EnrichSettings(), predictor=None,
                 granularities: Sequence[str] = GRANULARITIES, nearest: int = NEAREST,
                 min_similarity: float = MIN_SIMILARITY,
                 max_named: int = 3, max_variants: int = 32, text_cache: int = 100_000):
        from akg.errors import InputError

        bad = [g for g in granularities if g not in GRANULARITIES]
        if bad or not granularities:
            raise InputError(f"granularities {', '.join(bad) or '(none)'}: use some of {', '.join(GRANULARITIES)}")
        if nearest < 0 or max_variants < 0 or max_named < 0:
            raise InputError("the numbers of linked entities and of variants must not be negative")
        self.graph, self.encoder, self.table, self.enrich, self.predictor = graph, encoder, table, enrich, predictor
        self.granularities, self.nearest, self.min_similarity = tuple(granularities), nearest, min_similarity
        self.max_named, self.max_variants = max_named, max_variants
        self._facts: dict[str, list] = {}
        self._texts: OrderedDict[str, np.ndarray] = OrderedDict()
        self._expansions: OrderedDict[str, Expansion] = OrderedDict()
        self._text_cache = text_cache
        self._lock = threading.RLock()

    # -- caches ----------------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings, each text embedded once per enricher (an LRU of `text_cache` texts)."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._texts))
            fresh = dict(zip(missing, (np.asarray(e, np.float32) for e in self.encoder.embed_text(missing)))) \
                if missing else {}
            if not texts:
                dim = self.table.emb.shape[1] if self.table.emb.size else 0
                return np.zeros((0, dim), np.float32)
            # Read before evicting: a call with more texts than the cache holds still gets all of them.
            out = np.stack([fresh[t] if t in fresh else self._texts[t] for t in texts])
            for t in texts:
                if t in fresh:
                    self._texts[t] = fresh[t]
                self._texts.move_to_end(t)
            while len(self._texts) > self._text_cache:
                self._texts.popitem(last=False)
            return out

    def facts(self, entities: Sequence[str]) -> dict[str, list]:
        with self._lock:
            todo = [e for e in entities if e not in self._facts]
            if todo:
                self._facts.update(gather_facts(self.graph, todo, self.enrich, self.predictor))
            return {e: self._facts.get(e, []) for e in entities}

    # -- linking and variants --------------------------------------------------------------------

    def link(self, text: str, text_emb: np.ndarray) -> list[Link]:
        links = [Link(n, "named", 1.0) for n in named_entities(text, self.table, self.max_named)]
        if self.nearest and len(self.table.names):
            sims = self.table.emb @ text_emb
            have = {l.entity for l in links}
            want = min(len(sims), self.nearest + len(have))
            best = np.argpartition(-sims, want - 1)[:want]
            for i in best[np.argsort(-sims[best], kind="stable")]:
                if len([l for l in links if l.how == "nearest"]) >= self.nearest or sims[i] < self.min_similarity:
                    break
                if self.table.names[i] not in have:
                    links.append(Link(self.table.names[i], "nearest", round(float(sims[i]), 6)))
        return links

    def variants(self, text: str, links: Sequence[Link]) -> list[Variant]:
        facts = self.facts([l.entity for l in links])
        found: list[Variant] = []
        for l in links:
            if "entity" in self.granularities and l.how == "nearest":
                found.append(Variant(f"{text}, {l.entity}", "entity", l.entity, None, None, "link", l.score))
            for f in facts[l.entity]:
                g = "parent" if f.relation in TAXONOMY else "relation"
                if g not in self.granularities:
                    continue
                shown = f.tail if g == "parent" else f"{f.relation} {f.tail}"
                found.append(Variant(f"{text}, {shown}", g, l.entity, f.relation, f.tail, f.kind, float(f.confidence)))
        found.sort(key=lambda v: (v.kind == "predicted", -v.confidence))
        out, seen = [], {text}
        for v in found:
            if v.text not in seen:
                seen.add(v.text)
                out.append(v)
        return out[: self.max_variants]

    def expand(self, text: str) -> Expansion:
        """The text's links and variants; a text seen before costs a look-up (kept with its embeddings)."""
        with self._lock:
            found = self._expansions.get(text)
            if found is not None:
                self._expansions.move_to_end(text)
                return found
            q = self.embed([text])[0]
            links = self.link(text, q)
            variants = self.variants(text, links)
            emb = self.embed([v.text for v in variants]) if variants else np.zeros((0, len(q)), np.float32)
            found = self._expansions[text] = Expansion(text, q, links, variants, emb)
            while len(self._expansions) > self._text_cache // 10:
                self._expansions.popitem(last=False)
            return found


@dataclass
class Expansion:
    text: str
    emb: np.ndarray                   # the text's own embedding
    links: list[Link]
    variants: list[Variant]
    variant_emb: np.ndarray           # (variants, dim)

    @property
    def consistency(self) -> np.ndarray:
        """cos(variant, original text): how far each variant drifts from what was asked."""
        return self.variant_emb @ self.emb if len(self.variants) else np.zeros(0)

    def subset(self, keep: np.ndarray) -> Expansion:
        keep = np.asarray(keep, bool)
        return Expansion(self.text, self.emb, self.links, [v for v, k in zip(self.variants, keep) if k],
                         self.variant_emb[keep])
