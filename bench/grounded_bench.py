"""Grounded KGE (issue 7) against plain RotatE: same run, same triples, same test split.

The script starts an embedded server under a temporary AKG_HOME, ingests AKG_pruned.tsv and
AKG_test.tsv (18,348 training triples; 2,039 test triples, 268 of which involve one of 266
entities that training never saw), and trains, as `akg train` does (kge.workflows.train_from_graph):

- plain RotatE, the fast preset (the default `akg train`, 30 epochs), and again for as many epochs
  as the grounded preset (the same comparison at equal training length);
- grounded RotatE, the grounded preset (`akg train --grounded text`), once per fusion mode asked for.

Each is evaluated as `akg evaluate` does: filtered, both sides, realistic ties, on all 2,039 test
triples. A grounded model's candidates are every training entity plus the 266 new ones (from their
names' features); plain RotatE can only miss the 268 new-entity triples. Printed per model: MRR and
Hits@1/10 on `known` (1,771), `new` (268) and `all` (2,039), the difference to plain RotatE, and
training seconds (the text features are computed once, then read from the feature cache; their
time is reported separately).

    .venv/bin/python bench/grounded_bench.py --akg-dir ../shared/AKG_dataset [--fusions average,concat,weighted]
        [--encoder minilm] [--epochs N] [--modality-dropout R] [--json-out F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

from scratch_server import scratch_graph

warnings.filterwarnings("ignore")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--akg-dir", type=Path, default=Path(os.environ.get("AKG_DATASET_DIR", "AKG_dataset")))
    p.add_argument("--fusions", default="average", help="comma-separated: average, concat, weighted")
    p.add_argument("--encoder", default="minilm", help="auto, minilm or clap")
    p.add_argument("--epochs", type=int, help="override the grounded preset's epochs")
    p.add_argument("--modality-dropout", type=float, help="override the grounded preset's modality dropout")
    p.add_argument("--projection", help="linear or mlp (default: the preset's)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-equal-epochs", action="store_true",
                   help="skip plain RotatE trained for as many epochs as the grounded preset")
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    with scratch_graph("akg-grounded-bench-") as (graph, home, _state):
        out = run(graph, home, a)
    print(json.dumps(out, indent=2))
    if a.json_out:
        a.json_out.write_text(json.dumps(out, indent=2) + "\n")


def _row(metrics: dict) -> dict:
    return {part: {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics[part].items()}
            for part in ("known", "new", "all")}


def run(graph, home: Path, a) -> dict:
    import torch

    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from kge import store
    from kge.features import default_cache_dir
    from kge.presets import preset
    from kge.workflows import train_from_graph

    ingest(graph, [read_file(a.akg_dir / "AKG_pruned.tsv"), read_file(a.akg_dir / "AKG_test.tsv")])
    root = store.models_root(home)
    out = {"threads": torch.get_num_threads(), "models": {}}

    plain = preset("fast").with_overrides(seed=a.seed)
    started = time.perf_counter()
    trained = train_from_graph(graph, plain, models_root=root, name="plain-rotate")
    out["models"]["plain"] = {"preset": "fast", "train_seconds": round(trained.train_seconds, 2),
                              "wall_seconds": round(time.perf_counter() - started, 2), "metrics": _row(trained.metrics)}
    out["test_triples"] = trained.metrics["test_triples"]
    _print("plain RotatE (fast)", out["models"]["plain"], None)

    base = preset("grounded").with_overrides(seed=a.seed, epochs=a.epochs)
    if not a.no_equal_epochs and base.epochs != plain.epochs:
        # the same comparison at equal training length: plain RotatE also gains from more epochs
        longer = plain.with_overrides(epochs=base.epochs)
        started = time.perf_counter()
        trained = train_from_graph(graph, longer, models_root=root, name=f"plain-rotate-{base.epochs}")
        out["models"][f"plain-{base.epochs}"] = {
            "preset": f"fast, {base.epochs} epochs", "train_seconds": round(trained.train_seconds, 2),
            "wall_seconds": round(time.perf_counter() - started, 2), "metrics": _row(trained.metrics)}
        _print(f"plain RotatE (fast, {base.epochs} epochs)", out["models"][f"plain-{base.epochs}"], None)
    for fusion in [f.strip() for f in a.fusions.split(",") if f.strip()]:
        grounding = {**base.grounding, "encoder": a.encoder, "fusion": fusion}
        if a.modality_dropout is not None:
            grounding["modality_dropout"] = a.modality_dropout
        if a.projection:
            grounding["projection"] = a.projection
        config = dataclasses.replace(base, grounding=grounding)
        cached = any(default_cache_dir(home).glob("*.safetensors")) if default_cache_dir(home).is_dir() else False
        started = time.perf_counter()
        trained = train_from_graph(graph, config, models_root=root, name=f"grounded-{fusion}")
        wall = time.perf_counter() - started
        plain_m = out["models"]["plain"]["metrics"]
        row = {"preset": "grounded", "grounding": trained.config.grounding, "epochs": config.epochs,
               "train_seconds": round(trained.train_seconds, 2), "wall_seconds": round(wall, 2),
               "features_were_cached": cached, "metrics": _row(trained.metrics),
               "delta_vs_plain": {part: round(trained.metrics[part]["mrr"] - plain_m[part]["mrr"], 4)
                                  for part in ("known", "new", "all")}}
        equal = out["models"].get(f"plain-{config.epochs}")
        if equal:
            row["delta_vs_plain_equal_epochs"] = {part: round(trained.metrics[part]["mrr"] - equal["metrics"][part]["mrr"], 4)
                                                  for part in ("known", "new", "all")}
        out["models"][f"grounded-{fusion}"] = row
        _print(f"grounded RotatE ({fusion})", row, plain_m)
        if equal:
            _print(f"  the same against plain RotatE at {config.epochs} epochs", row, equal["metrics"])
    return out


def _print(title: str, row: dict, plain: dict | None) -> None:
    m = row["metrics"]
    line = (f"{title}: trained in {row['train_seconds']} s (wall {row['wall_seconds']} s); MRR known {m['known']['mrr']:.4f}"
            f" / new {m['new']['mrr']:.4f} / all {m['all']['mrr']:.4f}; Hits@10 known {m['known']['hits@10']:.4f}"
            f" / new {m['new']['hits@10']:.4f} / all {m['all']['hits@10']:.4f}")
    if plain:
        line += (f"; vs plain: known {m['known']['mrr'] - plain['known']['mrr']:+.4f}, "
                 f"all {m['all']['mrr'] - plain['all']['mrr']:+.4f}")
    print(line, flush=True)


if __name__ == "__main__":
    main()
