"""`akg classify` and `akg zeroshot-eval`: thin commands over reasoning.workflows."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from akg.cli import echo_json, progress_enabled
from akg.config import Settings
from akg.connect import connect
from akg.errors import InputError


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
        click.option("--labels", "labels", default="esc50", show_default=True, help="A label set (akg labels list) or a label file."),
        click.option("--relations", help="Comma-separated relations for enrichment, or 'all' (default: a documented six)."),
        click.option("--top-m", type=int, default=3, show_default=True, help="Predicted tails per relation."),
        click.option("--kge-model", help="KGE model for predicted tails (default: the latest)."),
        click.option("--no-kge", is_flag=True, help="Known tails from the graph only."),
        click.option("--template", default="{label}, {tail}", show_default=True, help="Enriched prompt template."),
        click.option("--base-template", default="{label}", show_default=True, help="Base prompt template."),
    ]):
        f = opt(f)
    return f


def fusion_options(f):
    for opt in reversed([
        click.option("--fusion", "method", type=click.Choice(["lse", "reliability"]), default="lse", show_default=True),
        click.option("--temperature", type=float, default=0.05, show_default=True, help="Log-sum-exp temperature."),
        click.option("--top-k", type=int, default=10, show_default=True, help="Labels refined per clip."),
    ]):
        f = opt(f)
    return f


def _specs(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations, top_m, template, base_template):
    from reasoning.encoders import EncoderSpec
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
@click.option("--max-seconds", type=float, default=600.0, show_default=True, help="Refuse longer clips.")
@click.option("--explain/--no-explain", default=True, show_default=True, help="Show the prompts that moved each label.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def classify(clips, backend, model, checkpoint, fusion, audio_model, device, allow_download, labels, relations,
             top_m, kge_model, no_kge, template, base_template, method, temperature, top_k, max_seconds, explain, as_json):
    """Zero-shot classification of CLIPS by CLAP, refined with the AKG's known and predicted facts."""
    from tqdm import tqdm

    from reasoning.fusion import FusionSettings
    from reasoning.refine import embed_clips
    from reasoning.workflows import open_session, refiner

    spec, enrich = _specs(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations,
                          top_m, template, base_template)
    try:
        fusion_settings = FusionSettings(method=method, temperature=temperature)
    except ValueError as e:
        raise InputError(str(e)) from None
    settings = Settings.from_env()
    with connect(settings) as graph:
        session = open_session(graph, settings, labels=labels, encoder_spec=spec, enrich=enrich,
                               kge_model=kge_model, use_kge=not no_kge)
    for note in session.predictor.stored.notes if session.predictor else []:
        click.echo(f"warning: {note}", err=True)
    ref = refiner(session, fusion_settings, top_k)
    with tqdm(total=len(clips), desc="audio", unit="clip", disable=not progress_enabled(), file=sys.stderr) as bar:
        outcomes = embed_clips(session.encoder, list(clips), session.audio_cache, max_seconds=max_seconds, progress=bar.update)
    texts = session.bank.label_texts
    results, failed = [], 0
    for o in outcomes:
        if o.error:
            failed += 1
            results.append({"clip": o.path, "error": o.error})
            click.echo(f"error: {o.error}", err=True)
            continue
        r = ref.refine(o.embedding)
        entry = {"clip": o.path,
                 "baseline": [{"label": texts[i], "score": round(float(r.baseline[i]), 6)} for i in r.top],
                 "refined": [{"label": texts[i], "score": round(float(r.refined[i]), 6)} for i in r.ranked(top_k)]}
        if explain:
            entry["explanation"] = {texts[i]: e for i, e in ref.explain(o.embedding, r).items()}
        results.append(entry)
    meta = {"labels": session.label_set.key, "coverage": session.label_set.coverage(), "encoder": session.encoder.identity,
            "kge_model": session.predictor.stored.name if session.predictor else None, "prompts": len(session.bank.prompts),
            "prompt_bank_cached": session.bank_from_cache, "fusion": fusion_settings.__dict__, "top_k": top_k}
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
            base_rank = {b["label"]: n for n, b in enumerate(entry["baseline"], 1)}
            for n, item in enumerate(entry["refined"], 1):
                was = f"baseline #{base_rank[item['label']]}" if item["label"] in base_rank else f"baseline below #{top_k}"
                click.echo(f"  {n:2d}. {item['label']:32s} {item['score']:.4f}  ({was})")
            for label, e in list(entry.get("explanation", {}).items())[:3]:
                if e["prompts"]:
                    click.echo(f"     {label}: {e['change']:+.4f} from {e['prompts_used']} prompts; most: " + "; ".join(
                        f"{p['prompt']!r} {p['effect']:+.4f} ({p['kind']})" for p in e["prompts"][:3]))
    if failed == len(outcomes):
        raise click.ClickException(f"none of the {failed} clip(s) could be read")
