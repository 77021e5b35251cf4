"""Refining CLAP's zero-shot prediction of a clip with the prompt bank, and explaining it.

Per clip: the audio embedding (cached by the file's content hash), the base scores of every label
(one matrix-vector product), the top-k labels, and for each of those its enriched prompts' scores
fused with its base score (reasoning.fusion). Labels outside the top k keep their base score.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from akg.errors import AkgError
from reasoning.fusion import FusionSettings, leave_one_out, prompt_weights, weighted_lme
from reasoning.prompts import PromptBank


@dataclass
class Refinement:
    baseline: np.ndarray      # (labels,) base prompt scores
    refined: np.ndarray       # (labels,) fused for the top k, base elsewhere
    top: np.ndarray           # indices of the top-k labels by base score (the ones refined)

    def ranked(self, k: int) -> np.ndarray:
        """The k best labels by refined score over all labels (what argmax-based evaluation uses)."""
        return np.argsort(-self.refined, kind="stable")[:k]


class Refiner:
    def __init__(self, bank: PromptBank, fusion: FusionSettings = FusionSettings(), top_k: int = 10):
        if top_k < 1:
            raise AkgError("top_k (labels refined per clip) must be at least 1")
        self.bank, self.fusion, self.top_k = bank, fusion, top_k
        known = np.array([f.kind == "known" for f in bank.facts], dtype=bool)
        conf = np.array([f.confidence for f in bank.facts], dtype=np.float64)
        # weights depend on the bank and settings only: computed once, not per clip
        self.weights = prompt_weights(fusion, bank.consistency, known, conf) if len(bank.facts) else np.zeros(0)

    def refine(self, audio_emb: np.ndarray) -> Refinement:
        bank, tau = self.bank, self.fusion.temperature
        base = bank.base_emb @ audio_emb
        k = min(self.top_k, len(base))
        top = np.argpartition(-base, k - 1)[:k]
        top = top[np.argsort(-base[top], kind="stable")]
        refined = base.astype(np.float64).copy()
        for label in top:
            sl = bank.of(label)
            if sl.stop > sl.start:
                scores = np.concatenate([[base[label]], bank.prompt_emb[sl] @ audio_emb])
                weights = np.concatenate([[self.fusion.base_weight], self.weights[sl]])
                fused = weighted_lme(scores, weights, tau)
                refined[label] = base[label] if np.isnan(fused) else fused
        return Refinement(base, refined, top)

    def explain(self, audio_emb: np.ndarray, result: Refinement, *, per_label: int = 5) -> dict[int, dict]:
        """For each top-k label: base and fused score, and the prompts that moved it most (leave-one-out)."""
        out = {}
        for label in result.top:
            sl = self.bank.of(label)
            scores = self.bank.prompt_emb[sl] @ audio_emb
            effects = leave_one_out(float(result.baseline[label]), scores, self.weights[sl], self.fusion) if len(scores) else np.zeros(0)
            order = np.argsort(-np.abs(effects), kind="stable")[:per_label]
            out[int(label)] = {
                "base": float(result.baseline[label]), "fused": float(result.refined[label]),
                "change": float(result.refined[label] - result.baseline[label]), "prompts_used": int(len(scores)),
                "prompts": [{"prompt": self.bank.prompts[sl.start + i], "relation": self.bank.facts[sl.start + i].relation,
                             "tail": self.bank.facts[sl.start + i].tail, "kind": self.bank.facts[sl.start + i].kind,
                             "score": float(scores[i]), "weight": float(self.weights[sl.start + i]),
                             "effect": float(effects[i])} for i in order],
            }
        return out


class AudioEmbeddingCache:
    """Audio embeddings by (encoder, file content hash): an ablation re-run encodes no audio.

    An entry is used only if it is what `put` writes: a 1-d float32 .npy of the encoder's dimension
    (`dim`, when known), finite and of unit length. Anything else (a damaged, truncated or foreign
    file) is a miss: the clip is embedded again and the entry rewritten, never a crash or a wrong score."""

    def __init__(self, root: Path, encoder_identity: str, dim: int | None = None):
        self.dir = Path(root) / hashlib.sha256(encoder_identity.encode()).hexdigest()[:16]
        self.dim = dim

    def get(self, content_hash: str) -> np.ndarray | None:
        path = self.dir / f"{content_hash}.npy"
        try:
            with open(path, "rb") as f:
                emb = np.lib.format.read_array(f, allow_pickle=False)  # .npy only: no pickle, no zip
        except (OSError, ValueError, EOFError):
            return None
        if (emb.dtype != np.float32 or emb.ndim != 1 or (self.dim is not None and emb.shape != (self.dim,))
                or not np.isfinite(emb).all() or abs(float(np.linalg.norm(emb)) - 1.0) > 1e-3):
            return None
        return emb

    def put(self, content_hash: str, emb: np.ndarray) -> None:
        """Best effort: a read-only or full disk costs the cache entry, never the result."""
        tmp = self.dir / f".{content_hash}.{os.getpid()}.tmp.npy"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            np.save(tmp, emb.astype(np.float32), allow_pickle=False)
            tmp.replace(self.dir / f"{content_hash}.npy")
        except OSError:
            pass
        finally:
            tmp.unlink(missing_ok=True)


@dataclass
class ClipOutcome:
    path: str
    embedding: np.ndarray | None = None
    error: str | None = None
    cached: bool = False
    notes: list[str] = field(default_factory=list)


def embed_clips(encoder, paths: list[Path], cache: AudioEmbeddingCache | None, *, max_seconds: float,
                batch: int = 8, progress=None) -> list[ClipOutcome]:
    """Embeddings of the clips; a clip that cannot be read gets its error and the others go on."""
    from akg.audio import check_max_seconds, file_sha256, load_audio

    check_max_seconds(max_seconds)  # a bad limit is the caller's one error, not every clip's
    outcomes, pending = [], []
    for path in paths:
        outcome = ClipOutcome(str(path))
        outcomes.append(outcome)
        try:
            digest = file_sha256(path) if cache else None
            hit = cache.get(digest) if cache else None
            if hit is not None:
                outcome.embedding, outcome.cached = hit, True
                continue
            wave = load_audio(path, encoder.sample_rate, max_seconds=max_seconds)
        except AkgError as e:
            outcome.error = str(e)
            continue
        except OSError as e:
            outcome.error = f"{path}: {e.strerror or e}"
            continue
        pending.append((outcome, digest, wave))
        if len(pending) == batch:
            _flush(encoder, pending, cache, progress)
    _flush(encoder, pending, cache, progress)
    return outcomes


def _flush(encoder, pending, cache, progress) -> None:
    if not pending:
        return
    embs = encoder.embed_audio([w for _, _, w in pending])
    for (outcome, digest, _), emb in zip(pending, embs):
        outcome.embedding = emb
        if cache:
            cache.put(digest, emb)
    if progress:
        progress(len(pending))
    pending.clear()
