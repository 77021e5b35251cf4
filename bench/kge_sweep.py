"""Search for the fast KGE preset: train configurations side by side and record MRR against time.

Each configuration runs in its own process limited to 2 threads (the size of the target machine),
on the AKG pruned/test files; every `--every` epochs the model is evaluated (filtered MRR on the test
triples whose entities occur in training, the paper's metric) and a JSON line is printed with the
training seconds so far (evaluation time excluded). A run stops when it reaches `--target` MRR,
its epoch limit, or its time budget.

    python bench/kge_sweep.py --data DIR --configs configs.json --parallel 8 > sweep.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run_one(spec: dict, data: Path, every: int, target: float, budget: float) -> None:
    import pandas as pd
    import torch

    torch.set_num_threads(2)
    from kge.data import map_test, training_factory
    from kge.evaluate import evaluate
    from kge.presets import TrainConfig
    from common import train_watched

    def load(name):
        df = pd.read_csv(data / name, sep="\t", dtype=str, keep_default_na=False)
        return sorted(set(zip(df["head"], df["relation"], df["tail"])))

    config = TrainConfig(**{k: v for k, v in spec.items() if k not in ("name", "every")})
    factory = training_factory(load("AKG_pruned.tsv"), inverse=config.inverse_triples)
    test = map_test(load("AKG_test.tsv"), factory.entity_to_id, factory.relation_to_id)
    filt = torch.cat([factory.mapped_triples[:, :3], test.mapped])
    def after_epoch(epoch, loss, model, seconds):
        if epoch % every == 0 or epoch == config.epochs:
            m = evaluate(model, test.mapped, filt)["known"]
            print(json.dumps({"name": spec["name"], "epoch": epoch, "train_seconds": round(seconds, 2),
                              "loss": loss, "mrr": round(m["mrr"], 4), "hits@10": round(m["hits@10"], 4)}), flush=True)
            return m["mrr"] >= target or seconds > budget
        return False

    train_watched(config, factory, after_epoch)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--configs", type=Path)
    p.add_argument("--one")
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--target", type=float, default=0.56)
    p.add_argument("--budget", type=float, default=400.0, help="training seconds per configuration")
    p.add_argument("--parallel", type=int, default=1)
    a = p.parse_args()
    if a.one:
        run_one(json.loads(a.one), a.data, a.every, a.target, a.budget)
        return
    specs = json.loads(a.configs.read_text())
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", PYTHONWARNINGS="ignore")
    pending, running = list(specs), []
    while pending or running:
        while pending and len(running) < a.parallel:
            spec = pending.pop(0)
            cmd = [sys.executable, __file__, "--data", str(a.data), "--one", json.dumps(spec), "--every",
                   str(spec.get("every", a.every)), "--target", str(a.target), "--budget", str(a.budget)]
            running.append(subprocess.Popen(cmd, env=env, stdout=sys.stdout, stderr=sys.stderr))
        running = [r for r in running if r.poll() is None]
        time.sleep(0.5)


if __name__ == "__main__":
    main()
