"""`akg zeroshot-eval`: baseline vs refined, per-class deltas, an ablation over relation sets and k."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from akg.cli import echo_json, max_seconds_checked, progress_enabled
from akg.config import Settings
from akg.connect import connect
from akg.errors import InputError
from reasoning.classify import DEFAULT_MAX_SECONDS
from reasoning.zeroshot import DEFAULT_KS, DEFAULT_OUT
from reasoning.cli import ENRICH, FUSION, _specs, encoder_options
from reasoning.fusion import FusionSettings


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
@click.option("--ablate-k", default=",".join(map(str, DEFAULT_KS)), show_default=True, help="Values of k (labels refined per clip).")
@click.option("--top-m", type=int, default=ENRICH.top_m, show_default=True)
@click.option("--kge-model")
@click.option("--no-kge", is_flag=True)
@click.option("--template", default=ENRICH.template, show_default=True)
@click.option("--base-template", default=ENRICH.base_template, show_default=True)
@click.option("--fusion", "method", type=click.Choice(["lse", "reliability"]), default=FUSION.method, show_default=True)
@click.option("--temperature", type=float, default=FUSION.temperature, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N clips.")
@click.option("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, show_default=True,
              callback=max_seconds_checked)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def zeroshot_eval(dataset, audio_dir, meta, backend, model, checkpoint, fusion, audio_model, device, allow_download,
                  relations, ablate_relations, ablate_k, top_m, kge_model, no_kge, template, base_template, method,
                  temperature, limit, max_seconds, out_dir, as_json):
    """Accuracy (single-label) or mAP (multi-label) of CLAP and of the knowledge-refined CLAP."""
    from tqdm import tqdm

    from reasoning.evaluation import check_out_dir
    from reasoning.zeroshot import zeroshot_eval as run_eval

    check_out_dir(out_dir)  # before loading anything: a folder that cannot be written fails now
    ks = _int_list(ablate_k)
    spec, enrich = _specs(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations,
                          top_m, template, base_template)
    ablate = [enrich.parse_relations(r) for r in ablate_relations.split(";") if r.strip()]
    fusion_settings = FusionSettings(method=method, temperature=temperature)
    settings = Settings.from_env()
    with connect(settings) as graph, \
            tqdm(desc="audio", unit="clip", disable=not progress_enabled(), file=sys.stderr) as bar:
        report = run_eval(graph, settings, audio_dir=audio_dir, meta=meta, dataset=dataset, encoder_spec=spec,
                          enrich=enrich, ablate_relations=ablate, ks=ks, fusion=fusion_settings, kge_model=kge_model,
                          use_kge=not no_kge, limit=limit, max_seconds=max_seconds, out_dir=out_dir,
                          progress=bar.update, on_clips=lambda n: setattr(bar, "total", n))
    for error in report["errors"]:
        click.echo(f"error: {error}", err=True)
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        echo_json({k: v for k, v in report.items() if k not in ("per_class", "errors", "warnings")})
        return
    rows = report["results"]
    click.echo(f"{report['dataset']}: {report['clips'] - report['failed']} clips, metric {report['metric']}; "
               f"baseline {rows[0]['baseline']:.4f}")
    for r in rows:
        click.echo(f"  relations {r['relations'][:50]:50s} k={r['top_k']:<3d} refined {r['refined']:.4f} ({r['delta']:+.4f})")
    click.echo(f"report: {report['files']['report']}")
