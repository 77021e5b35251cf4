"""Search and tagging: CLAP similarity refined with the AKG's variants of the query, and why.

Text to audio (`search_text`): the query and its variants (retrieval.knowledge) are searched in the
collection's index together (one batched FAISS search); the candidates are the union of their
`pool` nearest clips. A candidate's score fuses its similarity to the query, s0, with its
similarities to the variants, s_i, by classify's weighted log-mean-exp (reasoning.fusion):

    fused = tau * log( (w0 e^(s0/tau) + sum_i w_i e^(s_i/tau)) / (w0 + sum_i w_i) )

Weights. `lse`: every variant 1. `reliability` (the default here, after ASK):

    w_i = max(0, cos(variant_i, query))^gamma * trust_i * (1 + agreement_i) / 2

trust_i is 1 for a known fact, beta * confidence for a KGE prediction (known over predicted), the
link's cosine for an entity linked by embedding; agreement_i is the share of the query's own top 10
clips that are also in the variant's top 10: a variant that retrieves what the query retrieves is
consistent with it across modalities, one that pulls elsewhere counts half. Audio to text has no
retrieved clip set per caption, so there agreement is left out.

Each result says which variants moved it: leave-one-out effects (fused score with all variants
minus without that one), the largest first, with the entity, relation, tail and whether the fact is
known or predicted. `tag_clip` scores a clip against every AKG entity the same way, each entity's
facts as its variants ("ENTITY, TAIL", as classify's prompts), and shows what the graph knows of
each tag (its parents, where it occurs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from reasoning.fusion import FusionSettings, prompt_weights
from retrieval.knowledge import TAXONOMY, Enricher, Expansion

DEFAULT_K = 10
DEFAULT_FUSION = FusionSettings(method="reliability")
AGREEMENT_N = 10
EXPLAINED = 3   # variants shown per result


def variant_weights(fusion: FusionSettings, exp: Expansion, agreement: np.ndarray | None = None) -> np.ndarray:
    """The weight of each of the expansion's variants (see the module's docstring)."""
    if not exp.variants:
        return np.zeros(0)
    kinds = np.array([v.kind for v in exp.variants])
    conf = np.array([v.confidence for v in exp.variants], np.float64)
    w = prompt_weights(fusion, exp.consistency, kinds != "predicted", conf)
    if fusion.method == "reliability":
        w = w * np.where(kinds == "link", conf, 1.0)
        if agreement is not None:
            w = w * (1.0 + np.asarray(agreement, np.float64)) / 2.0
    return w


def fuse_many(base: np.ndarray, variant_scores: np.ndarray, weights: np.ndarray, fusion: FusionSettings) -> np.ndarray:
    """reasoning.fusion.fuse for many items at once: base (n,), variant_scores (variants, n)."""
    base = np.asarray(base, np.float64)
    w = np.concatenate([[fusion.base_weight], np.asarray(weights, np.float64)])
    keep = w > 0
    if not keep.any():
        return base.copy()
    s = np.vstack([base[None, :], np.asarray(variant_scores, np.float64).reshape(-1, len(base))])[keep] / fusion.temperature
    w = w[keep]
    m = s.max(0)
    return fusion.temperature * (m + np.log((w[:, None] * np.exp(s - m)).sum(0) / w.sum()))


def loo_effects(base: float, scores: np.ndarray, weights: np.ndarray, fusion: FusionSettings) -> np.ndarray:
    """reasoning.fusion.leave_one_out in one vectorised step: row j of the matrix drops variant j."""
    n = len(scores)
    s = np.tile(np.concatenate([[base], np.asarray(scores, np.float64)]), (n + 1, 1))   # row 0: all variants
    w = np.tile(np.concatenate([[fusion.base_weight], np.asarray(weights, np.float64)]), (n + 1, 1))
    w[np.arange(1, n + 1), np.arange(1, n + 1)] = 0.0
    keep = w > 0
    z = np.where(keep, s / fusion.temperature, -np.inf)
    m = z.max(1, keepdims=True)
    total = np.where(keep, w * np.exp(z - np.where(np.isfinite(m), m, 0.0)), 0.0).sum(1)
    wsum = w.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        fused = fusion.temperature * (m[:, 0] + np.log(total / wsum))
    fused = np.where(wsum > 0, fused, base)   # nothing weighs anything: the base score stands, as in fuse()
    return fused[0] - fused[1:]


def explain(exp: Expansion, base: float, scores: np.ndarray, weights: np.ndarray, fusion: FusionSettings,
            n: int = EXPLAINED) -> list[dict]:
    """The variants that moved one item most (leave-one-out), largest effect first."""
    if not len(scores):
        return []
    effects = loo_effects(base, scores, weights, fusion)
    order = np.argsort(-np.abs(effects), kind="stable")[:n]
    return [{**exp.variants[i].as_dict(), "score": round(float(scores[i]), 6), "weight": round(float(weights[i]), 6),
             "effect": round(float(effects[i]), 6)} for i in order]


@dataclass
class SearchResult:
    query: str
    links: list[dict]
    variants: list[dict]                                     # each with its weight (and agreement, text to audio)
    hits: list[dict] = field(default_factory=list)           # refined top k, each with baseline rank and why
    baseline: list[dict] = field(default_factory=list)       # CLAP's top k

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _rows(exp: Expansion, weights: np.ndarray, agreement: np.ndarray | None) -> list[dict]:
    return [{**v.as_dict(), "weight": round(float(w), 6), "consistency": round(float(c), 6),
             **({"agreement": round(float(a), 6)} if agreement is not None else {})}
            for v, w, c, a in zip(exp.variants, weights, exp.consistency,
                                  agreement if agreement is not None else [None] * len(exp.variants))]


def check_query(text=None, captions=None, k: int = DEFAULT_K) -> list[str] | None:
    """What a caller of the library gave, checked before anything is embedded: a text query a string,
    captions a sequence of strings (None or a number among them is named by its position, instead of
    an AttributeError from deep inside), k a positive whole number. Returns the captions, blank and
    repeated ones left out; an InputError when none is left."""
    from akg.errors import InputError

    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise InputError(f"k (results) must be a whole number of at least 1, not {k!r}")
    if text is not None and not isinstance(text, str):
        raise InputError(f"the query must be a string, not {type(text).__name__} ({text!r:.60})")
    if text is not None and not text.strip():
        raise InputError("the query is empty")
    if captions is None:
        return None
    if isinstance(captions, (str, bytes)) or not isinstance(captions, Iterable):
        raise InputError(f"captions must be a list of strings (or a CSV file's path), not {type(captions).__name__}")
    captions = list(captions)
    for i, c in enumerate(captions):
        if not isinstance(c, str):
            raise InputError(f"captions[{i}] is {type(c).__name__} ({c!r:.60}), not a string")
    texts = list(dict.fromkeys(c for c in captions if c.strip()))
    if not texts:
        raise InputError("the caption set is empty")
    return texts


def search_text(index, enricher: Enricher, text: str, *, k: int = DEFAULT_K, fusion: FusionSettings = DEFAULT_FUSION,
                pool: int | None = None, explained: int = EXPLAINED, expansion: Expansion | None = None) -> SearchResult:
    """The k clips of `index` that best match `text`, refined with the AKG (see the module's docstring)."""
    check_query(text=text, k=k)
    exp = expansion or enricher.expand(text)
    pool = max(pool or 10 * k, k, AGREEMENT_N)
    scores, rows = index.search(np.vstack([exp.emb[None, :], exp.variant_emb]), pool)
    base_rank = {int(r): n for n, r in enumerate(rows[0], 1) if r >= 0}
    n = min(AGREEMENT_N, len(index))
    top0 = set(rows[0][:n].tolist())
    agreement = np.array([len(top0 & set(r[:n].tolist())) / n for r in rows[1:]]) if len(exp.variants) else np.zeros(0)
    cand = np.unique(rows[rows >= 0])
    vecs = np.asarray(index.vectors[cand], np.float32)
    base = vecs @ exp.emb
    var = exp.variant_emb @ vecs.T
    w = variant_weights(fusion, exp, agreement)
    fused = fuse_many(base, var, w, fusion)
    order = np.argsort(-fused, kind="stable")[:k]
    hits = []
    for rank, c in enumerate(order, 1):
        row = int(cand[c])
        hits.append({"rank": rank, "clip": index.path_of(row), "score": round(float(fused[c]), 6),
                     "baseline_score": round(float(base[c]), 6), "baseline_rank": base_rank.get(row),
                     "change": round(float(fused[c] - base[c]), 6),
                     "moved_by": explain(exp, float(base[c]), var[:, c], w, fusion, explained)})
    baseline = [{"rank": n, "clip": index.path_of(int(r)), "score": round(float(s), 6)}
                for n, (r, s) in enumerate(zip(rows[0][:k], scores[0][:k]), 1) if r >= 0]
    return SearchResult(text, [l.__dict__ for l in exp.links], _rows(exp, w, agreement), hits, baseline)


def search_clip(clip_emb: np.ndarray, captions: Sequence[str], enricher: Enricher, *, k: int = DEFAULT_K,
                fusion: FusionSettings = DEFAULT_FUSION, explained: int = EXPLAINED) -> SearchResult:
    """The k captions that best describe a clip, each caption's score fused over its variants."""
    captions = check_query(captions=captions, k=k)
    exps = [enricher.expand(c) for c in captions]
    base = np.array([e.emb @ clip_emb for e in exps], np.float64)
    fused, parts = np.zeros(len(exps)), []
    for i, e in enumerate(exps):
        w = variant_weights(fusion, e)
        s = e.variant_emb @ clip_emb
        fused[i] = fuse_many(base[i:i + 1], s[:, None], w, fusion)[0]
        parts.append((s, w))
    base_rank = {int(i): n for n, i in enumerate(np.argsort(-base, kind="stable"), 1)}
    hits = []
    for rank, i in enumerate(np.argsort(-fused, kind="stable")[:k], 1):
        s, w = parts[i]
        hits.append({"rank": rank, "caption": captions[i], "score": round(float(fused[i]), 6),
                     "baseline_score": round(float(base[i]), 6), "baseline_rank": base_rank[int(i)],
                     "change": round(float(fused[i] - base[i]), 6), "links": [l.__dict__ for l in exps[i].links],
                     "moved_by": explain(exps[i], float(base[i]), s, w, fusion, explained)})
    baseline = [{"rank": n, "caption": captions[i], "score": round(float(base[i]), 6)}
                for n, i in enumerate(np.argsort(-base, kind="stable")[:k], 1)]
    return SearchResult("(clip)", [], [], hits, baseline)


def tag_clip(clip_emb: np.ndarray, enricher: Enricher, *, k: int = DEFAULT_K, fusion: FusionSettings = DEFAULT_FUSION,
             candidates: int | None = None, explained: int = EXPLAINED) -> list[dict]:
    """The clip's k best AKG entities: CLAP's score against every entity name, the best `candidates`
    refined with their facts; each tag with its parents and where it occurs (known facts)."""
    from akg import queries
    from akg.errors import InputError
    from retrieval.knowledge import Link, Variant

    table = enricher.table
    if not table.names:
        raise InputError("the graph holds no entities to tag with: ingest the AKG first")
    base_all = table.emb @ clip_emb
    n = min(len(table.names), max(candidates or 3 * k, k))
    top = np.argsort(-base_all, kind="stable")[:n]
    base_rank = {int(i): r for r, i in enumerate(top, 1)}
    names = [table.names[i] for i in top]
    facts = enricher.facts(names)
    fused, parts = np.zeros(n), []
    for j, (i, name) in enumerate(zip(top, names)):
        variants = [Variant(f"{name}, {f.tail}", "parent" if f.relation in TAXONOMY else "relation", name,
                            f.relation, f.tail, f.kind, float(f.confidence)) for f in facts[name]]
        emb = enricher.embed([v.text for v in variants]) if variants else np.zeros((0, table.emb.shape[1]), np.float32)
        exp = Expansion(name, table.emb[i], [Link(name, "named", 1.0)], variants, emb)
        w, s = variant_weights(fusion, exp), emb @ clip_emb
        fused[j] = fuse_many(base_all[i:i + 1], s[:, None], w, fusion)[0]
        parts.append((exp, s, w))
    order = np.argsort(-fused, kind="stable")[:k]
    chosen = [names[j] for j in order]
    known = {}
    for row in enricher.graph.read(queries.get("accepted_tails_of"),
                                   {"heads": chosen, "relations": [*TAXONOMY, "occurs in"]}):
        known[(row["head"], row["relation"])] = sorted(row["tails"])
    tags = []
    for rank, j in enumerate(order, 1):
        exp, s, w = parts[j]
        i, name = top[j], names[j]
        tags.append({"rank": rank, "entity": name, "score": round(float(fused[j]), 6),
                     "baseline_score": round(float(base_all[i]), 6), "baseline_rank": base_rank[int(i)],
                     "change": round(float(fused[j] - base_all[i]), 6),
                     "parents": sorted({t for r in TAXONOMY for t in known.get((name, r), [])}),
                     "occurs_in": known.get((name, "occurs in"), []),
                     "moved_by": explain(exp, float(base_all[i]), s, w, fusion, explained)})
    return tags
