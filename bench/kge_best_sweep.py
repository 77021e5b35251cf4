"""The search behind the `best` preset (issue 16): 1-vs-all training regimes side by side, seeded.

Every configuration of the grid below (or those named by --only) trains on the AKG's training
triples less a validation split (--valid triples drawn with --seed from the training triples whose
entities and relation stay in training), one after the other in this process, with --threads torch
threads. After every epoch it is evaluated on the validation split and on the test split: filtered
MRR on the known test triples (their entities seen in training; the paper's metric) and on all of
them (the others count as misses), and Hits@10, both sides, realistic ties. Training seconds
exclude evaluation. A run stops early when its validation MRR has not improved for --patience
epochs, or when its training time passes --budget; its result is the epoch of best *validation*
MRR (the test split chooses nothing). The `best` preset is the configuration with the highest
validation MRR; its training time is set against the `fast` preset's, measured in one run, by
bench/kge_presets_bench.py (on a shared machine seconds alone say little).

Writes the curves (one row per configuration and epoch) to --csv, their plot to --plot, and the
table (and the choice) to standard output; --json-out keeps everything.

    .venv/bin/python bench/kge_best_sweep.py [--akg-dir ../shared/AKG_dataset] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
from pathlib import Path

from common import REPO, default_akg_dir, log, train_watched

# name -> settings over kge.presets.TrainConfig's defaults. 1vsall with cross-entropy throughout
# (the regime under test), at most 10 epochs each; the grid varies the backbone, reciprocal relations,
# N3, label smoothing and the dimension one at a time around ComplEx d128 + reciprocal + N3. The
# `fast` preset is the anchor, measured beside `best` and `paper` by bench/kge_presets_bench.py.
SMALL_INIT = {"entity_initializer": "xavier_normal", "relation_initializer": "xavier_normal"}
BASE = {"training_loop": "1vsall", "batch_size": 1024, "epochs": 10, "learning_rate": 0.01, "seed": 42,
        "model_kwargs": SMALL_INIT}
N3 = {"regularizer": "n3", "regularizer_weight": 0.01}
GRID: dict[str, dict] = {
    "ComplEx d64 recip n3": {"model": "ComplEx", "embedding_dim": 64, "inverse_triples": True, **N3},
    "ComplEx d128 recip n3": {"model": "ComplEx", "embedding_dim": 128, "inverse_triples": True, **N3},
    "ComplEx d128 recip": {"model": "ComplEx", "embedding_dim": 128, "inverse_triples": True, "regularizer": "none"},
    "ComplEx d128 n3": {"model": "ComplEx", "embedding_dim": 128, **N3},
    "ComplEx d128 recip n3 ls0.1": {"model": "ComplEx", "embedding_dim": 128, "inverse_triples": True,
                                    "label_smoothing": 0.1, **N3},
    "DistMult d128 recip n3": {"model": "DistMult", "embedding_dim": 128, "inverse_triples": True, **N3},
    "RotatE d128 1vsall recip n3": {"model": "RotatE", "embedding_dim": 128, "inverse_triples": True,
                                    "model_kwargs": {}, **N3},
    "TuckER d64 recip": {"model": "TuckER", "embedding_dim": 64, "inverse_triples": True, "model_kwargs": {},
                         "regularizer": "none"},
    # the second round, around the first round's best (label smoothing was still rising at its 10-epoch cap)
    "ComplEx d128 recip n3 ls0.1 e20": {"model": "ComplEx", "embedding_dim": 128, "inverse_triples": True,
                                        "label_smoothing": 0.1, "epochs": 20, **N3},
    "ComplEx d256 recip n3 ls0.1 e20": {"model": "ComplEx", "embedding_dim": 256, "inverse_triples": True,
                                        "label_smoothing": 0.1, "epochs": 20, **N3},
}


def load(path: Path) -> list[tuple[str, str, str]]:
    import pandas as pd

    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return sorted(set(zip(df["head"], df["relation"], df["tail"])))


def split_valid(train: list, n: int, seed: int) -> tuple[list, list]:
    """n training triples held out (seeded), each leaving its head, tail and relation in training."""
    rng = random.Random(seed)
    order = list(range(len(train)))
    rng.shuffle(order)
    count: dict[str, int] = {}
    for h, r, t in train:
        for key in (("e", h), ("e", t), ("r", r)):
            count[key] = count.get(key, 0) + 1
    held = set()
    for i in order:
        if len(held) == n:
            break
        h, r, t = train[i]
        keys = [("e", h), ("e", t), ("r", r)] if h != t else [("e", h), ("r", r)]
        if all(count[k] > 1 for k in keys):
            held.add(i)
            for k in keys:
                count[k] -= 1
    return [x for i, x in enumerate(train) if i not in held], [train[i] for i in sorted(held)]


def run_config(name: str, spec: dict, data: dict, a) -> dict:
    import torch

    from kge.data import map_test, training_factory
    from kge.evaluate import evaluate
    from kge.presets import TrainConfig

    settings = {**BASE, **spec} if spec.get("training_loop", "1vsall") == "1vsall" else {"seed": BASE["seed"], **spec}
    config = TrainConfig(**settings, preset=name)
    factory = training_factory(data["fit"], inverse=config.inverse_triples)
    e2i, r2i = factory.entity_to_id, factory.relation_to_id
    valid = map_test(data["valid"], e2i, r2i)
    test = map_test(data["test"], e2i, r2i)
    full = map_test(data["train"], e2i, r2i).mapped
    filt = torch.cat([full, test.mapped])
    state = {"best": None, "curve": [], "since": 0}

    def after_epoch(epoch, loss, model, seconds):
        v = evaluate(model, valid.mapped, filt)["known"]
        t = evaluate(model, test.mapped, filt, unknown=len(test.unknown))
        row = {"config": name, "epoch": epoch, "train_seconds": round(seconds, 2), "loss": round(loss, 5),
               "valid_mrr": round(v["mrr"], 4), "mrr_known": round(t["known"]["mrr"], 4),
               "mrr_all": round(t["all"]["mrr"], 4), "hits@10_known": round(t["known"]["hits@10"], 4)}
        state["curve"].append(row)
        log(f"  {name} epoch {epoch}: {row['train_seconds']} s valid {row['valid_mrr']} test known {row['mrr_known']}")
        if state["best"] is None or row["valid_mrr"] > state["best"]["valid_mrr"]:
            state["best"], state["since"] = row, 0
        else:
            state["since"] += 1
        return state["since"] >= a.patience or seconds > a.budget

    train_watched(config, factory, after_epoch)
    return {"config": name, "settings": settings, "best": state["best"], "curve": state["curve"]}


def table(results: list[dict], chosen: str | None) -> str:
    lines = ["| config | epochs run | best epoch | training s to it | valid MRR | MRR known | MRR all | Hits@10 known |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        b = r["best"]
        mark = "**" if r["config"] == chosen else ""
        lines.append(f"| {mark}{r['config']}{mark} | {r['curve'][-1]['epoch']} | {b['epoch']} | {b['train_seconds']:.1f} | {b['valid_mrr']:.4f} | "
                     f"{b['mrr_known']:.4f} | {b['mrr_all']:.4f} | {b['hits@10_known']:.4f} |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=100, sharey=True)
    for ax, x, label in ((axes[0], "epoch", "epoch"), (axes[1], "train_seconds", "training seconds (shared machine)")):
        for r in results:
            ax.plot([c[x] for c in r["curve"]], [c["mrr_known"] for c in r["curve"]], marker=".", label=r["config"])
        ax.axhline(0.62, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[1].axvline(60, color="grey", linestyle=":", linewidth=0.8)
    axes[0].set_ylabel("filtered MRR, known test triples")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def choose(results: list[dict]) -> str:
    """The configuration with the highest validation MRR (its training time is judged against the
    fast preset's in the same run by bench/kge_presets_bench.py: this machine's seconds vary)."""
    return max(results, key=lambda r: r["best"]["valid_mrr"])["config"]


def write(results: list[dict], env: dict, a) -> str | None:
    """The curves (CSV), their plot and the JSON so far; the chosen configuration's name."""
    chosen = choose(results)
    a.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(a.csv, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0]["curve"][0]))
        w.writeheader()
        for r in results:
            w.writerows(r["curve"])
    plot(results, a.plot)
    if a.json_out:
        a.json_out.write_text(json.dumps({"environment": env, "results": results, "chosen": chosen}, indent=2) + "\n")
    return chosen


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--akg-dir", type=Path, default=default_akg_dir())
    p.add_argument("--only", help="comma-separated configuration names (default: the whole grid)")
    p.add_argument("--valid", type=int, default=1000)
    p.add_argument("--seed", type=int, default=42, help="of the validation split")
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--budget", type=float, default=90.0, help="training seconds per configuration")
    p.add_argument("--table-from", type=Path, help="print the table of a saved --json-out file and stop")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--csv", type=Path, default=REPO / "bench" / "out" / "kge_best_sweep.csv")
    p.add_argument("--plot", type=Path, default=REPO / "bench" / "out" / "kge_best_sweep.png")
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    if a.table_from:
        saved = json.loads(a.table_from.read_text())
        print(table(saved["results"], choose(saved["results"])))
        print(json.dumps({"environment": saved["environment"]}))
        return 0
    import torch

    torch.set_num_threads(a.threads)
    names = a.only.split(",") if a.only else list(GRID)
    unknown = [n for n in names if n not in GRID]
    if unknown:
        print(f"unknown configuration(s): {', '.join(unknown)}; the grid: {', '.join(GRID)}", file=sys.stderr)
        return 2
    train = load(a.akg_dir / "AKG_pruned.tsv")
    fit, valid = split_valid(train, a.valid, a.seed)
    data = {"train": train, "fit": fit, "valid": valid, "test": load(a.akg_dir / "AKG_test.tsv")}
    env = {"python": platform.python_version(), "torch": torch.__version__, "threads": a.threads,
           "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "machine": platform.machine()}
    log(f"{len(train)} training triples: {len(fit)} fit, {len(valid)} validation; {len(data['test'])} test; {env}")
    results = []
    for name in names:
        log(f"{name} ...")
        results.append(run_config(name, GRID[name], data, a))
        write(results, env, a)  # after each configuration: a cut-short sweep still leaves its table
        log(table(results, None))
    env["load_average_at_end"] = os.getloadavg()
    chosen = write(results, env, a)
    print(table(results, chosen))
    print(f"\nchosen (highest validation MRR): {chosen}")
    print(json.dumps({"environment": env}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
