"""The library functions behind `akg index`, `akg search` and `akg tag` (and akg.index/search/tag)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

from akg.config import Settings
from akg.errors import InputError
from reasoning.classify import DEFAULT_MAX_SECONDS
from reasoning.fusion import FusionSettings
from reasoning.prompts import EnrichSettings
from retrieval.knowledge import GRANULARITIES, MIN_SIMILARITY, NEAREST
from retrieval.search import DEFAULT_FUSION, DEFAULT_K


def default_name(audio_dir: Path) -> str:
    """An index's name when none is given: the collection folder's name, made a valid name."""
    import re

    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(audio_dir).resolve().name).strip("-._") or "collection"
    return name[:64]


def index_collection(settings: Settings, audio_dir: Path, *, name: str | None = None, encoder, spec,
                     workers: int = 1, ray: str | None = None, batch: int = 8,
                     max_seconds: float = DEFAULT_MAX_SECONDS, rebuild: bool = False,
                     on_total: Callable[[int], object] | None = None,
                     progress: Callable[[int], object] | None = None) -> dict:
    from retrieval.store import build_index

    report = build_index(settings.home, name or default_name(audio_dir), Path(audio_dir), encoder, spec,
                         workers=workers, ray=ray, batch=batch, max_seconds=max_seconds, rebuild=rebuild,
                         on_total=on_total, progress=progress)
    return report.as_dict()


def read_captions(path: Path) -> list[str]:
    """The captions of a caption file: Clotho's (caption_1..caption_5), AudioCaps' (caption), or any CSV
    with a `caption` column."""
    from retrieval.captions import read_caption_file

    return [c.text for c in read_caption_file(Path(path)).captions]


def _enricher(graph, settings, encoder, enrich, kge_model, use_kge):
    """What a one-off search or tag enriches with: opened for this call, lent as a context manager like
    the kept one akg.api lends (the `enricher` hook of search and tag)."""
    from retrieval.session import open_enricher

    def lend(*, granularities: Sequence[str], nearest: int, min_similarity: float):
        return contextlib.nullcontext(open_enricher(graph, settings, encoder, enrich=enrich, kge_model=kge_model,
                                                    use_kge=use_kge, granularities=granularities, nearest=nearest,
                                                    min_similarity=min_similarity))

    return lend


def search(graph, settings: Settings, encoder, *, text: str | None = None, index: str | None = None,
           clip: Path | None = None, captions: Path | Sequence[str] | None = None, k: int = DEFAULT_K,
           fusion: FusionSettings = DEFAULT_FUSION, enrich: EnrichSettings = EnrichSettings(),
           granularities: Sequence[str] = GRANULARITIES, kge_model: str | None = None, use_kge: bool = True,
           nearest: int = NEAREST, min_similarity: float = MIN_SIMILARITY, max_seconds: float = DEFAULT_MAX_SECONDS,
           load: Callable | None = None, enricher: Callable | None = None) -> dict:
    """Text to audio over an index (`text`, `index`) or audio to text over captions (`clip`, `captions`).

    `load(home, name)` gives the index and `enricher(granularities=, nearest=, min_similarity=)` lends the
    enricher (a context manager); by default both are opened for this call. akg.api passes the ones its
    process keeps warm, so the CLI, the library and the service run this one function."""
    from retrieval.search import check_query, search_clip, search_text
    from retrieval.session import embed_one
    from retrieval.store import load_index

    lend = enricher or _enricher(graph, settings, encoder, enrich, kge_model, use_kge)
    if (text is None) == (clip is None):
        raise InputError("search either a TEXT in an index (--index), or a clip (--clip) among captions (--captions)")
    check_query(text=text, k=k)
    if text is not None:
        if not index:
            raise InputError("a text search needs an index: --index NAME (made by `akg index`)")
        idx = (load or load_index)(settings.home, index)
        idx.check_encoder(encoder.identity)
        with lend(granularities=granularities, nearest=nearest, min_similarity=min_similarity) as e:
            result = search_text(idx, e, text, k=k, fusion=fusion)
        return {"index": index, "clips": len(idx), "encoder": encoder.identity, **result.as_dict()}
    if captions is None:
        raise InputError("a clip search needs a caption set: --captions CSV")
    texts = check_query(captions=read_captions(captions) if isinstance(captions, (str, Path)) else captions, k=k)
    emb = embed_one(encoder, settings, Path(clip), max_seconds=max_seconds)
    with lend(granularities=granularities, nearest=nearest, min_similarity=min_similarity) as e:
        result = search_clip(emb, texts, e, k=k, fusion=fusion)
    return {"clip": str(clip), "captions": len(texts), "encoder": encoder.identity, **result.as_dict()}


def tag(graph, settings: Settings, encoder, clips: Sequence[Path], *, k: int = DEFAULT_K,
        fusion: FusionSettings = DEFAULT_FUSION, enrich: EnrichSettings = EnrichSettings(),
        kge_model: str | None = None, use_kge: bool = True, max_seconds: float = DEFAULT_MAX_SECONDS,
        enricher: Callable | None = None) -> list[dict]:
    """Each clip's best AKG entities; a clip that cannot be read gets its error instead. `enricher` as
    for search."""
    from reasoning.refine import AudioEmbeddingCache, embed_clips
    from reasoning.workflows import cache_root
    from retrieval.search import tag_clip

    lend = enricher or _enricher(graph, settings, encoder, enrich, kge_model, use_kge)
    cache = AudioEmbeddingCache(cache_root(settings) / "audio", encoder.identity)
    outcomes = embed_clips(encoder, [Path(c) for c in clips], cache, max_seconds=max_seconds)
    out = []
    with lend(granularities=GRANULARITIES, nearest=NEAREST, min_similarity=MIN_SIMILARITY) as e:
        for o in outcomes:
            if o.error:
                out.append({"clip": o.path, "error": o.error})
            else:
                out.append({"clip": o.path, "tags": tag_clip(o.embedding, e, k=k, fusion=fusion)})
    return out
