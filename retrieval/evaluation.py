"""`akg retrieval-eval`: CLAP against knowledge-enhanced CLAP on a captioned collection.

Reads Clotho or AudioCaps captions (retrieval.captions), embeds every clip once (through the audio
cache), links every caption to the AKG and builds its variants once with every granularity and
relation asked for, then scores each configuration from those by masking variants:
- `baseline`: CLAP alone;
- `enhanced`: all granularities, the main relations, the chosen weighting;
- one row per granularity alone (ablation over granularities);
- one row per extra relation set (`ablate_relations`);
- the other weighting (lse against reliability).
Text to audio: every caption a query, its clip the one relevant item; audio to text: every clip a
query, its captions the relevant items, in both conventions of retrieval.metrics. Scores are
exact over the collection (no index), the variants' agreement measured on the collection itself.
results.csv, report.md and retrieval.png go to `out_dir`; the report itself is returned.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from akg.config import Settings
from akg.errors import InputError
from reasoning.classify import DEFAULT_MAX_SECONDS
from reasoning.fusion import FusionSettings
from reasoning.prompts import EnrichSettings
from retrieval.knowledge import GRANULARITIES
from retrieval.metrics import audio_to_text, text_to_audio
from retrieval.search import AGREEMENT_N, DEFAULT_FUSION, fuse_many, variant_weights

DEFAULT_OUT = Path("retrieval-eval")


def _configs(enrich: EnrichSettings, ablate_relations: Sequence[Sequence[str]], fusion: FusionSettings) -> list[dict]:
    main = tuple(enrich.relations)
    other = FusionSettings(**{**fusion.__dict__, "method": "lse" if fusion.method == "reliability" else "reliability"})
    out = [{"config": "baseline", "granularities": (), "relations": (), "fusion": fusion},
           {"config": "enhanced", "granularities": GRANULARITIES, "relations": main, "fusion": fusion}]
    out += [{"config": f"only {g}", "granularities": (g,), "relations": main, "fusion": fusion} for g in GRANULARITIES]
    out += [{"config": f"relations {i + 1}", "granularities": GRANULARITIES, "relations": tuple(r), "fusion": fusion}
            for i, r in enumerate(ablate_relations)]
    out.append({"config": f"weighting {other.method}", "granularities": GRANULARITIES, "relations": main, "fusion": other})
    return out


def enhanced_scores(exps, clip_emb: np.ndarray, *, granularities, relations, fusion: FusionSettings) -> np.ndarray:
    """(captions x clips): each caption's similarity to each clip fused over its kept variants."""
    base = np.stack([e.emb for e in exps]) @ clip_emb.T
    if not granularities:
        return base.astype(np.float64)
    n = min(AGREEMENT_N, clip_emb.shape[0])
    out = np.empty(base.shape, np.float64)
    for i, e in enumerate(exps):
        keep = np.array([v.granularity in granularities and (v.relation is None or v.relation in relations)
                         for v in e.variants], bool)
        sub = e.subset(keep) if len(e.variants) else e
        if not sub.variants:
            out[i] = base[i]
            continue
        var = sub.variant_emb @ clip_emb.T
        top0 = set(np.argsort(-base[i], kind="stable")[:n].tolist())
        agreement = np.array([len(top0 & set(np.argsort(-r, kind="stable")[:n].tolist())) / n for r in var])
        out[i] = fuse_many(base[i], var, variant_weights(fusion, sub, agreement), fusion)
    return out


def retrieval_eval(graph, settings: Settings, encoder, *, audio_dir: Path, meta: Path,
                   enrich: EnrichSettings = EnrichSettings(), ablate_relations: Sequence[Sequence[str]] = (),
                   fusion: FusionSettings = DEFAULT_FUSION, kge_model: str | None = None, use_kge: bool = True,
                   limit: int | None = None, max_seconds: float = DEFAULT_MAX_SECONDS, out_dir: Path = DEFAULT_OUT,
                   progress: Callable[[int], object] | None = None,
                   on_clips: Callable[[int], object] | None = None) -> dict:
    from reasoning.evaluation import check_out_dir
    from reasoning.refine import AudioEmbeddingCache, embed_clips
    from reasoning.workflows import cache_root
    from retrieval.captions import read_caption_file
    from retrieval.session import open_enricher

    if limit is not None and limit < 1:
        raise InputError("the clip limit must be at least 1")
    out_dir = check_out_dir(Path(out_dir))
    cf = read_caption_file(Path(meta), Path(audio_dir))
    if cf.layout == "captions":
        raise InputError("retrieval-eval needs Clotho (file_name, caption_1..5) or AudioCaps columns", file=str(meta), line=1)
    clips = cf.clips[:limit] if limit else cf.clips
    if on_clips is not None:
        on_clips(len(clips))
    cache = AudioEmbeddingCache(cache_root(settings) / "audio", encoder.identity)
    outcomes = embed_clips(encoder, clips, cache, max_seconds=max_seconds, progress=progress)
    good = [i for i, o in enumerate(outcomes) if o.embedding is not None]
    errors = [o.error for o in outcomes if o.error]
    if not good:
        raise InputError(f"none of the {len(clips)} clips could be read" + (f" (first: {errors[0]})" if errors else ""),
                         file=str(meta))
    new_of = {old: new for new, old in enumerate(good)}
    caps = [c for c in cf.captions if c.clip in new_of]
    clip_emb = np.stack([outcomes[i].embedding for i in good])
    every = tuple(dict.fromkeys([*enrich.relations, *(r for rs in ablate_relations for r in rs)]))
    enricher = open_enricher(graph, settings, encoder, enrich=replace(enrich, relations=every), kge_model=kge_model,
                             use_kge=use_kge)
    exps = [enricher.expand(c.text) for c in caps]
    clip_of = [new_of[c.clip] for c in caps]
    captions_of = [[j for j, c in enumerate(clip_of) if c == i] for i in range(len(good))]
    rows = []
    for cfg in _configs(enrich, ablate_relations, fusion):
        s = enhanced_scores(exps, clip_emb, granularities=cfg["granularities"], relations=cfg["relations"],
                            fusion=cfg["fusion"])
        label = {"config": cfg["config"], "granularities": ",".join(cfg["granularities"]) or "-",
                 "relations": ",".join(cfg["relations"]) or "-",
                 "weighting": cfg["fusion"].method if cfg["granularities"] else "-"}
        rows.append({**label, "direction": "text-to-audio", "convention": "dcase=laion", **text_to_audio(s, clip_of)})
        for conv in ("dcase", "laion"):
            rows.append({**label, "direction": "audio-to-text", "convention": conv, **audio_to_text(s.T, captions_of, conv)})
    info = {"layout": cf.layout, "clips": len(clips), "failed": len(clips) - len(good), "captions": len(caps),
            "missing_audio": len(cf.missing), "linked_captions": sum(1 for e in exps if e.links),
            "variants_per_caption": round(float(np.mean([len(e.variants) for e in exps])), 3),
            "encoder": encoder.identity, "kge_model": enricher.predictor.stored.name if enricher.predictor else None,
            "fusion": fusion.method, "temperature": fusion.temperature}
    files = write_report(out_dir, rows, info)
    warnings = list(enricher.predictor.stored.notes) if enricher.predictor else []
    if cf.missing:
        warnings.append(f"{len(cf.missing)} clip(s) of the captions file have no audio in {audio_dir}: left out")
    return {**info, "results": rows, "files": files, "errors": errors, "warnings": warnings}


def write_report(out_dir: Path, rows: list[dict], info: dict) -> dict:
    """results.csv, report.md and retrieval.png, staged and renamed into place together."""
    from akg.files import write_together
    from reasoning.evaluation import _csv

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create this folder ({e.strerror or e})", file=str(out_dir)) from None
    paths = {"results": out_dir / "results.csv", "report": out_dir / "report.md", "plot": out_dir / "retrieval.png"}
    metrics = ("R@1", "R@5", "R@10", "mAP@10")
    lines = [f"# Retrieval evaluation ({info['layout']})", "",
             f"{info['clips']} clips ({info['failed']} unreadable, {info['missing_audio']} without audio), "
             f"{info['captions']} captions ({info['linked_captions']} linked to the AKG, "
             f"{info['variants_per_caption']} variants each on average); encoder `{info['encoder']}`, KGE "
             f"`{info['kge_model']}`, weighting `{info['fusion']}`, temperature {info['temperature']}.", "",
             "Text to audio: every caption a query with one relevant clip (DCASE and LAION-CLAP agree). Audio to "
             "text: R@k by the best-ranked caption; mAP@10 `dcase` scores that caption only, `laion` averages "
             "over all the clip's captions (retrieval/metrics.py).", "",
             "| config | granularities | relations | weighting | direction | convention | " + " | ".join(metrics) + " |",
             "|---|---|---|---|---|---|" + "---:|" * len(metrics)]
    lines += ["| " + " | ".join(str(r[c]) for c in ("config", "granularities", "relations", "weighting", "direction",
                                                      "convention")) + " | "
              + " | ".join(f"{r[m]:.4f}" for m in metrics) + " |" for r in rows]
    lines += ["", "![retrieval](retrieval.png)", ""]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["convention"] != "dcase"]
    configs = list(dict.fromkeys(r["config"] for r in shown))
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 0.9 * len(configs) + 3), 3.5), dpi=100, sharey=True)
    for ax, direction in zip(axes, ("text-to-audio", "audio-to-text")):
        part = {r["config"]: r for r in shown if r["direction"] == direction}
        x = np.arange(len(configs))
        for off, m in ((-0.2, "R@10"), (0.2, "mAP@10")):
            ax.bar(x + off, [part[c][m] for c in configs], width=0.4, label=m)
        ax.set_xticks(x, configs, rotation=45, ha="right", fontsize=7)
        ax.set_title(direction, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    contents = {"results": _csv(rows), "report": "\n".join(lines), "plot": png.getvalue()}
    write_together({path: contents[key] for key, path in paths.items()})
    return {k: str(v) for k, v in paths.items()}
