"""Per-clip cost of knowledge refinement (issue 4), three ways, same run, same small CLAP model:

1. audio encoding itself (decode + resample + the model's audio tower), per clip;
2. refinement with the cached prompt bank (what `akg classify` does): base scores, top-k, fusion;
3. a naive refinement that encodes the top-k labels' enriched prompts for every clip (as public
   reproductions do), then fuses.

The model is the small real ClapModel of the tests (tests/tiny_clap.py); the prompts are the real
ones: ESC-50 labels enriched from the AKG (pruned + test ingested into a fresh embedded server) and
a RotatE trained on it. Targets: (2) under 1 ms per clip, and (3) / (2) at least 100x.

    .venv/bin/python bench/reasoning_bench.py --akg-dir ../shared/AKG_dataset --label-sets ../shared/label_sets
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

from scratch_server import scratch_graph

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--akg-dir", type=Path, required=True)
    p.add_argument("--label-sets", type=Path, required=True)
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()

    with scratch_graph("akg-reasoning-bench-", env={"AKG_LABEL_SETS_DIR": str(a.label_sets)}) as (graph, home, _state):
        out = run(graph, a, home)
    print(json.dumps(out, indent=2))
    if a.json_out:
        a.json_out.write_text(json.dumps(out, indent=2) + "\n")


def run(graph, a, home: Path) -> dict:
    import numpy as np
    import soundfile as sf

    from akg.config import Settings
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from kge.presets import preset
    from kge.store import models_root
    from kge.workflows import train_from_graph
    from akg.encoders import EncoderSpec, load_encoder
    from reasoning.fusion import FusionSettings, weighted_lme
    from reasoning.prompts import EnrichSettings
    from reasoning.refine import Refiner, embed_clips
    from reasoning.workflows import open_session
    from tiny_clap import build_tiny_clap

    ingest(graph, [read_file(a.akg_dir / "AKG_pruned.tsv"), read_file(a.akg_dir / "AKG_test.tsv")])
    settings = Settings.from_env()
    train_from_graph(graph, preset("fast").with_overrides(epochs=5), models_root=models_root(settings.home),
                     name="bench", evaluate_after=False)
    clap = build_tiny_clap(home / "tiny-clap")
    spec = EncoderSpec(model=str(clap))
    encoder = load_encoder(spec)
    session = open_session(graph, settings, labels="esc50", encoder_spec=spec, enrich=EnrichSettings(), encoder=encoder)
    bank = session.bank
    fusion = FusionSettings()
    refiner = Refiner(bank, fusion, a.top_k)

    rng = np.random.default_rng(0)
    paths = []
    for i in range(a.clips):
        t = np.arange(5 * 44100) / 44100
        wave = 0.2 * np.sin(2 * np.pi * (150 + 37 * i) * t) + 0.05 * rng.standard_normal(len(t))
        paths.append(home / f"clip{i}.wav")
        sf.write(paths[-1], wave, 44100)

    # 1. audio encoding (no cache): decode, resample, embed
    t0 = time.perf_counter()
    outcomes = embed_clips(encoder, paths, None, max_seconds=60)
    audio_ms = 1000 * (time.perf_counter() - t0) / len(paths)
    embs = [o.embedding for o in outcomes]

    # 2. refinement with the cached bank
    for e in embs[:5]:
        refiner.refine(e)
    times = []
    for _ in range(5):
        for e in embs:
            t0 = time.perf_counter()
            refiner.refine(e)
            times.append(time.perf_counter() - t0)
    refine_ms = 1000 * statistics.mean(times)
    refine_p99 = 1000 * sorted(times)[int(0.99 * len(times))]

    # 3. naive: encode the top-k labels' enriched prompts for every clip, then fuse
    naive = []
    for e in embs[:10]:
        t0 = time.perf_counter()
        base = encoder.embed_text(bank.base_prompts) @ e
        top = np.argsort(-base)[: a.top_k]
        for label in top:
            sl = bank.of(label)
            texts = bank.prompts[sl]
            if texts:
                scores = encoder.embed_text(texts) @ e
                weighted_lme(np.concatenate([[base[label]], scores]), np.ones(len(texts) + 1), fusion.temperature)
        naive.append(time.perf_counter() - t0)
    naive_ms = 1000 * statistics.mean(naive)
    return {
        "clips": len(paths), "labels": len(bank.label_texts), "enriched_prompts": len(bank.prompts),
        "top_k": a.top_k, "prompts_in_top_k_mean": round(float(np.mean([bank.of(l).stop - bank.of(l).start
                                                                          for l in range(len(bank.label_texts))]) * a.top_k), 1),
        "audio_encoding_ms_per_clip": round(audio_ms, 2),
        "refinement_ms_per_clip": {"mean": round(refine_ms, 4), "p99": round(refine_p99, 4)},
        "naive_refinement_ms_per_clip": round(naive_ms, 1),
        "naive_over_cached": round(naive_ms / refine_ms, 1),
        "audio_over_refinement": round(audio_ms / refine_ms, 1),
    }


if __name__ == "__main__":
    main()
