"""Check `--device cuda`: the lean loop and the evaluator on a GPU give what they give on the CPU.

Reads AKG_pruned.tsv and AKG_test.tsv from --data (no graph server needed), trains the fast preset
on each device with the same seed, evaluates each, and prints seconds and metrics side by side.

    python bench/kge_device_check.py --data DIR
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")


def main() -> None:
    import pandas as pd
    import torch

    from kge.data import map_test, training_factory
    from kge.evaluate import evaluate
    from kge.presets import preset
    from kge.train import train

    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    def load(name):
        df = pd.read_csv(a.data / name, sep="\t", dtype=str, keep_default_na=False)
        return sorted(set(zip(df["head"], df["relation"], df["tail"])))

    factory = training_factory(load("AKG_pruned.tsv"))
    test = map_test(load("AKG_test.tsv"), factory.entity_to_id, factory.relation_to_id)
    out = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    for device in ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]:
        config = preset("fast").with_overrides(device=device)
        result = train(config, factory)
        filt = torch.cat([factory.mapped_triples, test.mapped]).to(device)
        t0 = time.perf_counter()
        metrics = evaluate(result.model, test.mapped.to(device), filt, unknown=len(test.unknown))
        out[device] = {"train_s": round(result.seconds, 2), "eval_s": round(time.perf_counter() - t0, 3),
                       "mrr_known": round(metrics["known"]["mrr"], 4), "mrr_all": round(metrics["all"]["mrr"], 4),
                       "hits@10_known": round(metrics["known"]["hits@10"], 4)}
        print(json.dumps({device: out[device]}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
