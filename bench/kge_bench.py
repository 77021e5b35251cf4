"""KGE benchmarks (issue 3), each against PyKEEN in the same run on the same triples.

1. evaluation: one trained RotatE on AKG_test, our evaluator vs PyKEEN's RankBasedEvaluator:
   seconds of each, the ratio, and the largest metric difference (must be < 1e-6);
2. training: time for the default (fast) preset to reach filtered MRR 0.55 on the known test
   triples (evaluated after each epoch from --eval-from on, evaluation time excluded), against the
   paper config's training time, extrapolated from --paper-epochs epochs measured here;
3. prediction with a warm model: p50/p99 of single `akg predict`-style queries (model only, and
   with the graph lookup of known tails), and all AKG labels x all relations in one batch.

Triples come from the graph, as in `akg train`: the script starts an embedded server under a
temporary AKG_HOME and ingests AKG_pruned.tsv and AKG_test.tsv into it.

    .venv/bin/python bench/kge_bench.py --akg-dir ../shared/AKG_dataset [--paper-epochs 10] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

from scratch_server import scratch_graph

warnings.filterwarnings("ignore")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--akg-dir", type=Path, default=Path(os.environ.get("AKG_DATASET_DIR", "AKG_dataset")))
    p.add_argument("--paper-epochs", type=int, default=10)
    p.add_argument("--eval-from", type=int, default=15)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()

    with scratch_graph("akg-kge-bench-") as (graph, _home, _state):
        out = run(graph, a)
    print(json.dumps(out, indent=2))
    if a.json_out:
        a.json_out.write_text(json.dumps(out, indent=2) + "\n")


def run(graph, a) -> dict:
    import torch
    from pykeen.evaluation import RankBasedEvaluator

    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from kge.data import from_graph, map_test, training_factory
    from kge.evaluate import evaluate
    from kge.predict import Predictor
    from kge.presets import preset
    from kge.store import load, save
    from kge.train import train
    from kge.workflows import all_known, known_tails

    ingest(graph, [read_file(a.akg_dir / "AKG_pruned.tsv"), read_file(a.akg_dir / "AKG_test.tsv")])
    data = from_graph(graph)
    factory = training_factory(data.train.triples)
    test = map_test(data.test.triples, factory.entity_to_id, factory.relation_to_id)
    filt = torch.cat([factory.mapped_triples, test.mapped])
    out = {"threads": torch.get_num_threads(), "train_triples": len(data.train.triples),
           "test_triples": {"all": test.total, "known": len(test.known)}}

    # 2. training: the fast preset, evaluated after every epoch from --eval-from on
    fast = preset("fast")
    state = {"train": 0.0, "mark": time.perf_counter(), "reached": None, "curve": []}

    def on_epoch(epoch, loss, model):
        state["train"] += time.perf_counter() - state["mark"]
        if epoch >= a.eval_from:
            mrr = evaluate(model, test.mapped, filt)["known"]["mrr"]
            state["curve"].append((epoch, round(state["train"], 2), round(mrr, 4)))
            if state["reached"] is None and mrr >= 0.55:
                state["reached"] = (epoch, state["train"])
            model.train()
        state["mark"] = time.perf_counter()

    result = train(fast, factory, on_epoch=on_epoch)
    out["fast"] = {"epochs": fast.epochs, "train_seconds": round(result.seconds, 2),
                   "reached_0.55": {"epoch": state["reached"][0], "train_seconds": round(state["reached"][1], 2)} if state["reached"] else None,
                   "curve": state["curve"]}
    model = result.model

    paper = preset("paper").with_overrides(epochs=a.paper_epochs)
    paper_run = train(paper, factory)
    per_epoch = paper_run.seconds / a.paper_epochs
    out["paper"] = {"epochs_measured": a.paper_epochs, "seconds_measured": round(paper_run.seconds, 2),
                    "seconds_per_epoch": round(per_epoch, 3), "extrapolated_1000_epochs_s": round(per_epoch * 1000, 1),
                    "reference_mrr_after_1000_epochs": 0.5576}
    if state["reached"]:
        out["training_speedup_to_0.55"] = round(per_epoch * 1000 / state["reached"][1], 1)

    # 1. evaluation: ours vs PyKEEN's on the same model and triples
    t0 = time.perf_counter()
    ours = evaluate(model, test.mapped, filt, unknown=len(test.unknown))
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = RankBasedEvaluator().evaluate(model, test.mapped, additional_filter_triples=[factory.mapped_triples],
                                           use_tqdm=False, batch_size=512)
    t_theirs = time.perf_counter() - t0
    diffs = {"mrr": abs(ours["known"]["mrr"] - theirs.get_metric("both.realistic.inverse_harmonic_mean_rank"))}
    for k in (1, 3, 5, 10):
        diffs[f"hits@{k}"] = abs(ours["known"][f"hits@{k}"] - theirs.get_metric(f"both.realistic.hits_at_{k}"))
    out["evaluation"] = {"ours_s": round(t_ours, 3), "pykeen_s": round(t_theirs, 2), "speedup": round(t_theirs / t_ours, 1),
                         "max_metric_difference": max(diffs.values()), "metrics_known": ours["known"], "metrics_all": ours["all"]}

    # 3. prediction with a warm model
    root = Path(os.environ["AKG_HOME"]) / "models"
    path = save(model, fast, factory.entity_to_id, factory.relation_to_id, root=root, name="bench")
    predictor = Predictor(load(path))
    heads = sorted({h for h, _, _ in data.train.triples})
    rels = sorted(factory.relation_to_id)
    import random

    rng = random.Random(0)
    queries = [(rng.choice(heads), rng.choice(rels)) for _ in range(a.queries)]
    for q in queries[:20]:
        predictor.predict(*q, k=10)  # warm-up
    model_only, with_graph, preloaded = [], [], []
    t0 = time.perf_counter()
    known_map = all_known(graph)  # what a long-running service (the explorer) loads once
    t_preload = time.perf_counter() - t0
    for h, r in queries:
        t0 = time.perf_counter()
        predictor.predict(h, r, k=10, known=known_map.get((h, r), ()))
        preloaded.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        predictor.predict(h, r, k=10)
        model_only.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        predictor.predict(h, r, k=10, known=known_tails(graph, h, r))
        with_graph.append(time.perf_counter() - t0)

    def pct(xs, q):
        xs = sorted(xs)
        return round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 3)

    labels = sorted({line.split("\t")[1] for line in (a.akg_dir / "AKG_raw.tsv").read_text(encoding="utf-8").splitlines()[1:]})
    covered = [l for l in labels if l in factory.entity_to_id]
    pairs = [(l, r) for l in covered for r in rels]
    t0 = time.perf_counter()
    known = all_known(graph)
    t_known = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = predictor.predict_batch(pairs, 10, known)
    t_batch = time.perf_counter() - t0
    assert len(results) == len(pairs)
    out["prediction"] = {
        "single_model_only_ms": {"p50": pct(model_only, 0.5), "p99": pct(model_only, 0.99)},
        "single_with_graph_lookup_ms": {"p50": pct(with_graph, 0.5), "p99": pct(with_graph, 0.99)},
        "single_with_preloaded_known_ms": {"p50": pct(preloaded, 0.5), "p99": pct(preloaded, 0.99),
                                           "preload_s": round(t_preload, 3)},
        "queries": len(queries),
        "batch": {"labels": len(labels), "labels_in_model": len(covered), "relations": len(rels), "pairs": len(pairs),
                  "known_tails_query_s": round(t_known, 3), "predict_s": round(t_batch, 3),
                  "total_s": round(t_known + t_batch, 3)},
    }
    return out


if __name__ == "__main__":
    sys.exit(main())
