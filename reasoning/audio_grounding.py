"""Entities grounded in sound: example clips per AKG entity for training, and a clip as a query.

`example_audio` reads a labelled audio collection in a layout `zeroshot-eval` reads (ESC-50,
UrbanSound8K, FSD50K metadata), maps each label to its AKG entity as the label sets do (the
dataset's SALT label set, or a custom label file with `label<TAB>entity` lines), embeds every clip
with CLAP (through the audio embedding cache, so a second run encodes nothing) and pools each
entity's clips: the mean of their unit-length embeddings, made unit length again. A label that is
not in the label set, a label without an AKG entity and a clip that cannot be read are one-line
errors (the clip's names the file): a model grounded in half the clips asked for is not what the
user asked for.

`clip_feature` embeds a clip that is no entity with the CLAP a model was grounded with (checked by
its identity), and `predict_clip` asks the model what the AKG holds for it: the clip is an entity
with its audio feature alone (kge/grounded.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from akg.config import Settings
from akg.encoders import EncoderSpec, load_encoder
from akg.errors import ConfigError, InputError
from kge.grounded import AudioExamples, Grounding
from reasoning.classify import DEFAULT_MAX_SECONDS
from reasoning.evaluation import label_matrix, read_metadata
from reasoning.refine import AudioEmbeddingCache, embed_clips
from reasoning.workflows import cache_root, load_label_set


def _shown(names: list[str], n: int = 5) -> str:
    return ", ".join(map(repr, names[:n])) + (f" (and {len(names) - n} more)" if len(names) > n else "")


def _spec_dict(spec: EncoderSpec) -> dict:
    return {k: v for k, v in spec.__dict__.items() if k not in ("device", "allow_download")}


def example_audio(graph, settings: Settings, *, audio_dir: Path, meta: Path, dataset: str | None = None,
                  encoder_spec: EncoderSpec | None = None, encoder=None, max_seconds: float = DEFAULT_MAX_SECONDS,
                  progress: Callable[[int], object] | None = None) -> AudioExamples:
    """Each AKG entity's example clips, embedded and pooled (see the module's docstring)."""
    meta = Path(meta)
    layout, items = read_metadata(meta, Path(audio_dir))
    label_set = load_label_set(graph, dataset or layout)
    labels = label_set.labels
    y, unknown = label_matrix(items, [l.text for l in labels], [l.name for l in labels])
    if unknown:
        raise InputError(f"{len(unknown)} label(s) not in the label set {label_set.key!r}: {_shown(unknown)}; "
                         "name the right one with --dataset", file=str(meta))
    used = y.any(axis=0)
    unmapped = [l.name for l, u in zip(labels, used) if u and l.entity is None]
    if unmapped:
        raise InputError(f"{len(unmapped)} label(s) have no AKG entity in the label set {label_set.key!r}: "
                         f"{_shown(unmapped)}; map them with --dataset FILE (lines label<TAB>entity)", file=str(meta))
    spec = encoder_spec or EncoderSpec.from_env()
    encoder = encoder or load_encoder(spec)
    cache = AudioEmbeddingCache(cache_root(settings) / "audio", encoder.identity)
    outcomes = embed_clips(encoder, [it.path for it in items], cache, max_seconds=max_seconds, progress=progress)
    bad = [o.error for o in outcomes if o.error]
    if bad:
        raise InputError(bad[0] + (f" (and {len(bad) - 1} more clips that cannot be read)" if len(bad) > 1 else ""))
    sums: dict[str, np.ndarray] = {}
    clips: dict[str, int] = {}
    for row, outcome in zip(y, outcomes):
        for entity in {labels[c].entity for c in np.flatnonzero(row)}:  # a multi-label clip counts for each
            sums[entity] = sums.get(entity, 0) + outcome.embedding.astype(np.float64)
            clips[entity] = clips.get(entity, 0) + 1
    vectors = {e: (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32) for e, v in sorted(sums.items())}
    dim = len(next(iter(vectors.values())))
    return AudioExamples(vectors, dict(sorted(clips.items())), encoder.identity, dim, _spec_dict(spec), encoder)


def train_audio_grounded(graph, settings: Settings, config, *, audio_dir: Path | None, meta: Path | None,
                         dataset: str | None = None, encoder_spec: EncoderSpec | None = None, models_root: Path,
                         name: str | None = None, evaluate_after: bool = True, progress: bool = False):
    """`akg train --grounded text,audio --audio-examples DIR --meta CSV`: kge.workflows.train_from_graph
    with the entities' example clips."""
    from kge import store
    from kge.workflows import train_from_graph

    if not (config.grounding and Grounding.from_dict(config.grounding).audio):
        raise InputError("example clips (--audio-examples, --meta) only apply to a model grounded in audio: "
                         "add --grounded text,audio")
    if audio_dir is None or meta is None:
        raise InputError("grounding in audio needs example clips: give --audio-examples DIR and --meta CSV")
    if name is not None:
        store.check_new_name(name, models_root)  # before the clips are embedded
    audio = example_audio(graph, settings, audio_dir=audio_dir, meta=meta, dataset=dataset,
                          encoder_spec=encoder_spec or EncoderSpec.from_env(device=config.device))
    return train_from_graph(graph, config, models_root=models_root, name=name, evaluate_after=evaluate_after,
                            progress=progress, audio=audio)


def clip_feature(grounding: dict, clip: Path, settings: Settings, *, encoder=None, device: str = "cpu",
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """A clip's CLAP audio embedding by the CLAP the model was grounded with (`encoder` when it is that
    one, else rebuilt from the model's record); cached like every clip's."""
    g = Grounding.from_dict(grounding)
    if not g.audio:
        raise InputError("the model is not grounded in audio: train one with `akg train --grounded text,audio "
                         "--audio-examples DIR --meta CSV`")
    if encoder is None or encoder.identity != g.audio_encoder_id:
        encoder = load_encoder(EncoderSpec(**{**(g.audio_clap or {}), "device": device}))
    if encoder.identity != g.audio_encoder_id:
        raise ConfigError(f"the model was grounded in the audio of the CLAP {g.audio_encoder_id}, but the one here is "
                          f"{encoder.identity}: embed clips with that CLAP, or retrain")
    cache = AudioEmbeddingCache(cache_root(settings) / "audio", encoder.identity, dim=g.audio_dim)
    outcome = embed_clips(encoder, [Path(clip)], cache, max_seconds=max_seconds)[0]
    if outcome.error:
        raise InputError(outcome.error)
    return outcome.embedding


def predict_clip(predictor, clip: Path, relation: str, settings: Settings, *, k: int = 10, encoder=None,
                 max_seconds: float = DEFAULT_MAX_SECONDS):
    """What an audio-grounded model holds for a clip that is no entity: its top-k tails for `relation`
    (kge.predict.Predictor.predict_audio), the clip's audio embedding standing for the entity."""
    predictor.check_audio(relation)  # a plain or text-only model, or a bad relation: said before CLAP loads
    grounding = predictor.stored.config["training"]["grounding"]
    feature = clip_feature(grounding, clip, settings, encoder=encoder, device=predictor.device, max_seconds=max_seconds)
    return predictor.predict_audio(feature, relation, k=k)
