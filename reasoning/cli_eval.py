"""`akg zeroshot-eval`: baseline vs refined, per-class deltas, an ablation over relation sets and k."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from akg.cli import echo_json, progress_enabled
from akg.config import Settings
from akg.connect import connect
from akg.errors import InputError
from reasoning.cli import _specs, encoder_options


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--ablate-k {text!r}: give whole numbers separated by commas") from None
    if not values or min(values) < 1:
        raise InputError("--ablate-k needs values of at least 1")
    return values


@click.command("zeroshot-eval")
@click.option("--dataset", help="Label set of the dataset (default: guessed from the metadata layout).")
@click.option("--audio-dir", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--meta", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="esc50.csv, UrbanSound8K.csv or FSD50K's eval.csv.")
@encoder_options
@click.option("--relations", help="The main relation set (comma-separated, or 'all').")
@click.option("--ablate-relations", default="", help="More relation sets to compare, separated by ';'.")
@click.option("--ablate-k", default="1,3,5,10", show_default=True, help="Values of k (labels refined per clip).")
@click.option("--top-m", type=int, default=3, show_default=True)
@click.option("--kge-model")
@click.option("--no-kge", is_flag=True)
@click.option("--template", default="{label}, {tail}", show_default=True)
@click.option("--base-template", default="{label}", show_default=True)
@click.option("--fusion", "method", type=click.Choice(["lse", "reliability"]), default="lse", show_default=True)
@click.option("--temperature", type=float, default=0.05, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N clips.")
@click.option("--max-seconds", type=float, default=600.0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("zeroshot-eval"), show_default=True)
@click.option("--json", "as_json", is_flag=True)
def zeroshot_eval(dataset, audio_dir, meta, backend, model, checkpoint, fusion, audio_model, device, allow_download,
                  relations, ablate_relations, ablate_k, top_m, kge_model, no_kge, template, base_template, method,
                  temperature, limit, max_seconds, out_dir, as_json):
    """Accuracy (single-label) or mAP (multi-label) of CLAP and of the knowledge-refined CLAP."""
    from tqdm import tqdm

    from reasoning.encoders import load_encoder
    from reasoning.evaluation import check_out_dir, label_matrix, read_metadata, score, write_report
    from reasoning.fusion import FusionSettings
    from reasoning.refine import Refiner, embed_clips
    from reasoning.workflows import open_session

    check_out_dir(out_dir)  # before the expensive work: a folder that cannot be written fails now, untouched
    layout, items = read_metadata(meta, audio_dir)
    items = items[:limit] if limit else items
    ks = _int_list(ablate_k)
    spec, enrich = _specs(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations,
                          top_m, template, base_template)
    relation_sets = [enrich.relations] + [enrich.parse_relations(r) for r in ablate_relations.split(";") if r.strip()]
    try:
        fusion_settings = FusionSettings(method=method, temperature=temperature)
    except ValueError as e:
        raise InputError(str(e)) from None
    settings = Settings.from_env()
    encoder = load_encoder(spec)
    sessions = []
    with connect(settings) as graph:
        for rels in relation_sets:
            sessions.append(open_session(graph, settings, labels=dataset or layout, encoder_spec=spec,
                                         enrich=type(enrich)(**{**enrich.__dict__, "relations": rels}),
                                         kge_model=kge_model, use_kge=not no_kge, encoder=encoder))
    first = sessions[0]
    for note in first.predictor.stored.notes if first.predictor else []:
        click.echo(f"warning: {note}", err=True)
    with tqdm(total=len(items), desc="audio", unit="clip", disable=not progress_enabled(), file=sys.stderr) as bar:
        outcomes = embed_clips(encoder, [i.path for i in items], first.audio_cache, max_seconds=max_seconds, progress=bar.update)
    good = [(it, o) for it, o in zip(items, outcomes) if o.embedding is not None]
    for o in outcomes:
        if o.error:
            click.echo(f"error: {o.error}", err=True)
    if not good:
        raise click.ClickException("none of the clips could be read")
    emb = np.stack([o.embedding for _, o in good])
    label_set = first.label_set
    y, unknown = label_matrix([it for it, _ in good], first.bank.label_texts, [l.name for l in label_set.labels])
    if unknown:
        click.echo(f"warning: {len(unknown)} metadata label(s) are not in the label set: {', '.join(unknown[:10])}", err=True)
    matched = y.sum(1) > 0  # a clip none of whose labels is in the set cannot be scored: left out, and said
    if not matched.any():
        raise InputError(f"none of the clips' labels is in the label set {label_set.key!r}: is --dataset right?", file=str(meta))
    if not matched.all():
        click.echo(f"warning: {int((~matched).sum())} clip(s) left out: none of their labels is in the label set", err=True)
        emb, y = emb[matched], y[matched]
    multi = bool((y.sum(1) > 1).any()) or layout == "fsd50k"
    rows, per_class_best, best = [], [], None
    for rels, session in zip(relation_sets, sessions):
        for k in ks:
            ref = Refiner(session.bank, fusion_settings, k)
            results = [ref.refine(e) for e in emb]
            base = np.stack([r.baseline for r in results])
            refined = np.stack([r.refined for r in results])
            metric, b, b_pc = score(base, y, multi)
            _, r, r_pc = score(refined, y, multi)
            row = {"relations": ",".join(rels), "top_k": k, "baseline": b, "refined": r, "delta": r - b,
                   "prompts": len(session.bank.prompts)}
            rows.append(row)
            if best is None or r > best["refined"]:
                best = row
                per_class_best = [{"label": t, "baseline": float(bb), "refined": float(rr), "delta": float(rr - bb)}
                                  for t, bb, rr in zip(session.bank.label_texts, b_pc, r_pc)]
    info = {"clips": len(items), "failed": len(items) - len(good), "labels": len(label_set.labels),
            "with_entity": label_set.coverage()["with_entity"], "encoder": encoder.identity,
            "kge_model": first.predictor.stored.name if first.predictor else None, "fusion": method}
    paths = write_report(out_dir, dataset=dataset or layout, metric=metric, rows=rows, per_class=per_class_best, meta=info)
    if as_json:
        echo_json({"dataset": dataset or layout, "metric": metric, "results": rows, "files": paths, **info})
        return
    click.echo(f"{dataset or layout}: {len(good)} clips, metric {metric}; baseline {rows[0]['baseline']:.4f}")
    for r in rows:
        click.echo(f"  relations {r['relations'][:50]:50s} k={r['top_k']:<3d} refined {r['refined']:.4f} ({r['delta']:+.4f})")
    click.echo(f"report: {paths['report']}")
