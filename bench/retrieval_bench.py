"""Collection retrieval (issue 15), every figure against a baseline measured in the same run:

1. Indexing throughput (clips/s) of `akg index`'s library path: one process, 2 local worker
   processes, Ray with 2 actors (a local runtime). Each run starts cold (fresh AKG_HOME: no audio
   cache) and includes its workers' start-up and model loading, as a user's run would. Their
   vectors must be identical (checked).
2. Search latency p50/p99 with enrichment (`search_text`: linking, variants, one batched FAISS
   search, rescoring and explanations) at 10k vectors (exact index) and at 1M (IVF, as the store
   builds it above 100k), against brute-force numpy top-k of the same query over the same vectors;
   plain FAISS search of the query alone too, and IVF's recall@10 against brute force.
3. The cost of enrichment per query with its caches warm: `Enricher.expand` of a query seen before
   (one look-up), and of a new text whose entities' facts are cached (linking against every entity
   name, variants, and the small CLAP's embedding of the variant texts that are new).

The model is the tests' small real CLAP (tests/tiny_clap.py) with real CLAP's 512-dimension
embeddings, so audio encoding is far cheaper than a real model's: the indexing ratios show the
parallel machinery's overhead and scaling, not a real model's throughput. The clips are synthesised
(10 s tones and noise); the large collections' vectors are random unit vectors; the graph is the
real AKG (pruned + test, known facts; no KGE model) in a fresh embedded server.

    .venv/bin/python bench/retrieval_bench.py [--clips 64] [--large 1000000] [--queries 200] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from common import BenchError, default_akg_dir, log
from scratch_server import scratch_graph

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

QUERIES = ["a dog barking in a park", "rain falling on a roof", "a car horn in the street", "birds chirping",
           "people speaking in a crowd", "glass breaking", "water flowing in a stream", "an engine idling",
           "footsteps on a wooden floor", "a siren of an ambulance", "thunder and heavy rain", "a cat meowing",
           "children playing", "a door slamming", "wind blowing through trees", "a baby crying"]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def indexing(clap: Path, clips: int, workers: int, tmp: Path) -> dict:
    import soundfile as sf

    from akg.encoders import EncoderSpec, load_encoder
    from retrieval.store import build_index, load_index

    folder = tmp / "clips"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(48000 * 10) / 48000
    for i in range(clips):
        wave = 0.2 * np.sin(2 * np.pi * (150 + 37 * i) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(folder / f"clip{i:04d}.wav", wave.astype(np.float32), 48000)
    spec = EncoderSpec(model=str(clap))
    runs, vectors = {}, {}
    for label, kw in (("single", {"workers": 1}), (f"{workers} workers", {"workers": workers}),
                      (f"ray {workers} workers", {"workers": workers, "ray": "auto"})):
        home = tmp / label.replace(" ", "-")
        log(f"indexing {clips} clips: {label}")
        start = time.perf_counter()
        encoder = load_encoder(spec)  # in the timing: each path loads its model(s) once, cold
        report = build_index(home, "bench", folder, encoder, spec, batch=8, **kw)
        seconds = time.perf_counter() - start
        if report.embedded != clips:
            raise BenchError(f"{label}: embedded {report.embedded} of {clips}")
        runs[label] = {"seconds": round(seconds, 2), "clips_per_s": round(clips / seconds, 2)}
        vectors[label] = np.asarray(load_index(home, "bench").vectors)
    first = next(iter(vectors.values()))
    if not all(np.array_equal(first, v) for v in vectors.values()):
        raise BenchError("the indexing paths gave different vectors")
    base = runs["single"]["clips_per_s"]
    for r in runs.values():
        r["ratio_vs_single"] = round(r["clips_per_s"] / base, 2)
    return {"clips": clips, "seconds_of_audio_each": 10, "identical_vectors": True, "runs": runs}


def synthetic_index(n: int, dim: int, home: Path, name: str):
    from retrieval.store import CollectionIndex, make_faiss_index

    # Clustered like embeddings of real sounds (many clips of few kinds of sound), not uniform on the
    # sphere, where no approximate index can work: 2,000 centres, each vector a centre plus noise.
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):  # in slices: a million at once would double the memory
        m = min(100_000, n - s)
        part = centres[rng.integers(0, len(centres), m)] + rng.standard_normal((m, dim)).astype(np.float32) * 0.04
        vectors[s:s + m] = part / np.linalg.norm(part, axis=1, keepdims=True)
    start = time.perf_counter()
    index, kind = make_faiss_index(vectors)
    build = time.perf_counter() - start
    manifest = {"audio_dir": str(home), "encoder": "", "kind": kind,
                "files": [{"path": f"clip{i}.wav"} for i in range(n)]}
    return CollectionIndex(name, home, manifest, vectors, index), round(build, 2)


def searching(graph, encoder, home: Path, sizes: list[int], n_queries: int) -> dict:
    from akg.config import Settings
    from retrieval.search import search_text
    from retrieval.session import open_enricher

    enricher = open_enricher(graph, Settings.from_env(), encoder, use_kge=False)
    queries = [QUERIES[i % len(QUERIES)] for i in range(n_queries)]
    for q in QUERIES:  # warm: the entity table, facts and variant embeddings are cached from here on
        enricher.expand(q)
    expand = timed(lambda i: enricher.expand(queries[i]), n_queries)
    # a text not seen before, its entities' facts cached: linking, variants and their new text embeddings
    fresh = timed(lambda i: enricher.expand(f"{queries[i]} number {i}"), n_queries)
    q_emb = enricher.embed(QUERIES)
    out = {"enrichment_warm_ms": {"p50": round(pct(expand, 50), 3), "p99": round(pct(expand, 99), 3)},
           "enrichment_new_text_ms": {"p50": round(pct(fresh, 50), 3), "p99": round(pct(fresh, 99), 3)},
           "variants_per_query": round(statistics.mean(len(enricher.expand(q).variants) for q in QUERIES), 1),
           "entities": len(enricher.table.names), "sizes": {}}
    for n in sizes:
        log(f"search over {n:,} vectors")
        index, build = synthetic_index(n, q_emb.shape[1], home, f"synthetic-{n}")
        vecs = index.vectors

        def brute(i):
            s = vecs @ q_emb[i % len(QUERIES)]
            top = np.argpartition(-s, 10)[:10]
            return top[np.argsort(-s[top])]

        def plain(i):
            return index.search(q_emb[i % len(QUERIES)], 10)

        def enriched(i):
            return search_text(index, enricher, queries[i], k=10)

        enriched(0)
        t_brute, t_plain, t_enriched = timed(brute, n_queries), timed(plain, n_queries), timed(enriched, n_queries)
        # recall of the approximate index, for queries near the data (a clip's vector, perturbed)
        probes = vecs[np.random.default_rng(2).choice(n, 50, replace=False)]
        probes = probes + np.random.default_rng(3).standard_normal(probes.shape).astype(np.float32) * 0.02

        def top10(q):
            s = vecs @ q
            return set(np.argpartition(-s, 10)[:10].tolist())

        recall = statistics.mean(len(top10(q) & set(index.search(q, 10)[1][0].tolist())) / 10 for q in probes)
        row = {"index": index.manifest["kind"], "build_s": build, "recall@10_vs_brute": round(recall, 3)}
        for label, t in (("numpy_brute_force", t_brute), ("faiss_query_only", t_plain), ("enriched_search", t_enriched)):
            row[label] = {"p50_ms": round(pct(t, 50), 3), "p99_ms": round(pct(t, 99), 3)}
        row["enriched_p50_vs_brute_p50"] = round(row["enriched_search"]["p50_ms"] / row["numpy_brute_force"]["p50_ms"], 3)
        out["sizes"][f"{n:,}"] = row
        del index, vecs
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--akg-dir", type=Path, default=default_akg_dir())
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sizes", default="10000,1000000", help="collection sizes for search latency")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--skip-indexing", action="store_true")
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    from tiny_clap import build_tiny_clap

    tmp = Path(tempfile.mkdtemp(prefix="akg-retrieval-bench-"))
    try:
        clap = build_tiny_clap(tmp / "clap", projection_dim=512)
        result = {}
        if not a.skip_indexing:
            result["indexing"] = indexing(clap, a.clips, a.workers, tmp)
        with scratch_graph("akg-retrieval-bench-") as (graph, home, _state):
            from akg.encoders import EncoderSpec, load_encoder
            from akg_loader.ingest import ingest
            from akg_loader.tsv import read_file

            log("ingesting the AKG")
            ingest(graph, [read_file(a.akg_dir / "AKG_pruned.tsv"), read_file(a.akg_dir / "AKG_test.tsv")])
            encoder = load_encoder(EncoderSpec(model=str(clap)))
            result["search"] = searching(graph, encoder, home, [int(s) for s in a.sizes.split(",")], a.queries)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if a.json_out:
        a.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from common import run

    run(main, "retrieval_bench")
