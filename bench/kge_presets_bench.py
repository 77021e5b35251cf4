"""The `best` preset beside `fast` and `paper` (issue 16): one run, the same triples, as `akg train` trains.

The script starts an embedded server under a temporary AKG_HOME, ingests AKG_pruned.tsv and
AKG_test.tsv, and trains each preset through kge.workflows.train_from_graph (what `akg train
--preset NAME` runs), then reads its evaluation (what `akg evaluate` prints): filtered MRR and
Hits@10, both sides, realistic ties, on the known test triples (entities seen in training) and on
all of them (the others as misses), and the training seconds. Ratios are against `fast`, measured
in the same run. `--paper-epochs N` trains the paper config for N of its 1000 epochs and
extrapolates its time (its MRR is then the partial model's; the full run is the default).

    .venv/bin/python bench/kge_presets_bench.py [--akg-dir ../shared/AKG_dataset] [--presets best,fast,paper]
        [--paper-epochs N] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import warnings
from pathlib import Path

from common import default_akg_dir, emit, log
from scratch_server import scratch_graph

warnings.filterwarnings("ignore")


def run(graph, home: Path, a) -> dict:
    import torch

    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from kge.presets import preset
    from kge.store import models_root
    from kge.workflows import train_from_graph

    torch.set_num_threads(a.threads)
    ingest(graph, [read_file(a.akg_dir / "AKG_pruned.tsv"), read_file(a.akg_dir / "AKG_test.tsv")])
    out = {"environment": {"threads": a.threads, "cpus": os.cpu_count(), "torch": torch.__version__,
                           "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
           "presets": {}}
    for name in a.presets.split(","):
        config = preset(name)
        if name == "paper" and a.paper_epochs:
            config = config.with_overrides(epochs=a.paper_epochs)
        log(f"training {name} ({config.model}, {config.training_loop}, {config.epochs} epochs) ...")
        trained = train_from_graph(graph, config, models_root=models_root(home), name=name)
        m = trained.metrics
        row = {"model": config.model, "loop": config.training_loop, "epochs": config.epochs,
               "train_seconds": round(trained.train_seconds, 2),
               "mrr_known": round(m["known"]["mrr"], 4), "mrr_all": round(m["all"]["mrr"], 4),
               "hits@10_known": round(m["known"]["hits@10"], 4), "hits@10_all": round(m["all"]["hits@10"], 4),
               "test_triples": m["test_triples"], "per_relation": m["per_relation"]}
        if config.epochs != preset(name).epochs:
            row["extrapolated_train_seconds"] = round(trained.train_seconds * preset(name).epochs / config.epochs, 1)
        out["presets"][name] = row
        log(f"  {name}: {row['train_seconds']} s, MRR known {row['mrr_known']} / all {row['mrr_all']}")
    out["environment"]["load_average_at_end"] = os.getloadavg()
    fast = out["presets"].get("fast")
    if fast:
        for row in out["presets"].values():
            seconds = row.get("extrapolated_train_seconds", row["train_seconds"])
            row["time_vs_fast"] = round(seconds / fast["train_seconds"], 2)
            row["mrr_known_vs_fast"] = round(row["mrr_known"] - fast["mrr_known"], 4)
            row["mrr_all_vs_fast"] = round(row["mrr_all"] - fast["mrr_all"], 4)
    return out


def table(out: dict) -> str:
    lines = ["| preset | model, loop | epochs | training s | x fast | MRR known | MRR all | Hits@10 known | Δ MRR known vs fast |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in out["presets"].items():
        seconds = f"{r['train_seconds']:.1f}"
        if "extrapolated_train_seconds" in r:
            seconds += f" ({r['extrapolated_train_seconds']:.0f} for all epochs)"
        lines.append(f"| {name} | {r['model']}, {r['loop']} | {r['epochs']} | {seconds} | {r.get('time_vs_fast', '-')} | "
                     f"{r['mrr_known']:.4f} | {r['mrr_all']:.4f} | {r['hits@10_known']:.4f} | "
                     f"{r.get('mrr_known_vs_fast', 0):+.4f} |")
    lines.append(f"\nenvironment: {json.dumps(out['environment'])}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--akg-dir", type=Path, default=default_akg_dir())
    p.add_argument("--presets", default="best,fast,paper")
    p.add_argument("--paper-epochs", type=int, help="train the paper config this many epochs and extrapolate its time")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    with scratch_graph("akg-presets-bench-") as (graph, home, _state):
        out = run(graph, home, a)
    emit(out, as_json=a.json, json_out=a.json_out, table=table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
