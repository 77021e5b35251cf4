"""`akg classify` and `akg zeroshot-eval`: thin commands over reasoning.workflows."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from akg.cli import echo_json, max_seconds_checked, progress_enabled
from akg.config import Settings
from akg.connect import connect
from reasoning.classify import DEFAULT_LABELS, DEFAULT_MAX_SECONDS, DEFAULT_TOP_K
from reasoning.fusion import FusionSettings
from reasoning.prompts import EnrichSettings

ENRICH, FUSION = EnrichSettings(), FusionSettings()  # the library's defaults, shown in --help


def encoder_options(f):
    for opt in reversed([
        click.option("--encoder", "backend", type=click.Choice(["hf", "laion-clap"]), help="CLAP backend (default hf: transformers)."),
        click.option("--model", "model", help="hf: a directory saved with save_pretrained, or a hub id (AKG_CLAP_MODEL)."),
        click.option("--checkpoint", help="laion-clap: the checkpoint file (AKG_CLAP_CHECKPOINT)."),
        click.option("--fusion-model", "fusion", is_flag=True, default=None, help="laion-clap: a fusion checkpoint."),
        click.option("--audio-model", type=click.Choice(["HTSAT-tiny", "HTSAT-base"]), help="laion-clap: the audio tower."),
        click.option("--device", type=click.Choice(["cpu", "cuda"])),
        click.option("--allow-download", is_flag=True, default=None, help="Let the encoder fetch a model from the hub."),
    ]):
        f = opt(f)
    return f


def enrich_options(f):
    for opt in reversed([
        click.option("--labels", "labels", default=DEFAULT_LABELS, show_default=True, help="A label set (akg labels list) or a label file."),
        click.option("--relations", help="Comma-separated relations for enrichment, or 'all' (default: a documented six)."),
        click.option("--top-m", type=int, default=ENRICH.top_m, show_default=True, help="Predicted tails per relation."),
        click.option("--kge-model", help="KGE model for predicted tails (default: the latest)."),
        click.option("--no-kge", is_flag=True, help="Known tails from the graph only."),
        click.option("--template", default=ENRICH.template, show_default=True, help="Enriched prompt template."),
        click.option("--base-template", default=ENRICH.base_template, show_default=True, help="Base prompt template."),
    ]):
        f = opt(f)
    return f


def fusion_options(f):
    for opt in reversed([
        click.option("--fusion", "method", type=click.Choice(["lse", "reliability"]), default=FUSION.method, show_default=True),
        click.option("--temperature", type=float, default=FUSION.temperature, show_default=True, help="Log-sum-exp temperature."),
        click.option("--top-k", type=int, default=DEFAULT_TOP_K, show_default=True, help="Labels refined per clip."),
    ]):
        f = opt(f)
    return f


def _specs(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations, top_m, template, base_template):
    from akg.encoders import EncoderSpec
    from reasoning.prompts import EnrichSettings

    spec = EncoderSpec.from_env(backend=backend, model=model, checkpoint=checkpoint, fusion=fusion,
                                audio_model=audio_model, device=device, allow_download=allow_download)
    enrich = EnrichSettings(relations=EnrichSettings.parse_relations(relations), top_m=top_m,
                            template=template, base_template=base_template)
    return spec, enrich


@click.command()
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path))
@encoder_options
@enrich_options
@fusion_options
@click.option("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, show_default=True,
              callback=max_seconds_checked, help="Refuse longer clips (above 0, at most 3600).")
@click.option("--explain/--no-explain", default=True, show_default=True, help="Show the prompts that moved each label.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def classify(clips, backend, model, checkpoint, fusion, audio_model, device, allow_download, labels, relations,
             top_m, kge_model, no_kge, template, base_template, method, temperature, top_k, max_seconds, explain, as_json):
    """Zero-shot classification of CLIPS by CLAP, refined with the AKG's known and predicted facts."""
    from tqdm import tqdm

    from reasoning.classify import classify_clips, session_summary
    from reasoning.workflows import open_session

    spec, enrich = _specs(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations,
                          top_m, template, base_template)
    fusion_settings = FusionSettings(method=method, temperature=temperature)
    settings = Settings.from_env()
    with connect(settings) as graph:
        session = open_session(graph, settings, labels=labels, encoder_spec=spec, enrich=enrich,
                               kge_model=kge_model, use_kge=not no_kge)
    for note in session.predictor.stored.notes if session.predictor else []:
        click.echo(f"warning: {note}", err=True)
    with tqdm(total=len(clips), desc="audio", unit="clip", disable=not progress_enabled(), file=sys.stderr) as bar:
        outcomes = classify_clips(session, list(clips), fusion=fusion_settings, top_k=top_k, max_seconds=max_seconds,
                                  explain=explain, progress=bar.update)
    for o in outcomes:
        if o.error:
            click.echo(f"error: {o.error}", err=True)
    failed = sum(1 for o in outcomes if o.error)
    results = [o.as_dict() for o in outcomes]
    meta = session_summary(session, fusion_settings, top_k)
    if as_json:
        echo_json({"settings": meta, "clips": results})
    else:
        cov = meta["coverage"]
        click.echo(f"labels {meta['labels']}: {cov['with_entity']}/{cov['labels']} with an AKG entity; "
                   f"{meta['prompts']} enriched prompts; KGE {meta['kge_model'] or 'none'}")
        for entry in results:
            if "error" in entry:
                continue
            click.echo(f"\n{entry['clip']}")
            for n, item in enumerate(entry["refined"], 1):
                click.echo(f"  {n:2d}. {item['label']:32s} {item['score']:.4f}  (baseline #{item['baseline_rank']})")
            for label, e in list(entry.get("explanation", {}).items())[:3]:
                if e["prompts"]:
                    click.echo(f"     {label}: {e['change']:+.4f} from {e['prompts_used']} prompts; most: " + "; ".join(
                        f"{p['prompt']!r} {p['effect']:+.4f} ({p['kind']})" for p in e["prompts"][:3]))
    if failed == len(outcomes):
        raise click.ClickException(f"none of the {failed} clip(s) could be read")
