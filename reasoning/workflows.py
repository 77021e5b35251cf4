"""Wiring for `akg classify` and `akg zeroshot-eval` (and the explorer's audio page)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from akg.config import Settings
from akg.errors import InputError
from akg.encoders import EncoderSpec, load_encoder
from reasoning.fusion import FusionSettings
from reasoning.prompts import EnrichSettings, PromptBank, build_bank
from reasoning.refine import AudioEmbeddingCache, Refiner


def cache_root(settings: Settings) -> Path:
    return Path(settings.home) / "cache"


def load_label_set(graph, name_or_path: str):
    """A label set with each label's AKG entity resolved against the graph."""
    from reasoning import labels

    return labels.resolve_entities(labels.load(name_or_path), labels.graph_existing(graph))


def load_predictor(settings: Settings, kge_model: str | None, use_kge: bool, *, clap=None):
    """The KGE model for predicted tails: the named one, else the latest; None without one (or --no-kge).

    A grounded model (`akg train --grounded text`) predicts tails for labels without an AKG entity
    too, from their names; when it was grounded in this session's CLAP text tower (`clap`), that
    encoder is shared instead of loaded twice.
    """
    if not use_kge:
        return None
    from kge import store
    from kge.features import ClapTextEncoder, default_cache_dir
    from kge.predict import Predictor

    root = store.models_root(settings.home)
    if kge_model is None and not store.scan(root):
        return None  # none trained: known tails only. (Only broken ones: `resolve` says so.)
    stored = store.resolve(kge_model, root)
    grounding = stored.config["training"].get("grounding") or {}
    shared = None
    if clap is not None and grounding.get("encoder_id") == f"clap:{clap.identity}":
        shared = ClapTextEncoder(clap)
    return Predictor(stored, feature_cache=default_cache_dir(settings.home), encoder=shared)


@dataclass
class Session:
    encoder: object
    label_set: object
    bank: PromptBank
    bank_from_cache: bool
    predictor: object | None
    audio_cache: AudioEmbeddingCache


def open_session(graph, settings: Settings, *, labels: str, encoder_spec: EncoderSpec, enrich: EnrichSettings,
                 kge_model: str | None = None, use_kge: bool = True, encoder=None) -> Session:
    from akg.graph_state import graph_version

    encoder = encoder or load_encoder(encoder_spec)
    label_set = load_label_set(graph, labels)
    if not label_set.labels:
        raise InputError(f"the label set {labels!r} has no labels")
    predictor = load_predictor(settings, kge_model, use_kge, clap=encoder)
    bank, hit = build_bank(label_set, encoder, graph, settings=enrich, predictor=predictor,
                           graph_version=graph_version(graph), cache_dir=cache_root(settings) / "prompts")
    audio_cache = AudioEmbeddingCache(cache_root(settings) / "audio", encoder.identity, dim=bank.base_emb.shape[1])
    return Session(encoder, label_set, bank, hit, predictor, audio_cache)


def refiner(session: Session, fusion: FusionSettings, top_k: int) -> Refiner:
    return Refiner(session.bank, fusion, top_k)
