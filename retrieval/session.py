"""Wiring: the encoder, the KGE predictor, the entity table and the enricher a retrieval command uses."""

from __future__ import annotations

from collections.abc import Sequence

from akg.config import Settings
from reasoning.prompts import EnrichSettings
from retrieval.knowledge import GRANULARITIES, MIN_SIMILARITY, NEAREST, Enricher, entity_table


def open_enricher(graph, settings: Settings, encoder, *, enrich: EnrichSettings = EnrichSettings(),
                  kge_model: str | None = None, use_kge: bool = True, granularities: Sequence[str] = GRANULARITIES,
                  nearest: int = NEAREST, min_similarity: float = MIN_SIMILARITY) -> Enricher:
    """An enricher over the graph as it is now (its version keys the entity table's cache)."""
    from akg.graph_state import graph_version
    from reasoning.workflows import cache_root, load_predictor

    predictor = load_predictor(settings, kge_model, use_kge, clap=encoder)
    table = entity_table(graph, encoder, graph_version=graph_version(graph), cache_dir=cache_root(settings) / "entities")
    return Enricher(graph, encoder, table, enrich=enrich, predictor=predictor, granularities=granularities,
                    nearest=nearest, min_similarity=min_similarity)


def embed_one(encoder, settings: Settings, path, *, max_seconds: float):
    """One clip's embedding (through the audio cache); its problem as an InputError."""
    from pathlib import Path

    from akg.errors import InputError
    from reasoning.refine import AudioEmbeddingCache, embed_clips
    from reasoning.workflows import cache_root

    cache = AudioEmbeddingCache(cache_root(settings) / "audio", encoder.identity)
    out = embed_clips(encoder, [Path(path)], cache, max_seconds=max_seconds)[0]
    if out.error:
        raise InputError(out.error)
    return out.embedding
