"""Embeddings to take away and entities grounded in sound (issue 16, parts 2 and 3) on the full AKG.

The script starts an embedded server under a temporary AKG_HOME, ingests AKG_pruned.tsv and
AKG_test.tsv, and measures, in one run:

- export: the fast preset's RotatE (`akg train`, 30 epochs) written by `akg export-embeddings` in
  each format (seconds, bytes), re-imported by `akg models import` (seconds), and the imported
  model's scores of 2,000 training triples against the original's (largest difference);
- audio grounding's cost: text grounding (`--grounded text`) against text-and-audio grounding
  (`--grounded text,audio`, the same settings) for the same epochs, both with the text tower of a
  small random CLAP built here (tests/tiny_clap.py: no real CLAP can be downloaded), and audio
  clips synthesised for `--labels` entities (4 clips each). Training seconds and their ratio: what
  fusing a third modality costs per epoch. The MRRs are printed but mean nothing about audio
  grounding's quality (random CLAP, tones).

    .venv/bin/python bench/embeddings_bench.py --akg-dir ../shared/AKG_dataset [--epochs 10] [--repeat N]
        [--no-export] [--threads N] [--json-out F]

With --repeat N the two grounded models are trained N times each, alternating which goes first, and
the fastest run of each counts (the machine is shared: one slow run says little).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from scratch_server import scratch_graph

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

ENTITIES = ("dog", "rain", "car horn", "cat", "thunder", "siren", "baby crying", "footsteps", "clock tick", "church bells")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--akg-dir", type=Path, default=Path(os.environ.get("AKG_DATASET_DIR", "AKG_dataset")))
    p.add_argument("--epochs", type=int, default=10, help="epochs of the two grounded models")
    p.add_argument("--repeat", type=int, default=1,
                   help="train the two grounded models this many times, alternating; the fastest of each counts")
    p.add_argument("--no-export", action="store_true", help="skip the export part")
    p.add_argument("--threads", type=int, help="torch threads (1 keeps a shared machine's other jobs from "
                                                "oversubscribing the cores)")
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    work = Path(tempfile.mkdtemp(prefix="akg-embeddings-bench-"))
    from tiny_clap import build_tiny_clap

    clap = build_tiny_clap(work / "tiny-clap")
    with scratch_graph("akg-embeddings-bench-", env={"AKG_CLAP_MODEL": str(clap)}) as (graph, home, _state):
        out = run(graph, home, work, a)
    print(json.dumps(out, indent=2))
    if a.json_out:
        a.json_out.write_text(json.dumps(out, indent=2) + "\n")


def _clips(work: Path, names: list[str]) -> tuple[Path, Path, Path]:
    import numpy as np
    import soundfile as sf

    audio, rows, labels = work / "audio", [], []
    audio.mkdir()
    for i, entity in enumerate(names):
        label = entity.replace(" ", "_")
        labels.append(f"{label}\t{entity}")
        for j in range(4):
            t = np.arange(16_000) / 16_000
            wave = 0.5 * np.sin(2 * np.pi * (200 + 150 * i + 20 * j) * t)
            sf.write(audio / f"{label}-{j}.wav", wave.astype(np.float32), 16_000)
            rows.append({"filename": f"{label}-{j}.wav", "fold": 1, "target": i, "category": label})
    meta = work / "esc50.csv"
    with open(meta, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["filename", "fold", "target", "category"])
        w.writeheader()
        w.writerows(rows)
    (work / "labels.tsv").write_text("\n".join(labels) + "\n")
    return audio, meta, work / "labels.tsv"


def run(graph, home: Path, work: Path, a) -> dict:
    import torch

    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from kge import store
    from kge.presets import preset
    from kge.workflows import train_from_graph

    ingest(graph, [read_file(a.akg_dir / "AKG_pruned.tsv"), read_file(a.akg_dir / "AKG_test.tsv")])
    root = store.models_root(home)
    out = {"threads": torch.get_num_threads(), "export": {}, "grounding": {}}

    trained = train_from_graph(graph, preset("fast"), models_root=root, name="fast", evaluate_after=not a.no_export)
    stored = store.load(trained.path)
    if not a.no_export:
        _exports(stored, root, work, out)
    _grounding(graph, root, work, stored, a, out)
    return out


def _exports(stored, root: Path, work: Path, out: dict) -> None:
    import torch

    from kge import store
    from kge.export import export, import_set

    model = stored.load_model()
    ids = torch.randint(0, len(stored.entity_to_id), (2000, 3), generator=torch.Generator().manual_seed(0))
    ids[:, 1] = ids[:, 1] % len(stored.relation_to_id)
    with torch.no_grad():
        reference = model.score_hrt(ids)
    for fmt in ("npy", "parquet", "tsv"):
        started = time.perf_counter()
        done = export(stored, work / f"export-{fmt}", fmt, model=model)
        seconds = time.perf_counter() - started
        size = sum((done.path / f).stat().st_size for f in done.meta["files"])
        started = time.perf_counter()
        path = import_set(done.path, root, name=f"imported-{fmt}")
        imported_seconds = time.perf_counter() - started
        with torch.no_grad():
            diff = float((store.load(path).load_model().score_hrt(ids) - reference).abs().max())
        out["export"][fmt] = {"export_seconds": round(seconds, 3), "bytes": size,
                              "import_seconds": round(imported_seconds, 3), "max_score_difference": diff}
        print(f"export {fmt:8s} {seconds:6.2f} s, {size / 2**20:6.1f} MiB; import {imported_seconds:5.2f} s; "
              f"largest score difference over 2,000 triples {diff:.2e}", flush=True)


def _grounding(graph, root: Path, work: Path, stored, a, out: dict) -> None:
    from akg.config import Settings
    from kge.presets import configure
    from kge.workflows import train_from_graph
    from reasoning.audio_grounding import train_audio_grounded

    names = [n for n in ENTITIES if n in stored.entity_to_id]
    audio, meta, labels = _clips(work, names)
    settings = Settings.from_env()
    for run in range(a.repeat):
        for grounded in ("text", "text,audio") if run % 2 == 0 else ("text,audio", "text"):
            config = configure(grounded=grounded, grounding={"encoder": "clap"}, epochs=a.epochs)
            name = f"g-{grounded.replace(',', '-')}-{run}"
            if grounded == "text":
                t = train_from_graph(graph, config, models_root=root, name=name, evaluate_after=False)
            else:
                t = train_audio_grounded(graph, settings, config, audio_dir=audio, meta=meta, dataset=str(labels),
                                         models_root=root, name=name, evaluate_after=False)
            best = out["grounding"].setdefault(grounded, {"epochs": a.epochs, "train_seconds": [],
                                                          "entities_with_audio": len(names) if "audio" in grounded else 0})
            best["train_seconds"].append(round(t.train_seconds, 2))
            print(f"--grounded {grounded:10s} {a.epochs} epochs: trained in {t.train_seconds:.1f} s", flush=True)
    g = out["grounding"]
    g["ratio_audio_to_text"] = round(min(g["text,audio"]["train_seconds"]) / min(g["text"]["train_seconds"]), 2)
    print(f"text,audio / text training time (fastest of {a.repeat} each): {g['ratio_audio_to_text']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
