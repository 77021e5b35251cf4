"""`akg train`, `akg evaluate`, `akg predict`, `akg models`: thin commands over kge.workflows."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from akg.cli import echo_json, progress_enabled
from akg.config import Settings
from akg.connect import connect
from akg.errors import InputError


def _warn(message: str | None) -> None:
    if message:
        click.echo(f"warning: {message}", err=True)


def _metrics_lines(metrics: dict) -> list[str]:
    lines = []
    for part in ("known", "all"):
        m = metrics[part]
        lines.append(f"  {part:5s} ({m['triples']} test triples): MRR {m['mrr']:.4f}  Hits@1 {m['hits@1']:.4f}  "
                     f"Hits@3 {m['hits@3']:.4f}  Hits@5 {m['hits@5']:.4f}  Hits@10 {m['hits@10']:.4f}")
    return lines


@click.command()
@click.option("--preset", default="fast", show_default=True, help="fast (lean loop, default) or paper (config 001).")
@click.option("--model", "model_name", help="Any PyKEEN model (TransE, DistMult, ComplEx, RotatE, ...).")
@click.option("--dim", "embedding_dim", type=int, help="Embedding dimension.")
@click.option("--lr", "learning_rate", type=float, help="Adam learning rate.")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option("--negatives", type=int, help="Negatives per positive (per batch, shared, in the lean loop).")
@click.option("--loop", "training_loop", type=click.Choice(["lean", "slcwa", "lcwa"]), help="Training loop.")
@click.option("--seed", type=int)
@click.option("--device", type=click.Choice(["cpu", "cuda"]))
@click.option("--name", help="Model name (default: model-preset-timestamp).")
@click.option("--no-evaluate", is_flag=True, help="Skip the evaluation on the test split after training.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def train(preset: str, model_name: str | None, name: str | None, no_evaluate: bool, as_json: bool, **overrides) -> None:
    """Train a knowledge-graph embedding on the graph's accepted training triples."""
    from kge.presets import preset as get_preset
    from kge.workflows import train_from_graph

    config = get_preset(preset)
    if model_name:
        from kge.train import model_class

        cls = model_class(model_name)  # a clear error for an unknown name, before anything runs
        config = config.with_overrides(model=cls.__name__)
        if cls.__name__ != "RotatE" and config.training_loop == "lean" and not overrides.get("training_loop"):
            # the lean loop is RotatE's; other models use PyKEEN's own sLCWA loop and loss
            config = dataclasses.replace(config, training_loop="slcwa", negatives=min(config.negatives, 16),
                                         loss=None, loss_kwargs={}, preset=f"{config.preset}-slcwa")
    for key in ("epochs", "batch_size", "negatives", "embedding_dim"):
        if overrides.get(key) is not None and overrides[key] < 1:
            raise InputError(f"--{key.replace('_', '-')} must be at least 1")
    config = config.with_overrides(**overrides)
    settings = Settings.from_env()
    from kge.store import models_root

    with connect(settings) as graph:
        trained = train_from_graph(graph, config, models_root=models_root(settings.home), name=name,
                                   evaluate_after=not no_evaluate, progress=progress_enabled())
    if trained.metrics is None and not no_evaluate:
        _warn("the graph has no test split, so the model was not evaluated (akg ingest AKG_test.tsv)")
    if as_json:
        echo_json({"model": trained.path.name, "path": str(trained.path), "train_seconds": round(trained.train_seconds, 3),
                   "config": config.as_dict(), "metrics": trained.metrics})
        return
    click.echo(f"trained {config.model} ({config.preset} preset, {config.epochs} epochs) in {trained.train_seconds:.1f} s")
    if trained.metrics:
        click.echo("filtered link prediction on the test split (both sides, realistic ties):")
        for line in _metrics_lines(trained.metrics):
            click.echo(line)
    click.echo(f"saved to {trained.path}")


@click.command()
@click.argument("model", required=False)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def evaluate(model: str | None, device: str, as_json: bool) -> None:
    """Filtered MRR and Hits@1/3/5/10 of MODEL (default: the latest) on the graph's test split."""
    from kge import store
    from kge.data import from_graph
    from kge.workflows import evaluate_on, staleness

    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available here (use --device cpu)")
    settings = Settings.from_env()
    stored = store.resolve(model, store.models_root(settings.home))
    with connect(settings) as graph:
        data = from_graph(graph, need_test=True)
        _warn(staleness(stored, data.train.sha256))
        metrics = evaluate_on(stored.load_model(device), stored.entity_to_id, stored.relation_to_id, data,
                              progress=progress_enabled(), device=device)
    if as_json:
        echo_json({"model": stored.name, "metrics": metrics, "train_seconds": stored.config.get("train_seconds")})
        return
    click.echo(f"model {stored.name}: filtered link prediction on the test split (both sides, realistic ties)")
    for line in _metrics_lines(metrics):
        click.echo(line)
    t = metrics["test_triples"]
    click.echo(f"  {t['unseen_entities']} of {t['total']} test triples involve an entity or relation unseen in training: "
               "excluded from 'known', counted as misses in 'all'")


@click.command()
@click.argument("head", required=False)
@click.argument("relation", required=False)
@click.option("-k", "--top", "k", default=10, show_default=True, help="How many tails.")
@click.option("--model", help="Model name or directory (default: the latest).")
@click.option("--batch", "batch_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A TSV of head<TAB>relation pairs (or - for standard input): predict for each.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def predict(head: str | None, relation: str | None, k: int, model: str | None, batch_file: Path | None, as_json: bool) -> None:
    """Known tails (in the graph) and predicted tails (KGE) for HEAD and RELATION.

    \b
    akg predict dog "has parent" -k 5
    akg predict --batch pairs.tsv --json
    """
    from kge import store
    from kge.predict import Predictor
    from kge.workflows import all_known, current_train_hash, known_tails, staleness

    if batch_file is None and (head is None or relation is None):
        raise click.UsageError("give HEAD and RELATION, or --batch FILE")
    settings = Settings.from_env()
    stored = store.resolve(model, store.models_root(settings.home))
    predictor = Predictor(stored)
    with connect(settings) as graph:
        _warn(staleness(stored, current_train_hash(graph)))
        if batch_file is None:
            pair = predictor.resolve_pair(head, relation)
            results = [predictor.predict(*pair, k=k, known=known_tails(graph, *pair))]
            pairs = [pair]
        else:
            pairs = _read_pairs(batch_file)
            pairs = [predictor.resolve_pair(h, r) for h, r in pairs]
            results = predictor.predict_batch(pairs, k, all_known(graph))
    if as_json:
        out = [{"head": h, "relation": r, "model": stored.name, "tails": [p.as_dict() for p in preds]}
               for (h, r), preds in zip(pairs, results)]
        echo_json(out[0] if batch_file is None else out)
        return
    for (h, r), preds in zip(pairs, results):
        click.echo(f"{h} —{r}→ (model {stored.name})")
        for i, p in enumerate(preds, 1):
            click.echo(f"  {i:2d}. {p.tail:40s} {p.score:9.4f}  {'known' if p.known else 'predicted'}")


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    text = sys.stdin.read() if str(path) == "-" else _read_text(path)
    pairs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\r").split("\t")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise InputError("expected head<TAB>relation", file=str(path), line=lineno)
        pairs.append((parts[0], parts[1]))
    if not pairs:
        raise InputError("no head/relation pairs", file=str(path))
    return pairs


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 ({e.reason})", file=str(path)) from None


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def models(as_json: bool) -> None:
    """Stored models: their metrics and the graph state they were trained on."""
    from kge import store
    from kge.workflows import staleness

    settings = Settings.from_env()
    found = store.list_models(store.models_root(settings.home))
    stale = {}
    if found:
        from kge.workflows import current_train_hash

        with connect(settings) as graph:
            current = current_train_hash(graph)  # one read for all the models
        stale = {m.name: staleness(m, current) is not None for m in found}
    rows = [{"name": m.name, "model": m.config["training"]["model"], "preset": m.config["training"].get("preset"),
             "created_at": m.config.get("created_at"), "train_seconds": m.config.get("train_seconds"),
             "mrr_known": (m.metrics or {}).get("known", {}).get("mrr"), "mrr_all": (m.metrics or {}).get("all", {}).get("mrr"),
             "train_sha256": m.trained_on.get("train_sha256"), "graph_version": m.trained_on.get("graph_version"),
             "stale": stale.get(m.name), "path": str(m.path)}
            for m in found]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"no models under {store.models_root(settings.home)}: run `akg train`")
    for r in rows:
        mrr = f"MRR known {r['mrr_known']:.4f} / all {r['mrr_all']:.4f}" if r["mrr_known"] is not None else "not evaluated"
        flag = "  STALE: the graph changed since" if r["stale"] else ""
        click.echo(f"{r['name']:40s} {r['model']:9s} {mrr}  trained in {r['train_seconds'] or 0:.1f} s  "
                   f"on graph version {str(r['graph_version'] or '(not recorded)')[:12]}{flag}")
