"""Classifying clips: CLAP's zero-shot scores refined with the AKG, shaped once for every front end.

`akg classify`, the explorer's Audio page and `akg.classify()` all call `classify_clips` (or, for one
embedded clip, `classify_embedding`), so they rank the same labels the same way: the baseline is
CLAP's top k; the refined list is the top k of *all* labels by refined score (a label outside the
baseline's top k keeps its base score, and can still be ranked), each with its baseline rank.
The defaults below are the only copy: the commands' options and the Python API read them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasoning.fusion import FusionSettings
from reasoning.refine import Refiner, embed_clips

DEFAULT_LABELS = "esc50"
DEFAULT_TOP_K = 10
DEFAULT_MAX_SECONDS = 600.0
DEFAULT_EXPLAINED = 5  # prompts shown per label in an explanation


@dataclass
class ClipResult:
    clip: str
    baseline: list[dict] = field(default_factory=list)   # [{"label", "score"}], CLAP's top k
    refined: list[dict] = field(default_factory=list)    # [{"label", "score", "baseline_rank", "change"}]
    explanation: dict[str, dict] | None = None           # label -> leave-one-out effects of its prompts
    error: str | None = None

    def as_dict(self) -> dict:
        if self.error:
            return {"clip": self.clip, "error": self.error}
        out = {"clip": self.clip, "baseline": self.baseline, "refined": self.refined}
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


def classify_embedding(refiner: Refiner, embedding: np.ndarray, label_texts: Sequence[str], *, clip: str,
                       explain: bool = True, per_label: int = DEFAULT_EXPLAINED) -> ClipResult:
    """One clip's baseline and refined rankings (top k of the refiner) and, if asked, why."""
    r = refiner.refine(embedding)
    k = refiner.top_k
    baseline_rank = {int(i): n for n, i in enumerate(np.argsort(-r.baseline, kind="stable"), 1)}
    baseline = [{"label": label_texts[i], "score": round(float(r.baseline[i]), 6)} for i in r.top]
    refined = [{"label": label_texts[i], "score": round(float(r.refined[i]), 6), "baseline_rank": baseline_rank[int(i)],
                "change": round(float(r.refined[i] - r.baseline[i]), 6)} for i in r.ranked(k)]
    explanation = None
    if explain:
        explanation = {label_texts[i]: e for i, e in refiner.explain(embedding, r, per_label=per_label).items()}
    return ClipResult(clip, baseline, refined, explanation)


def classify_clips(session, clips: Sequence[str | Path], *, fusion: FusionSettings = FusionSettings(),
                   top_k: int = DEFAULT_TOP_K, max_seconds: float = DEFAULT_MAX_SECONDS, explain: bool = True,
                   per_label: int = DEFAULT_EXPLAINED,
                   progress: Callable[[int], object] | None = None) -> list[ClipResult]:
    """Every clip of `clips` through a reasoning session (reasoning.workflows.open_session): a result per
    clip in order, with its error instead of rankings when it could not be read."""
    refiner = Refiner(session.bank, fusion, top_k)
    outcomes = embed_clips(session.encoder, list(clips), session.audio_cache, max_seconds=max_seconds, progress=progress)
    texts = session.bank.label_texts
    return [ClipResult(str(o.path), error=o.error) if o.error else
            classify_embedding(refiner, o.embedding, texts, clip=str(o.path), explain=explain, per_label=per_label)
            for o in outcomes]


def session_summary(session, fusion: FusionSettings, top_k: int) -> dict:
    """What a classification used: label set, coverage, encoder, KGE model, prompts, fusion."""
    return {"labels": session.label_set.key, "coverage": session.label_set.coverage(),
            "encoder": session.encoder.identity,
            "kge_model": session.predictor.stored.name if session.predictor else None,
            "prompts": len(session.bank.prompts), "prompt_bank_cached": session.bank_from_cache,
            "fusion": dict(fusion.__dict__), "top_k": top_k}
