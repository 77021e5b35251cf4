"""`akg index`, `akg search`, `akg tag` and `akg retrieval-eval`: thin commands over retrieval.workflows."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from akg.cli import echo_json, max_seconds_checked, progress_enabled
from akg.config import Settings
from akg.connect import connect
from reasoning.classify import DEFAULT_MAX_SECONDS
from reasoning.cli import ENRICH, _specs, encoder_options
from retrieval.knowledge import GRANULARITIES, MIN_SIMILARITY, NEAREST
from retrieval.search import DEFAULT_FUSION, DEFAULT_K


def knowledge_options(f):
    for opt in reversed([
        click.option("--relations", help="Comma-separated relations for enrichment, or 'all' (default: a documented six)."),
        click.option("--top-m", type=int, default=ENRICH.top_m, show_default=True, help="Predicted tails per relation."),
        click.option("--kge-model", help="KGE model for predicted tails (default: the latest)."),
        click.option("--no-kge", is_flag=True, help="Known tails from the graph only."),
        click.option("--fusion", "method", type=click.Choice(["lse", "reliability"]), default=DEFAULT_FUSION.method,
                     show_default=True, help="Variant weights: uniform, or by reliability (consistency, known over predicted)."),
        click.option("--temperature", type=float, default=DEFAULT_FUSION.temperature, show_default=True),
        click.option("-k", "k", type=click.IntRange(min=1), default=DEFAULT_K, show_default=True, help="Results."),
        click.option("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, show_default=True,
              callback=max_seconds_checked, help="Refuse longer clips (above 0, at most 3600)."),
        click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON."),
    ]):
        f = opt(f)
    return f


def _load(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations=None, top_m=ENRICH.top_m):
    from akg.encoders import load_encoder

    spec, enrich = _specs(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations,
                          top_m, ENRICH.template, ENRICH.base_template)
    return spec, enrich, load_encoder(spec)


def _printed_as_json(report: dict, as_json: bool) -> bool:
    """Errors and warnings to stderr; the whole report as JSON when asked (then the caller is done)."""
    for kind in ("error", "warning"):
        for message in report.get(f"{kind}s", []):
            click.echo(f"{kind}: {message}", err=True)
    if as_json:
        echo_json(report)
    return as_json


def _fusion(method, temperature):
    from reasoning.fusion import FusionSettings

    return FusionSettings(method=method, temperature=temperature)


@click.command()
@click.argument("audio_dir", type=click.Path(path_type=Path))
@click.option("--name", help="The index's name (default: the folder's name).")
@encoder_options
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Local processes embedding clips (more than the cores are capped, with a warning).")
@click.option("--ray", "ray", metavar="auto|ADDRESS", help="Embed on a Ray cluster (auto: the running one, else a local runtime).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Clips per batch (the unit a crash can lose).")
@click.option("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, show_default=True,
              callback=max_seconds_checked, help="Refuse longer clips (above 0, at most 3600).")
@click.option("--rebuild", is_flag=True, help="Start afresh (required to change the encoder of an index).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def index(audio_dir, name, backend, model, checkpoint, fusion, audio_model, device, allow_download, workers, ray,
          batch, max_seconds, rebuild, as_json):
    """Embed every clip under AUDIO_DIR once into a searchable vector index (incremental: new or changed files only)."""
    from tqdm import tqdm

    from retrieval.store import check_collection, check_name
    from retrieval.workflows import index_collection

    check_collection(audio_dir)  # what the user typed is checked before a CLAP model is loaded (seconds)
    if name is not None:
        check_name(name)
    spec, _, encoder = _load(backend, model, checkpoint, fusion, audio_model, device, allow_download)
    counted = {"done": 0, "total": None}  # tqdm counts nothing when its bar is off (no terminal)

    def total(n):
        counted["total"] = bar.total = n

    def progress(n):
        counted["done"] += n
        bar.update(n)

    with tqdm(desc="audio", unit="clip", disable=not progress_enabled(), file=sys.stderr) as bar:
        try:
            report = index_collection(Settings.from_env(), audio_dir, name=name, encoder=encoder, spec=spec,
                                      workers=workers, ray=ray, batch=batch, max_seconds=max_seconds, rebuild=rebuild,
                                      on_total=total, progress=progress)
        except KeyboardInterrupt:  # the workers are stopped by now; every finished batch is in the audio cache
            done = f" after {counted['done']} of {counted['total']} clips" if counted["total"] else ""
            raise click.ClickException(f"interrupted{done}; the index is unchanged and the clips embedded so far "
                                       "are kept: run the same command again to go on from there") from None
    if _printed_as_json(report, as_json):
        return
    click.echo(f"index {report['name']}: {report['clips']} clips ({report['kind']}); embedded {report['embedded']}, "
               f"from the cache {report['cached']}, unchanged {report['reused']}, removed {report['removed']}, "
               f"unreadable {len(report['errors'])}; {report['seconds']:.1f} s")


@click.command()
@click.argument("text", required=False)
@click.option("--index", "index_name", help="The index to search (akg index).")
@click.option("--clip", type=click.Path(path_type=Path), help="Audio to text: this clip ...")
@click.option("--captions", type=click.Path(path_type=Path), help="... against these captions (Clotho, AudioCaps or a caption column).")
@click.option("--granularity", "granularities", default=",".join(GRANULARITIES), show_default=True,
              help="Variants to use: entity, relation, parent (comma-separated).")
@click.option("--nearest", type=click.IntRange(min=0), default=NEAREST, show_default=True,
              help="Entities linked by text embedding besides the names in the text.")
@click.option("--min-similarity", type=float, default=MIN_SIMILARITY, show_default=True, help="Least cosine of such a link.")
@encoder_options
@knowledge_options
def search(text, index_name, clip, captions, granularities, nearest, min_similarity, backend, model, checkpoint, fusion, audio_model, device,
           allow_download, relations, top_m, kge_model, no_kge, method, temperature, k, max_seconds, as_json):
    """Text to audio (TEXT --index N) or audio to text (--clip FILE --captions CSV), refined with the AKG."""
    from retrieval.store import require_index
    from retrieval.workflows import search as run

    settings = Settings.from_env()
    if text is not None and index_name:
        require_index(settings.home, index_name)  # before a CLAP model is loaded (seconds)
    spec, enrich, encoder = _load(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations, top_m)
    with connect(settings) as graph:
        out = run(graph, settings, encoder, text=text, index=index_name, clip=clip, captions=captions, k=k,
                  fusion=_fusion(method, temperature), enrich=enrich,
                  granularities=[g.strip() for g in granularities.split(",") if g.strip()],
                  kge_model=kge_model, use_kge=not no_kge, nearest=nearest, min_similarity=min_similarity,
                  max_seconds=max_seconds)
    if as_json:
        echo_json(out)
        return
    if text is not None:
        links = ", ".join(f"{l['entity']} ({l['how']})" for l in out["links"]) or "none"
        click.echo(f"{out['clips']} clips in {out['index']}; linked: {links}; {len(out['variants'])} variants")
    for h in out["hits"]:
        what = h.get("clip") or h.get("caption")
        was = f"#{h['baseline_rank']}" if h["baseline_rank"] else "new"
        click.echo(f"{h['rank']:3d}. {h['score']:.4f}  (baseline {was}, {h['change']:+.4f})  {what}")
        for m in h["moved_by"][:2]:
            if abs(m["effect"]) > 0:
                click.echo(f"       {m['effect']:+.4f} {m['granularity']}: {m['text']!r} ({m['kind']})")


@click.command()
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path))
@encoder_options
@knowledge_options
def tag(clips, backend, model, checkpoint, fusion, audio_model, device, allow_download, relations, top_m, kge_model,
        no_kge, method, temperature, k, max_seconds, as_json):
    """Tag CLIPS with AKG entities (open vocabulary: every entity), refined with the graph; with what the AKG knows of each."""
    from retrieval.workflows import tag as run

    spec, enrich, encoder = _load(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations, top_m)
    settings = Settings.from_env()
    with connect(settings) as graph:
        out = run(graph, settings, encoder, list(clips), k=k, fusion=_fusion(method, temperature), enrich=enrich,
                  kge_model=kge_model, use_kge=not no_kge, max_seconds=max_seconds)
    for o in out:
        if "error" in o:
            click.echo(f"error: {o['error']}", err=True)
    if as_json:
        echo_json(out)
    else:
        for o in out:
            if "error" in o:
                continue
            click.echo(o["clip"])
            for t in o["tags"]:
                known = "; ".join(x for x in (f"parents: {', '.join(t['parents'])}" if t["parents"] else "",
                                              f"occurs in: {', '.join(t['occurs_in'][:5])}" if t["occurs_in"] else "") if x)
                click.echo(f"  {t['rank']:2d}. {t['entity']:32s} {t['score']:.4f} (baseline #{t['baseline_rank']})"
                           + (f"  [{known}]" if known else ""))
    if all("error" in o for o in out):
        raise click.ClickException(f"none of the {len(out)} clip(s) could be read")


@click.command("retrieval-eval")
@click.option("--audio-dir", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--meta", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Clotho captions CSV (file_name, caption_1..5) or AudioCaps CSV (audiocap_id, youtube_id, start_time, caption).")
@encoder_options
@click.option("--relations", help="The main relation set (comma-separated, or 'all').")
@click.option("--ablate-relations", default="", help="More relation sets to compare, separated by ';'.")
@click.option("--top-m", type=int, default=ENRICH.top_m, show_default=True, help="Predicted tails per relation.")
@click.option("--kge-model", help="KGE model for predicted tails (default: the latest).")
@click.option("--no-kge", is_flag=True, help="Known tails from the graph only.")
@click.option("--fusion", "method", type=click.Choice(["lse", "reliability"]), default=DEFAULT_FUSION.method, show_default=True)
@click.option("--temperature", type=float, default=DEFAULT_FUSION.temperature, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N clips.")
@click.option("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, show_default=True,
              callback=max_seconds_checked)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("retrieval-eval"), show_default=True)
@click.option("--json", "as_json", is_flag=True)
def retrieval_eval(audio_dir, meta, backend, model, checkpoint, fusion, audio_model, device, allow_download, relations,
                   ablate_relations, top_m, kge_model, no_kge, method, temperature, limit, max_seconds, out_dir, as_json):
    """R@1/5/10 and mAP@10 of CLAP and of the knowledge-enhanced CLAP, both directions, with ablations."""
    from tqdm import tqdm

    from reasoning.evaluation import check_out_dir
    from retrieval.evaluation import retrieval_eval as run

    check_out_dir(out_dir)  # before loading anything: a folder that cannot be written fails now
    spec, enrich, encoder = _load(backend, model, checkpoint, fusion, audio_model, device, allow_download, relations, top_m)
    ablate = [enrich.parse_relations(r) for r in ablate_relations.split(";") if r.strip()]
    settings = Settings.from_env()
    with connect(settings) as graph, \
            tqdm(desc="audio", unit="clip", disable=not progress_enabled(), file=sys.stderr) as bar:
        report = run(graph, settings, encoder, audio_dir=audio_dir, meta=meta, enrich=enrich, ablate_relations=ablate,
                     fusion=_fusion(method, temperature), kge_model=kge_model, use_kge=not no_kge, limit=limit,
                     max_seconds=max_seconds, out_dir=out_dir, progress=bar.update,
                     on_clips=lambda n: setattr(bar, "total", n))
    if _printed_as_json(report, as_json):
        return
    click.echo(f"{report['layout']}: {report['clips'] - report['failed']} clips, {report['captions']} captions "
               f"({report['linked_captions']} linked to the AKG)")
    for r in report["results"]:
        if r["convention"] != "dcase":
            click.echo(f"  {r['config']:22s} {r['direction']:14s} R@1 {r['R@1']:.4f}  R@5 {r['R@5']:.4f}  "
                       f"R@10 {r['R@10']:.4f}  mAP@10 {r['mAP@10']:.4f}")
    click.echo(f"report: {report['files']['report']}")
