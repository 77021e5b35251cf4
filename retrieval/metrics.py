"""Retrieval metrics: R@1/5/10 and mAP@10, in the two conventions papers report.

Ranks are 1-based; ties are broken by position (the earlier clip or caption first), as a stable sort.

Text to audio (every caption a query, exactly one relevant clip): both conventions agree.
    R@k    = share of queries whose clip is ranked k or better
    mAP@10 = mean over queries of AP@10 = 1/rank if rank <= 10 else 0

Audio to text (every clip a query, its captions the relevant items; R@k by the best-ranked one):
- `dcase` (DCASE language-based audio retrieval, whose mAP@10 has one relevant item per query): the
  clip's best-ranked caption is the relevant item, AP@10 = 1/best rank if <= 10 else 0.
- `laion` (LAION-CLAP's evaluation on Clotho and AudioCaps, `evaluate_clotho_audiocaps`): AP@10 over
  all the clip's captions, sum over those ranked in the top 10 of (j / rank_j), j = 1, 2, ... in rank
  order, divided by the number of captions (5 in Clotho). LAION-CLAP's code takes the captions in
  their file order rather than rank order when forming j / rank_j; we sort them (the textbook AP@10),
  which is the same whenever the captions' ranks increase in file order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (1, 5, 10)
CONVENTIONS = ("dcase", "laion")


def ranks_of(scores: np.ndarray, relevant: Sequence[int]) -> np.ndarray:
    """For each row of `scores` (queries x items), the 1-based rank of its relevant item."""
    scores = np.asarray(scores, np.float64)
    rel = np.asarray(relevant, dtype=np.int64)
    target = scores[np.arange(len(rel)), rel][:, None]
    cols = np.arange(scores.shape[1])[None, :]
    better = (scores > target) | ((scores == target) & (cols < rel[:, None]))
    return better.sum(1) + 1


def text_to_audio(scores: np.ndarray, clip_of_caption: Sequence[int]) -> dict:
    """scores: captions x clips; clip_of_caption: each caption's clip."""
    r = ranks_of(scores, clip_of_caption)
    return {**{f"R@{k}": float((r <= k).mean()) for k in KS}, "mAP@10": float(np.where(r <= 10, 1.0 / r, 0.0).mean())}


def audio_to_text(scores: np.ndarray, captions_of_clip: Sequence[Sequence[int]], convention: str) -> dict:
    """scores: clips x captions; captions_of_clip: each clip's caption indices."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention {convention!r}: use one of {', '.join(CONVENTIONS)}")
    best, aps = [], []
    for i, caps in enumerate(captions_of_clip):
        r = np.sort(ranks_of(np.repeat(scores[i:i + 1], len(caps), 0), list(caps)))
        best.append(r[0])
        if convention == "dcase":
            aps.append(1.0 / r[0] if r[0] <= 10 else 0.0)
        else:
            top = r[r <= 10]
            aps.append(float((np.arange(1, len(top) + 1) / top).sum() / len(caps)))
    best = np.asarray(best)
    return {**{f"R@{k}": float((best <= k).mean()) for k in KS}, "mAP@10": float(np.mean(aps))}
