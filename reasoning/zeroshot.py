"""Zero-shot evaluation of a labelled audio collection: CLAP against the knowledge-refined CLAP.

`zeroshot_eval` reads the dataset's metadata (ESC-50, UrbanSound8K or FSD50K layout), embeds every
clip once, and scores the baseline and the refinement for each relation set and each k (labels
refined per clip): accuracy for single-label data, mAP for multi-label. The report (CSV files,
report.md and report.json under `out_dir`) is written by reasoning.evaluation.write_report. Both
`akg zeroshot-eval` and `akg.zeroshot_eval()` are this function; warnings come back in the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from akg.config import Settings
from akg.encoders import EncoderSpec, load_encoder
from akg.errors import InputError
from reasoning.classify import DEFAULT_MAX_SECONDS
from reasoning.evaluation import check_out_dir, label_matrix, read_metadata, score, write_report
from reasoning.fusion import FusionSettings
from reasoning.prompts import EnrichSettings
from reasoning.refine import Refiner, embed_clips
from reasoning.workflows import open_session

DEFAULT_KS = (1, 3, 5, 10)
DEFAULT_OUT = Path("zeroshot-eval")


def zeroshot_eval(graph, settings: Settings, *, audio_dir: Path, meta: Path, dataset: str | None = None,
                  encoder_spec: EncoderSpec | None = None, enrich: EnrichSettings = EnrichSettings(),
                  ablate_relations: Sequence[Sequence[str]] = (), ks: Sequence[int] = DEFAULT_KS,
                  fusion: FusionSettings = FusionSettings(), kge_model: str | None = None, use_kge: bool = True,
                  limit: int | None = None, max_seconds: float = DEFAULT_MAX_SECONDS, out_dir: Path = DEFAULT_OUT,
                  progress: Callable[[int], object] | None = None,
                  on_clips: Callable[[int], object] | None = None) -> dict:
    """The evaluation report: dataset, metric, a row per (relation set, k), the files written, warnings.
    `on_clips` is told how many clips will be embedded (a progress bar's total), `progress` each one done."""
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise InputError("the values of k (labels refined per clip) must be whole numbers of at least 1")
    if limit is not None and limit < 1:
        raise InputError("the clip limit must be at least 1")
    out_dir = Path(out_dir)
    check_out_dir(out_dir)  # before the expensive work: a folder that cannot be written fails now, untouched
    layout, items = read_metadata(Path(meta), Path(audio_dir))
    items = items[:limit] if limit else items
    if on_clips is not None:
        on_clips(len(items))
    spec = encoder_spec or EncoderSpec.from_env()
    relation_sets = [tuple(enrich.relations)] + [tuple(r) for r in ablate_relations]
    encoder = load_encoder(spec)
    sessions = [open_session(graph, settings, labels=dataset or layout, encoder_spec=spec,
                             enrich=EnrichSettings(**{**enrich.__dict__, "relations": rels}),
                             kge_model=kge_model, use_kge=use_kge, encoder=encoder)
                for rels in relation_sets]
    first = sessions[0]
    warnings = list(first.predictor.stored.notes) if first.predictor else []
    outcomes = embed_clips(encoder, [i.path for i in items], first.audio_cache, max_seconds=max_seconds, progress=progress)
    good = [(it, o) for it, o in zip(items, outcomes) if o.embedding is not None]
    errors = [o.error for o in outcomes if o.error]
    if not good:
        raise InputError(f"none of the {len(items)} clips could be read" + (f" (first: {errors[0]})" if errors else ""),
                         file=str(meta))
    emb = np.stack([o.embedding for _, o in good])
    label_set = first.label_set
    y, unknown = label_matrix([it for it, _ in good], first.bank.label_texts, [l.name for l in label_set.labels])
    if unknown:
        warnings.append(f"{len(unknown)} metadata label(s) are not in the label set: {', '.join(unknown[:10])}")
    matched = y.sum(1) > 0  # a clip none of whose labels is in the set cannot be scored: left out, and said
    if not matched.any():
        raise InputError(f"none of the clips' labels is in the label set {label_set.key!r}: is the dataset right?",
                         file=str(meta))
    if not matched.all():
        warnings.append(f"{int((~matched).sum())} clip(s) left out: none of their labels is in the label set")
        emb, y = emb[matched], y[matched]
    multi = bool((y.sum(1) > 1).any()) or layout == "fsd50k"
    rows, per_class_best, best, metric = [], [], None, None
    for rels, session in zip(relation_sets, sessions):
        for k in ks:
            ref = Refiner(session.bank, fusion, k)
            results = [ref.refine(e) for e in emb]
            metric, b, b_pc = score(np.stack([r.baseline for r in results]), y, multi)
            _, r, r_pc = score(np.stack([r.refined for r in results]), y, multi)
            row = {"relations": ",".join(rels), "top_k": k, "baseline": b, "refined": r, "delta": r - b,
                   "prompts": len(session.bank.prompts)}
            rows.append(row)
            if best is None or r > best["refined"]:
                best = row
                per_class_best = [{"label": t, "baseline": float(bb), "refined": float(rr), "delta": float(rr - bb)}
                                  for t, bb, rr in zip(session.bank.label_texts, b_pc, r_pc)]
    info = {"clips": len(items), "failed": len(items) - len(good), "labels": len(label_set.labels),
            "with_entity": label_set.coverage()["with_entity"], "encoder": encoder.identity,
            "kge_model": first.predictor.stored.name if first.predictor else None, "fusion": fusion.method}
    name = dataset or layout
    paths = write_report(out_dir, dataset=name, metric=metric, rows=rows, per_class=per_class_best, meta=info)
    return {"dataset": name, "metric": metric, "results": rows, "per_class": per_class_best, "files": paths,
            "errors": errors, "warnings": warnings, **info}
