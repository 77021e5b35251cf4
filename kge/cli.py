"""`akg train`, `akg evaluate`, `akg predict`, `akg models`: thin commands over kge.workflows."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from akg.cli import echo_json, progress_enabled
from akg.config import Settings
from akg.connect import connect
from akg.errors import InputError
from kge.presets import LOOPS, PRESETS, REGULARIZERS


def _warn(message: str | None) -> None:
    if message:
        click.echo(f"warning: {message}", err=True)


def _metrics_lines(metrics: dict) -> list[str]:
    lines = []
    for part in ("known", "new", "all"):
        if part not in metrics:
            continue
        m = metrics[part]
        lines.append(f"  {part:5s} ({m['triples']} test triples): MRR {m['mrr']:.4f}  Hits@1 {m['hits@1']:.4f}  "
                     f"Hits@3 {m['hits@3']:.4f}  Hits@5 {m['hits@5']:.4f}  Hits@10 {m['hits@10']:.4f}")
    return lines


def _side_by_side(rows: list[tuple[str, dict]]) -> list[str]:
    """Metrics of several models in columns, with each later model's difference to the first."""
    names = [n for n, _ in rows]
    width = max(12, *(len(n) for n in names))
    head = f"  {'':22s}" + "".join(f"{n:>{width + 2}s}" for n in names)
    head += "".join(f"{'Δ ' + n:>{width + 4}s}" for n in names[1:])
    lines = [head]
    for part in ("known", "new", "all"):
        for metric in ("mrr", "hits@1", "hits@10"):
            vals = [m.get(part, {}).get(metric) for _, m in rows]
            triples = next((m[part]["triples"] for _, m in rows if part in m), 0)
            label = f"{metric.upper() if metric == 'mrr' else metric.capitalize()} {part} ({triples})"
            line = f"  {label:22s}" + "".join(f"{v:>{width + 2}.4f}" if v is not None else f"{'-':>{width + 2}s}" for v in vals)
            line += "".join(f"{vals[0] - v:>+{width + 4}.4f}" if None not in (vals[0], v) else f"{'-':>{width + 4}s}"
                            for v in vals[1:])
            lines.append(line)
    return lines


@click.command()
@click.option("--preset", type=click.Choice(sorted(PRESETS)),
              help="fast (lean loop, the default), best (1-vs-all ComplEx, the strongest), grounded (the default "
                   "with --grounded) or paper (config 001).")
@click.option("--model", "model_name", help="Any PyKEEN model (TransE, DistMult, ComplEx, RotatE, ...).")
@click.option("--dim", "embedding_dim", type=int, help="Embedding dimension.")
@click.option("--lr", "learning_rate", type=float, help="Adam learning rate.")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option("--negatives", type=int, help="Negatives per positive (per batch, shared, in the lean loop).")
@click.option("--loop", "training_loop", type=click.Choice(LOOPS),
              help="Training loop: lean (RotatE, shared negatives), slcwa, lcwa (PyKEEN's), 1vsall (every entity "
                   "scored per triple, cross-entropy).")
@click.option("--reciprocal/--no-reciprocal", "inverse_triples", default=None,
              help="Reciprocal relations: also train (t, r⁻¹, h); heads are predicted as its tails.")
@click.option("--regularizer", type=click.Choice(REGULARIZERS),
              help="default (the PyKEEN model's own), none, or n3 (cubed moduli, --regularizer-weight).")
@click.option("--regularizer-weight", type=float, help="Weight of the n3 regularizer.")
@click.option("--label-smoothing", type=float, help="Label smoothing in [0, 1) (1vsall and lcwa loops).")
@click.option("--seed", type=int)
@click.option("--device", type=click.Choice(["cpu", "cuda"]))
@click.option("--name", help="Model name (default: model-preset-timestamp).")
@click.option("--grounded", type=click.Choice(["text", "text,audio"]),
              help="Fuse each entity's embedding with its name's text features (text: entities never seen in "
                   "training are scored from their names), and its example clips' CLAP audio features "
                   "(text,audio: needs --audio-examples and --meta; `akg predict --clip` then answers for a clip).")
@click.option("--audio-examples", "audio_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder of example clips (--grounded text,audio), laid out as --meta says.")
@click.option("--meta", type=click.Path(path_type=Path, dir_okay=False),
              help="The clips' labels: esc50.csv, UrbanSound8K.csv or FSD50K's CSV (as zeroshot-eval reads them).")
@click.option("--dataset", help="Label set mapping the labels to AKG entities (default: guessed from --meta's "
                                "layout), or a label file of label<TAB>entity lines.")
@click.option("--encoder", type=click.Choice(["auto", "minilm", "clap"]),
              help="Text features (--grounded): CLAP's text tower, all-MiniLM-L6-v2, or auto (CLAP when "
                   "AKG_CLAP_MODEL/AKG_CLAP_CHECKPOINT is set, else minilm). Default auto.")
@click.option("--fusion", type=click.Choice(["average", "concat", "weighted"]),
              help="How structure and features combine (--grounded). Default average.")
@click.option("--projection", type=click.Choice(["linear", "mlp"]), help="Feature projection (--grounded).")
@click.option("--modality-dropout", type=float,
              help="Probability that an entity's structural part is dropped in a training step (--grounded).")
@click.option("--no-evaluate", is_flag=True, help="Skip the evaluation on the test split after training.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def train(preset: str | None, model_name: str | None, name: str | None, grounded: str | None, audio_dir: Path | None,
          meta: Path | None, dataset: str | None, encoder: str | None, fusion: str | None, projection: str | None,
          modality_dropout: float | None, no_evaluate: bool, as_json: bool, **overrides) -> None:
    """Train a knowledge-graph embedding on the graph's accepted training triples.

    \b
    akg train                                   # RotatE, the fast preset
    akg train --grounded text --fusion average  # grounded in the entities' names (the grounded preset)
    akg train --grounded text,audio --audio-examples ESC-50/audio --meta ESC-50/meta/esc50.csv
    """
    from kge.presets import configure
    from kge.workflows import train_from_graph

    config = configure(preset_name=preset, model=model_name, grounded=grounded,
                       grounding={"encoder": encoder, "fusion": fusion, "projection": projection,
                                  "modality_dropout": modality_dropout}, **overrides)
    settings = Settings.from_env()
    from kge.store import models_root

    with connect(settings) as graph:
        if audio_dir is not None or meta is not None or (grounded or "").endswith("audio"):
            from reasoning.audio_grounding import train_audio_grounded

            trained = train_audio_grounded(graph, settings, config, audio_dir=audio_dir, meta=meta, dataset=dataset,
                                           models_root=models_root(settings.home), name=name,
                                           evaluate_after=not no_evaluate, progress=progress_enabled())
        else:
            if dataset is not None:
                raise InputError("--dataset only applies with example clips (--audio-examples, --meta)")
            trained = train_from_graph(graph, config, models_root=models_root(settings.home), name=name,
                                       evaluate_after=not no_evaluate, progress=progress_enabled())
    for note in trained.notes:
        _warn(note)
    if trained.metrics is None and not no_evaluate:
        _warn("the graph has no test split, so the model was not evaluated (akg ingest AKG_test.tsv)")
    if as_json:
        echo_json({"model": trained.path.name, "path": str(trained.path), "train_seconds": round(trained.train_seconds, 3),
                   "config": trained.config.as_dict(), "metrics": trained.metrics})
        return
    grounded_by = ""
    if trained.config.grounding:
        g = trained.config.grounding
        grounded_by = f", grounded in its entities' names ({g['encoder']} features, {g['fusion']} fusion)"
        if g.get("audio_dim"):
            grounded_by += " and example clips (CLAP audio features)"
    click.echo(f"trained {config.model} ({config.preset} preset, {config.epochs} epochs{grounded_by}) "
               f"in {trained.train_seconds:.1f} s")
    if trained.metrics:
        click.echo("filtered link prediction on the test split (both sides, realistic ties):")
        for line in _metrics_lines(trained.metrics):
            click.echo(line)
    click.echo(f"saved to {trained.path}")


@click.command()
@click.argument("model", required=False)
@click.option("--against", "others", multiple=True, metavar="MODEL",
              help="Also evaluate MODEL on the same triples and show it side by side (repeatable).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--per-relation", is_flag=True, help="Also MRR and Hits@10 of each relation (weakest first).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def evaluate(model: str | None, others: tuple[str, ...], device: str, per_relation: bool, as_json: bool) -> None:
    """Filtered MRR and Hits@1/3/5/10 of MODEL (default: the latest) on the graph's test split.

    \b
    akg evaluate                                 # the latest model
    akg evaluate --per-relation                  # and each relation's MRR and Hits@10
    akg evaluate GROUNDED --against PLAIN        # two models on the same triples, side by side
    """
    from kge import store
    from kge.data import from_graph
    from kge.features import default_cache_dir
    from kge.workflows import evaluate_on, staleness

    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available here (use --device cpu)")
    settings = Settings.from_env()
    root = store.models_root(settings.home)
    models = [store.resolve(model, root)] + [store.resolve(o, root) for o in others]  # every name checked first
    for note in models[0].notes:
        _warn(note)
    results = []
    with connect(settings) as graph:
        data = from_graph(graph, need_test=True)
        for stored in models:
            _warn(staleness(stored, data.train.sha256))
            metrics = evaluate_on(stored.load_model(device), stored.entity_to_id, stored.relation_to_id, data,
                                  progress=progress_enabled(), device=device,
                                  feature_cache=default_cache_dir(settings.home))
            if not per_relation:
                metrics.pop("per_relation", None)
            results.append((stored, metrics))
    first, metrics = results[0]
    if as_json:
        out = _evaluation_json(first, metrics)
        if others:
            out["against"] = [{**_evaluation_json(s, m), "delta": _delta(metrics, m)} for s, m in results[1:]]
        echo_json(out)
        return
    if others:
        click.echo("filtered link prediction on the test split (both sides, realistic ties), same triples:")
        for line in _side_by_side([(s.name, m) for s, m in results]):
            click.echo(line)
    else:
        click.echo(f"model {first.name}: filtered link prediction on the test split (both sides, realistic ties)")
        for line in _metrics_lines(metrics):
            click.echo(line)
    for stored, m in results:
        tm = m["test_triples"]
        how = (f"ranked with the {tm['new_entities']} new entities among the candidates, from their names"
               if tm["scored"] > tm["known"] else "misses in 'new' and 'all'")
        click.echo(f"  {stored.name}: {tm['unseen_entities']} of {tm['total']} test triples involve an entity unseen "
                   f"in training: {how}")
    if per_relation:
        for stored, m in results:
            click.echo(f"model {stored.name}, per relation (weakest first):")
            for line in per_relation_lines(m["per_relation"]):
                click.echo(line)


def per_relation_lines(table: dict) -> list[str]:
    """Each relation's known and all metrics as aligned lines, the lowest known MRR first."""
    from kge.evaluate import per_relation_rows

    rows = per_relation_rows(table)
    width = max([8, *(len(r["relation"]) for r in rows)])
    lines = [f"  {'relation':{width}s}  {'known':>5s}  {'MRR':>6s}  {'Hits@10':>7s}  {'all':>5s}  {'MRR':>6s}  {'Hits@10':>7s}"]
    for r in rows:
        known = (f"{r['MRR known']:6.4f}  {r['Hits@10 known']:7.4f}" if r["MRR known"] is not None
                 else f"{'-':>6s}  {'-':>7s}")
        lines.append(f"  {r['relation']:{width}s}  {r['known triples']:5d}  {known}  {r['all triples']:5d}  "
                     f"{r['MRR all']:6.4f}  {r['Hits@10 all']:7.4f}")
    return lines


def _evaluation_json(stored, metrics: dict) -> dict:
    return {"model": stored.name, "grounded": bool(stored.config["training"].get("grounding")),
            "metrics": metrics, "train_seconds": stored.config.get("train_seconds")}


def _delta(first: dict, other: dict) -> dict:
    """first minus other, per part and metric."""
    return {part: {k: round(first[part][k] - other[part][k], 6) for k in first[part] if k != "triples"}
            for part in ("known", "new", "all") if part in first and part in other}


@click.command()
@click.argument("head", required=False)
@click.argument("relation", required=False)
@click.option("-k", "--top", "k", default=10, show_default=True, help="How many tails.")
@click.option("--model", help="Model name or directory (default: the latest).")
@click.option("--batch", "batch_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A TSV of head<TAB>relation pairs (or - for standard input): predict for each.")
@click.option("--clip", type=click.Path(path_type=Path, dir_okay=False),
              help="An audio clip instead of HEAD (give RELATION alone): what an audio-grounded model holds for the sound.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def predict(head: str | None, relation: str | None, k: int, model: str | None, batch_file: Path | None,
            clip: Path | None, as_json: bool) -> None:
    """Known tails (in the graph) and predicted tails (KGE) for HEAD and RELATION.

    \b
    akg predict dog "has parent" -k 5
    akg predict --batch pairs.tsv --json
    akg predict --clip bark.wav "has parent"     # a model trained with --grounded text,audio
    """
    from kge import store
    from kge.predict import Predictor, batch_pairs
    from kge.workflows import all_known, current_train_hash, known_tails, staleness

    if clip is not None and (batch_file is not None or relation is not None or head is None):
        raise click.UsageError("with --clip FILE, give RELATION alone (no HEAD, no --batch)")
    if clip is None and batch_file is None and (head is None or relation is None):
        raise click.UsageError("give HEAD and RELATION, or --batch FILE, or --clip FILE and RELATION")
    from kge.features import default_cache_dir

    settings = Settings.from_env()
    stored = store.resolve(model, store.models_root(settings.home))
    for note in stored.notes:
        _warn(note)
    predictor = Predictor(stored, feature_cache=default_cache_dir(settings.home))
    if clip is not None:
        _predict_clip(predictor, clip, head, k, settings, as_json)
        return
    problems, lines = [], [None]
    if batch_file is not None:  # every line checked before the graph is asked anything
        source = "standard input" if str(batch_file) == "-" else str(batch_file)
        resolved, problems = batch_pairs(predictor, _read_batch(batch_file), source)
        lines, pairs = [n for n, _, _ in resolved], [(h, r) for _, h, r in resolved]
        for n, problem in problems:
            _warn(f"{source}, line {n}: {problem}")
    with connect(settings) as graph:
        _warn(staleness(stored, current_train_hash(graph)))
        if batch_file is None:
            pair = predictor.resolve_pair(head, relation)
            results = [predictor.predict(*pair, k=k, known=known_tails(graph, *pair))]
            pairs = [pair]
        else:
            results = predictor.predict_batch(pairs, k, all_known(graph))
        by_name = sorted({h for h, _ in pairs if predictor.grounded_by_name(h)})
        in_graph = _existing(graph, by_name)
    if as_json:
        out = [{**({"line": n} if n is not None else {}), "head": h, "relation": r, "model": stored.name,
                "tails": [p.as_dict() for p in preds],
                **({"grounded_by_name": True, "head_in_graph": h in in_graph} if h in by_name else {})}
               for n, (h, r), preds in zip(lines, pairs, results)]
        if batch_file is None:
            echo_json(out[0])
        else:
            echo_json({"model": stored.name, "results": out,
                       "errors": [{"line": n, "problem": p} for n, p in problems]})
        return
    for (h, r), preds in zip(pairs, results):
        click.echo(f"{h} —{r}→ (model {stored.name})")
        if h in by_name:
            where = (f"not among the entities model {stored.name} was trained on" if h in in_graph
                     else "not in the graph")
            click.echo(f"  {h!r} is {where}: grounded by its name (tails from its name's features)")
        for i, p in enumerate(preds, 1):
            click.echo(f"  {i:2d}. {p.tail:40s} {p.score:9.4f}  {'known' if p.known else 'predicted'}")


def _predict_clip(predictor, clip: Path, relation: str, k: int, settings: Settings, as_json: bool) -> None:
    from reasoning.audio_grounding import predict_clip

    plain = predictor.check_audio(relation)
    preds = predict_clip(predictor, clip, plain, settings, k=k)
    name = predictor.stored.name
    if as_json:
        echo_json({"clip": str(clip), "relation": plain, "model": name, "tails": [p.as_dict() for p in preds]})
        return
    click.echo(f"{clip} —{plain}→ (model {name})")
    click.echo("  the clip is no entity: its CLAP audio embedding stands for one (no name, no graph structure)")
    for i, p in enumerate(preds, 1):
        click.echo(f"  {i:2d}. {p.tail:40s} {p.score:9.4f}  predicted")


def _grounding_summary(grounding: dict | None) -> str | None:
    """'text:minilm/average' for a grounded model, None for a plain one."""
    if not grounding:
        return None
    return f"{grounding.get('modality', 'text')}:{grounding.get('encoder')}/{grounding.get('fusion')}"


def _existing(graph, names: list[str]) -> set[str]:
    """Which of `names` are entities of the graph."""
    if not names:
        return set()
    from akg import queries

    rows = graph.read(queries.get("existing_entities"), {"names": names})
    return set(rows[0]["names"]) if rows else set()


def _read_batch(path: Path) -> str:
    from akg.files import read_input

    if str(path) == "-":
        return sys.stdin.read()
    try:
        return read_input(path, "a file of head<TAB>relation lines").decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 ({e.reason})", file=str(path)) from None


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """Stored models: their metrics and the graph state they were trained on.

    \b
    akg models                          # list them
    akg models import DIR [--name N]    # a set written by `akg export-embeddings`, checksums checked
    """
    if ctx.invoked_subcommand is not None:
        return
    from kge import store
    from kge.workflows import staleness

    settings = Settings.from_env()
    scanned = store.scan(store.models_root(settings.home))  # each checked: config, id maps, weights' header
    found = [m for m in scanned if isinstance(m, store.StoredModel)]
    stale = {}
    if found:
        from kge.workflows import current_train_hash

        with connect(settings) as graph:
            current = current_train_hash(graph)  # one read for all the models
        stale = {m.name: staleness(m, current) is not None for m in found}
    rows = []
    for m in scanned:
        if isinstance(m, store.BrokenModel):
            rows.append({"name": m.name, "broken": True, "problem": m.problem, "created_at": m.created_at,
                         "path": str(m.path)})
            continue
        t, mrr = m.train_config, {part: (m.metrics or {}).get(part, {}).get("mrr") for part in ("known", "all", "new")}
        rows.append({"name": m.name, "broken": False, "problem": None, "model": t.model, "preset": t.preset,
                     "grounding": _grounding_summary(t.grounding), "created_at": m.created_at or None,
                     "train_seconds": m.config.get("train_seconds"), "mrr_known": mrr["known"],
                     "mrr_all": mrr["all"], "mrr_new": mrr["new"],
                     "train_sha256": m.trained_on.get("train_sha256"), "graph_version": m.trained_on.get("graph_version"),
                     "stale": stale.get(m.name), "path": str(m.path)})
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"no models under {store.models_root(settings.home)}: run `akg train`")
    width = max((len(r["model"]) + (len(r["grounding"]) + 1 if r["grounding"] else 0) for r in rows if not r["broken"]),
                default=9)
    for r in rows:
        if r["broken"]:
            click.echo(f"{r['name']:40s} BROKEN: {r['problem']}")
            continue
        parts = [f"{part} {r[f'mrr_{part}']:.4f}" for part in ("known", "all") if r[f"mrr_{part}"] is not None]
        if r["mrr_new"] is not None and r["grounding"]:
            parts.append(f"new {r['mrr_new']:.4f}")
        mrr = f"MRR {' / '.join(parts)}" if parts else "not evaluated"
        flag = "  STALE: the graph changed since" if r["stale"] else ""
        kind = r["model"] + (f"+{r['grounding']}" if r["grounding"] else "")
        click.echo(f"{r['name']:40s} {kind:{width}s} {mrr}  trained in {r['train_seconds'] or 0:.1f} s  "
                   f"on graph version {str(r['graph_version'] or '(not recorded)')[:12]}{flag}")


@models.command("import")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", help="Name of the imported model (default: the exported model's name + '-imported').")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def import_model(folder: Path, name: str | None, as_json: bool) -> None:
    """Store embeddings written by `akg export-embeddings` as a model (every file checked against
    meta.json's checksums): `akg predict` and `akg evaluate` then use it. See docs/embeddings.md."""
    from kge import store
    from kge.export import import_set

    settings = Settings.from_env()
    path = import_set(folder, store.models_root(settings.home), name=name)
    if as_json:
        echo_json({"model": path.name, "path": str(path)})
        return
    click.echo(f"imported {folder} as model {path.name} ({path})")


@click.command("export-embeddings")
@click.argument("model", required=False)
@click.option("--format", "fmt", type=click.Choice(["npy", "parquet", "tsv"]), default="npy", show_default=True)
# No file_okay=False: a file given as --out is refused by kge.export in one line, as every other --out
# it cannot write to, rather than by click's usage error.
@click.option("--out", type=click.Path(path_type=Path), metavar="DIRECTORY",
              help="Folder to write (new or empty; default: ./MODEL-embeddings).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def export_embeddings(model: str | None, fmt: str, out: Path | None, as_json: bool) -> None:
    """Entity and relation embeddings of MODEL (default: the latest) with their id maps and a meta.json
    (model, graph version, checksums). Complex models: a trailing (real, imaginary) axis in npy,
    re/im columns in parquet and tsv. See docs/embeddings.md.

    \b
    akg export-embeddings --format parquet --out emb
    """
    from kge import store
    from kge.export import export

    settings = Settings.from_env()
    stored = store.resolve(model, store.models_root(settings.home))
    for note in stored.notes:
        _warn(note)
    done = export(stored, out, fmt)
    if as_json:
        echo_json({"path": str(done.path), **{k: done.meta[k] for k in ("model", "file_format", "entities",
                                                                         "relation_rows", "dim", "complex",
                                                                         "files", "checksum")}})
        return
    m = done.meta
    click.echo(f"exported model {m['model']}: {m['entities']} entity and {m['relation_rows']} relation vectors of "
               f"dimension {m['dim']}{' (complex)' if m['complex'] else ''}, {fmt}, to {done.path}")
    for f in m["files"]:
        click.echo(f"  {f}")
