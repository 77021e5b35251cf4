"""Fusing a label's base prompt score with its enriched prompts' scores, and explaining the result.

Scores are cosine similarities between the clip's audio embedding and prompt text embeddings.

Log-sum-exp fusion (default), a weighted log-mean-exp with temperature tau:

    fused = tau * log( (w0 * exp(s0 / tau) + sum_i w_i * exp(s_i / tau)) / (w0 + sum_i w_i) )

s0 is the base prompt's score ("dog bark"), s_i the enriched prompts' ("dog bark, domestic
animal"). The result lies between the smallest and the largest score: as tau -> 0 it tends to the
largest (one strong piece of evidence suffices), as tau grows to the weighted mean. Normalising by
the weights keeps labels with many facts from winning by count alone. Defaults: tau = 0.05,
w0 = 1, every w_i = 1.

Reliability-weighted fusion (after ASK): the same formula, with each enriched prompt's weight

    w_i = max(0, cos(text_i, text_base)) ** gamma  *  (1 if the fact is known else beta * conf_i)

the first factor trusts prompts whose text stays close to the label's meaning, the second trusts
graph facts fully and KGE predictions by their confidence, conf_i = exp(score_i - best score for
that head and relation) (1 for the model's top prediction). Defaults: gamma = 2, beta = 0.5.

The explanation of a label gives, for each enriched prompt, how much the fused score would change
without it (leave-one-out): positive = the prompt raised the label, negative = it lowered it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from akg.errors import InputError


class FusionSettingsError(InputError, ValueError):
    """A fusion setting out of range: an input error for the CLI, the API and the explorer alike."""


@dataclass(frozen=True)
class FusionSettings:
    method: str = "lse"          # "lse" or "reliability"
    temperature: float = 0.05
    base_weight: float = 1.0
    prompt_weight: float = 1.0   # w_i for lse
    gamma: float = 2.0           # reliability: consistency exponent
    beta: float = 0.5            # reliability: weight of a predicted fact relative to a known one

    def __post_init__(self):
        if self.method not in ("lse", "reliability"):
            raise FusionSettingsError(f"fusion {self.method!r}: use lse or reliability")
        values = (self.temperature, self.base_weight, self.prompt_weight, self.gamma, self.beta)
        if not all(math.isfinite(v) for v in values):
            raise FusionSettingsError("fusion settings must be finite numbers")
        if self.temperature <= 0 or self.base_weight < 0 or self.prompt_weight < 0 or self.beta < 0 or self.gamma < 0:
            raise FusionSettingsError("the temperature must be positive, the weights and exponents not negative")


def weighted_lme(scores: np.ndarray, weights: np.ndarray, tau: float) -> float:
    """tau * log(sum w e^(s/tau) / sum w), computed stably."""
    scores, weights = np.asarray(scores, np.float64), np.asarray(weights, np.float64)
    keep = weights > 0
    if not keep.any():
        return float("nan")
    s, w = scores[keep] / tau, weights[keep]
    m = s.max()
    return float(tau * (m + np.log((w * np.exp(s - m)).sum() / w.sum())))


def prompt_weights(settings: FusionSettings, consistency: np.ndarray, known: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Weights of a label's enriched prompts under the chosen method."""
    n = len(consistency)
    if settings.method == "lse":
        return np.full(n, settings.prompt_weight, dtype=np.float64)
    trust = np.where(np.asarray(known, bool), 1.0, settings.beta * np.asarray(confidence, np.float64))
    return np.clip(np.asarray(consistency, np.float64), 0.0, None) ** settings.gamma * trust


def fuse(base: float, enriched: np.ndarray, weights: np.ndarray, settings: FusionSettings) -> float:
    scores = np.concatenate([[base], np.asarray(enriched, np.float64)])
    w = np.concatenate([[settings.base_weight], np.asarray(weights, np.float64)])
    fused = weighted_lme(scores, w, settings.temperature)
    return float(base) if math.isnan(fused) else fused  # nothing weighs anything: the base score stands


def leave_one_out(base: float, enriched: np.ndarray, weights: np.ndarray, settings: FusionSettings) -> np.ndarray:
    """fused(all) - fused(all but prompt i), for each enriched prompt i."""
    full = fuse(base, enriched, weights, settings)
    effects = np.zeros(len(enriched))
    for i in range(len(enriched)):
        rest = np.delete(np.asarray(weights, np.float64), i)
        fused_without = fuse(base, np.delete(np.asarray(enriched, np.float64), i), rest, settings)
        effects[i] = full - fused_without
    return effects
