"""CLAP encoders behind one small interface: embed audio, embed text.

Two backends:
- `hf` (default): transformers' ClapModel/ClapProcessor from a hub id or a local directory.
- `laion-clap`: the laion_clap package with a local checkpoint file (fusion or not, HTSAT-tiny or
  -base). An optional extra: laion_clap imports torchvision, whose PyPI wheels need CUDA torch,
  so it cannot even be imported beside CI's CPU-only torch. Its adapter is tested with stand-ins for
  what it imports and downloads, and verified only where laion_clap really runs.

Nothing is downloaded unless the user allows it (`allow_download=True`, `--allow-download`):
without it the hub is never contacted, and a missing model gives a message that says how to
provide one. Audio is decoded and resampled by `akg.audio`; clips longer than the model's
window are cut into consecutive windows whose embeddings are averaged, so results do not depend on
a random crop. Embeddings come back L2-normalised, as float32 numpy arrays.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from akg.errors import ConfigError, InputError

DEFAULT_HF_MODEL = "laion/clap-htsat-unfused"
HOW_TO_PROVIDE = (
    "provide a CLAP model: --model DIR (a directory saved with ClapModel/ClapProcessor.save_pretrained, "
    "or a hub id already in the local Hugging Face cache), or --encoder laion-clap --checkpoint FILE.pt; "
    "add --allow-download to let it fetch a hub model (e.g. laion/clap-htsat-unfused)"
)


class Encoder(Protocol):
    identity: str          # stable across runs: what embeddings of this encoder are cached under
    sample_rate: int
    window_seconds: float

    def embed_text(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_audio(self, clips: Sequence[np.ndarray]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _dir_fingerprint(path: Path) -> str:
    """Hash of a model directory's file names, sizes and modification times (cheap, changes on re-save)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _cached_snapshot(repo_id: str) -> str:
    """The folder of a hub model in the local Hugging Face cache, or a ConfigError; no network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(found, str):
        raise ConfigError(f"the CLAP model {repo_id!r} is not in the local Hugging Face cache; {HOW_TO_PROVIDE}")
    return str(Path(found).parent)


def _check_model_dir(path: Path) -> None:
    """What transformers would not say plainly about a CLAP model directory, checked before loading:
    a missing file (without a tokenizer it silently builds one that maps every word to <unk>), or
    weights that are damaged or do not fit config.json (where it prints a report of every tensor)."""
    def refuse(problem: str):
        raise ConfigError(f"cannot load the CLAP model {path}: {problem}")

    if not (path / "config.json").is_file():
        refuse("config.json is missing: not a model saved with save_pretrained")
    if not any((path / f).is_file() for f in ("processor_config.json", "preprocessor_config.json")):
        refuse("no feature extractor settings (processor_config.json or preprocessor_config.json)")
    if not ((path / "tokenizer.json").is_file() or all((path / f).is_file() for f in ("vocab.json", "merges.txt"))):
        refuse("no tokenizer (tokenizer.json, or vocab.json and merges.txt)")
    for name in ("config.json", "processor_config.json", "preprocessor_config.json", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "vocab.json"):
        try:
            if (path / name).is_file():
                json.loads((path / name).read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            refuse(f"{name} is not readable JSON: truncated or damaged ({e})")
    weights = path / "model.safetensors"
    if not weights.is_file():
        if not any((path / f).is_file() for f in ("pytorch_model.bin", "model.safetensors.index.json",
                                                   "pytorch_model.bin.index.json")):
            refuse("no weights (model.safetensors or pytorch_model.bin)")
        return  # pytorch_model.bin or a sharded model: transformers checks those itself
    from safetensors import safe_open

    try:
        with safe_open(weights, framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors' own error type, OSError
        refuse(f"model.safetensors is not a readable safetensors file: truncated or damaged ({e})")
    import torch
    from transformers import ClapConfig, ClapModel

    try:
        with _quiet_transformers(), torch.device("meta"):  # shapes only: nothing is allocated
            expected = {k: tuple(v.shape) for k, v in ClapModel(ClapConfig.from_pretrained(path)).state_dict().items()}
    except Exception as e:  # noqa: BLE001
        refuse(f"config.json does not describe a CLAP model ({(str(e).strip().splitlines() or [type(e).__name__])[0]})")
    wrong = [f"{k} is {list(found[k])}, config.json says {list(v)}" for k, v in expected.items() if k in found and found[k] != v]
    if wrong:
        refuse(f"the weights in model.safetensors do not fit config.json: {'; '.join(wrong[:2])}")


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' progress bars and load reports off while a model loads: a failure is one message."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _windows_mean(encoder_fn, clips: Sequence[np.ndarray], sample_rate: int, window_seconds: float) -> np.ndarray:
    """Embed each clip as the mean of its windows' (normalised) embeddings."""
    from akg.audio import windows

    pieces, owner = [], []
    for i, clip in enumerate(clips):
        for w in windows(clip, sample_rate, window_seconds):
            pieces.append(w)
            owner.append(i)
    emb = _normalise(encoder_fn(pieces))
    out = np.zeros((len(clips), emb.shape[1]), dtype=np.float32)
    np.add.at(out, np.asarray(owner), emb)
    return _normalise(out)


class HFClapEncoder:
    """transformers' ClapModel: a hub id or a local directory."""

    def __init__(self, model: str | Path = DEFAULT_HF_MODEL, *, device: str = "cpu", allow_download: bool = False,
                 batch_size: int = 32):
        import torch
        from transformers import ClapModel, ClapProcessor

        local = Path(model).expanduser()
        source = str(local) if local.is_dir() else str(model)
        looks_like_path = str(model).startswith((".", "/", "~")) or str(model).count("/") > 1
        if not local.is_dir() and looks_like_path:
            raise ConfigError(f"no CLAP model directory at {model}; {HOW_TO_PROVIDE}")
        if not local.is_dir() and not allow_download:
            # A hub id without --allow-download: only the local cache's copy, found without any request
            # (huggingface_hub can contact the hub even under local_files_only).
            source = _cached_snapshot(str(model))
        if Path(source).is_dir():
            _check_model_dir(Path(source))
        try:
            with _quiet_transformers():
                # the processor first: its files are small, and a bad one fails before the weights are read
                self.processor = ClapProcessor.from_pretrained(source, local_files_only=not allow_download)
                self.model = ClapModel.from_pretrained(source, local_files_only=not allow_download).to(device).eval()
        except Exception as e:  # noqa: BLE001 - transformers, tokenizers and safetensors raise many kinds
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"cannot load the CLAP model {str(model)!r} ({first}); {HOW_TO_PROVIDE}") from None
        self.torch, self.device, self.batch_size = torch, device, batch_size
        fe = self.processor.feature_extractor
        self.sample_rate = int(fe.sampling_rate)
        self.window_seconds = float(getattr(fe, "max_length_s", 10))
        version = _dir_fingerprint(local) if local.is_dir() else getattr(self.model.config, "_commit_hash", None) or "hub"
        self.identity = f"hf:{source}:{version}"

    @staticmethod
    def _features(out):
        # transformers 4 returns the projected, normalised features; 5 returns an output object holding them
        return out if hasattr(out, "shape") else out.pooler_output

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            inputs = self.processor(text=list(texts[start:start + self.batch_size]), return_tensors="pt", padding=True,
                                    truncation=True)  # to the tokenizer's model_max_length
            with self.torch.inference_mode():
                out = self.model.get_text_features(**{k: v.to(self.device) for k, v in inputs.items()})
            chunks.append(self._features(out).float().cpu().numpy())
        return _normalise(np.concatenate(chunks)) if chunks else np.zeros((0, self.model.config.projection_dim), np.float32)

    def _embed_windows(self, pieces: Sequence[np.ndarray]) -> np.ndarray:
        chunks = []
        for start in range(0, len(pieces), self.batch_size):
            inputs = self.processor(audio=list(pieces[start:start + self.batch_size]), sampling_rate=self.sample_rate,
                                    return_tensors="pt")
            if "is_longer" in inputs:
                # no window is longer than the model's: the fused extractor would otherwise flag a
                # random item of the batch as longer, making embeddings random and batch-dependent
                inputs["is_longer"] = self.torch.zeros_like(inputs["is_longer"])
            with self.torch.inference_mode():
                out = self.model.get_audio_features(**{k: v.to(self.device) for k, v in inputs.items()})
            chunks.append(self._features(out).float().cpu().numpy())
        return np.concatenate(chunks)

    def embed_audio(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return _windows_mean(self._embed_windows, clips, self.sample_rate, self.window_seconds)


class LaionClapEncoder:
    """laion_clap's CLAP_Module with a local checkpoint (the paper's checkpoints are laion-clap files)."""

    sample_rate = 48000
    window_seconds = 10.0

    def __init__(self, checkpoint: str | Path, *, fusion: bool = False, audio_model: str = "HTSAT-tiny",
                 device: str = "cpu", allow_download: bool = False):
        checkpoint = Path(checkpoint).expanduser()
        if not checkpoint.is_file():
            raise ConfigError(f"no laion-clap checkpoint at {checkpoint}; {HOW_TO_PROVIDE}")
        if audio_model not in ("HTSAT-tiny", "HTSAT-base"):
            raise InputError(f"audio model {audio_model!r}: use HTSAT-tiny or HTSAT-base")
        saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        if not allow_download:
            # laion_clap fetches roberta-base from the hub when it builds its text branch
            os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        try:
            self._load(checkpoint, fusion, audio_model, device)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.identity = f"laion-clap:{audio_model}:{'fusion' if fusion else 'unfused'}:{_file_fingerprint(checkpoint)}"

    def _load(self, checkpoint: Path, fusion: bool, audio_model: str, device: str) -> None:
        try:
            import laion_clap
        except Exception as e:  # ImportError, or torchvision's "operator torchvision::nms does not exist"
            raise ConfigError(f"the laion-clap backend needs the laion_clap package with a torchvision matching torch "
                              f"({type(e).__name__}: {e}); install the 'laion' extra where CUDA torch is used, "
                              "or use the default transformers backend (--encoder hf)") from None
        try:
            self.module = laion_clap.CLAP_Module(enable_fusion=fusion, amodel=audio_model, device=device)
            self.module.load_ckpt(str(checkpoint))
        except OSError as e:
            raise ConfigError(f"laion-clap could not load its parts ({str(e).splitlines()[0]}); it needs roberta-base "
                              "in the local Hugging Face cache, or --allow-download") from None

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self.module.get_text_embedding(list(texts), use_tensor=False))

    def _embed_windows(self, pieces: Sequence[np.ndarray]) -> np.ndarray:
        length = int(self.sample_rate * self.window_seconds)
        # repeat-pad a clip shorter than the window, as laion_clap and the transformers backend do
        batch = np.stack([np.tile(p, -(-length // len(p)))[:length] for p in pieces]).astype(np.float32)
        return self.module.get_audio_embedding_from_data(x=batch, use_tensor=False)

    def embed_audio(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return _windows_mean(self._embed_windows, clips, self.sample_rate, self.window_seconds)


@dataclass(frozen=True)
class EncoderSpec:
    backend: str = "hf"                 # "hf" or "laion-clap"
    model: str = DEFAULT_HF_MODEL       # hf: hub id or directory
    checkpoint: str | None = None       # laion-clap: the .pt file
    fusion: bool = False
    audio_model: str = "HTSAT-tiny"
    device: str = "cpu"
    allow_download: bool = False

    @classmethod
    def from_env(cls, **given) -> EncoderSpec:
        """Defaults from AKG_CLAP_MODEL / AKG_CLAP_CHECKPOINT, overridden by what the user typed."""
        from akg.config import Settings

        settings = Settings.from_env()
        base = {}
        if settings.clap_checkpoint:
            base.update(backend="laion-clap", checkpoint=settings.clap_checkpoint)
        if settings.clap_model:
            base.update(model=settings.clap_model)
        base.update({k: v for k, v in given.items() if v is not None})
        return cls(**base)

    def describe(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def load_encoder(spec: EncoderSpec) -> Encoder:
    if spec.backend == "hf":
        return HFClapEncoder(spec.model, device=spec.device, allow_download=spec.allow_download)
    if spec.backend == "laion-clap":
        if not spec.checkpoint:
            raise ConfigError(f"the laion-clap backend needs a checkpoint file (.pt); {HOW_TO_PROVIDE}")
        return LaionClapEncoder(spec.checkpoint, fusion=spec.fusion, audio_model=spec.audio_model,
                                device=spec.device, allow_download=spec.allow_download)
    raise InputError(f"unknown encoder {spec.backend!r}: use hf or laion-clap")
