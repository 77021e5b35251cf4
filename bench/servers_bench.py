"""The two graph servers side by side (issue 12): the embedded ArcadeDB and Neo4j 5.26 Community.

Usage (from the repository root; Neo4j needs Java 17+ and Maven, as `make test-neo4j`):

    .venv/bin/python bench/servers_bench.py [--akg-dir DIR] [--repeat K] [--warmup N]
        [--baseline-rows N] [--reads N] [--json] [--json-out FILE]

For each server in turn (a fresh one each: the embedded server under a temporary AKG_HOME, Neo4j
from neo4j-test-server/ with a temporary store; both with a 2 GiB Java heap, Neo4j with a 512 MiB
page cache), in one run:

1. ingest: `read_file` + `ingest` of AKG_raw + AKG_pruned + AKG_test into an empty graph, after
   `--warmup` uncounted runs, `--repeat` times (median); the graph is checked to hold 11,267
   entities and 51,254 triples each time;
2. baseline: one transaction per triple (MERGE, MERGE, MERGE, SET) for the first `--baseline-rows`
   rows, on the same server; the ratio ingest/baseline is the batching's gain there;
3. reads, on the full AKG: the neighbourhood of an entity (cypher/explore.cypher's
   `entity_neighbourhood`, limit 200) and `akg predict`'s known-tail lookup
   (kge.workflows.known_tails) for `--reads` entities and (head, relation) pairs drawn with a fixed
   seed, after 50 uncounted calls each: p50 and p99 per call;
4. memory: the server process's peak resident set (VmHWM) at the end.

Ratios between the servers are printed beside the figures; compare them, not absolute values,
across runs (the machines are shared).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import BenchError, REPO, default_akg_dir, emit, log, run
from ingest_bench import (EXPECTED_ENTITIES, EXPECTED_ROWS, EXPECTED_TRIPLES, FILES, check_full_graph,
                          proc_status_kb, run_baseline, run_measured)
from scratch_server import scratch_graph

sys.path.insert(0, str(REPO / "tests"))
import neo4j_server  # noqa: E402  (tests/neo4j_server.py: the Neo4j test server)

WARM_CALLS = 50


@contextlib.contextmanager
def embedded():
    with scratch_graph("akg-servers-bench-") as (graph, home, state):
        yield graph, state.pid


@contextlib.contextmanager
def neo4j():
    from akg.config import Settings
    from akg.connect import connect

    with tempfile.TemporaryDirectory(prefix="akg-servers-bench-neo4j-") as folder:
        with neo4j_server.running(Path(folder)) as server:
            settings = Settings.from_env(overrides={**server.env, "AKG_HOME": str(Path(folder) / "home")})
            with connect(settings) as graph:
                yield graph, server.pid


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed_calls(call, items) -> dict:
    for item in items[:WARM_CALLS]:
        call(item)  # uncounted: plans cached, JIT warm
    times = []
    for item in items:
        t = time.perf_counter()
        call(item)
        times.append((time.perf_counter() - t) * 1000)
    return {"calls": len(times), "p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99),
            "mean_ms": statistics.fmean(times)}


def run_reads(graph, akg_dir: Path, n: int) -> dict:
    from akg import queries
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from kge.workflows import known_tails

    graph.write("MATCH (e:Entity) DETACH DELETE e")
    ingest(graph, [read_file(akg_dir / f) for f in FILES])
    check_full_graph(graph, "reads")
    rng = random.Random(12)
    names = sorted(graph.read(queries.get("entity_names"))[0]["names"])
    pairs = sorted({(r["head"], r["relation"]) for r in graph.read(queries.get("graph_state_triples"))
                    if r["status"] == "accepted"})
    entities = [rng.choice(names) for _ in range(n)]
    heads = [rng.choice(pairs) for _ in range(n)]
    hood = queries.get("entity_neighbourhood")
    neighbourhood = timed_calls(lambda name: graph.read(hood, {"name": name, "limit": 200}), entities)
    tails = timed_calls(lambda pair: known_tails(graph, *pair), heads)
    log(f"  neighbourhood p50 {neighbourhood['p50_ms']:.2f} ms p99 {neighbourhood['p99_ms']:.2f} ms; "
        f"known tails p50 {tails['p50_ms']:.2f} ms p99 {tails['p99_ms']:.2f} ms")
    return {"neighbourhood": neighbourhood, "known_tails": tails}


def measure(name: str, server, args) -> dict:
    log(f"{name}: starting ...")
    t = time.perf_counter()
    with server() as (graph, pid):
        log(f"  up in {time.perf_counter() - t:.1f} s ({graph.server_agent}, pid {pid})")
        log("  ingest (read_file + ingest):")
        ingest = run_measured(graph, args.akg_dir, args.repeat, args.warmup)
        log("  baseline (one transaction per triple):")
        baseline = run_baseline(graph, args.akg_dir, args.baseline_rows)
        log("  reads:")
        reads = run_reads(graph, args.akg_dir, args.reads)
        hwm = proc_status_kb(pid, "VmHWM")
        return {"server": graph.server_agent, "ingest": ingest, "baseline": baseline,
                "ingest_over_baseline": ingest["triples_per_s"] / baseline["triples_per_s"], "reads": reads,
                "peak_rss_mib": round(hwm / 1024) if hwm else None}


def table(result: dict) -> str:
    e, n = result["embedded"], result["neo4j"]

    def row(label: str, a: float, b: float, fmt: str, ratio: bool = True) -> str:
        line = f"{label:<46} {format(a, fmt):>14} {format(b, fmt):>14}"
        return line + (f" {b / a:>9.2f}x" if ratio and a else "")

    lines = [
        "",
        f"graph servers side by side ({result['machine']['cpus']} CPUs, Python {result['machine']['python']}; "
        f"{result['input']['rows']:,} rows, {EXPECTED_TRIPLES:,} triples, {EXPECTED_ENTITIES:,} entities)",
        f"embedded: {e['server']}   neo4j: {n['server']}",
        "",
        f"{'figure':<46} {'embedded':>14} {'neo4j':>14} {'neo4j/emb':>10}",
        f"{'-' * 46} {'-' * 14} {'-' * 14} {'-' * 10}",
        row(f"ingest, median of {len(e['ingest']['runs'])} (s)", e["ingest"]["seconds_median"], n["ingest"]["seconds_median"], ".2f"),
        row("ingest rows/s", e["ingest"]["rows_per_s"], n["ingest"]["rows_per_s"], ",.0f"),
        row("ingest triples/s", e["ingest"]["triples_per_s"], n["ingest"]["triples_per_s"], ",.0f"),
        row(f"baseline triples/s (1 tx per triple, {e['baseline']['rows']} rows)", e["baseline"]["triples_per_s"],
            n["baseline"]["triples_per_s"], ",.0f"),
        row("ingest / baseline (x)", e["ingest_over_baseline"], n["ingest_over_baseline"], ".1f", ratio=False),
        row("neighbourhood p50 (ms)", e["reads"]["neighbourhood"]["p50_ms"], n["reads"]["neighbourhood"]["p50_ms"], ".2f"),
        row("neighbourhood p99 (ms)", e["reads"]["neighbourhood"]["p99_ms"], n["reads"]["neighbourhood"]["p99_ms"], ".2f"),
        row("known tails p50 (ms)", e["reads"]["known_tails"]["p50_ms"], n["reads"]["known_tails"]["p50_ms"], ".2f"),
        row("known tails p99 (ms)", e["reads"]["known_tails"]["p99_ms"], n["reads"]["known_tails"]["p99_ms"], ".2f"),
        row("server peak RSS (MiB)", e["peak_rss_mib"] or 0, n["peak_rss_mib"] or 0, ",.0f"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--akg-dir", type=Path, default=default_akg_dir())
    ap.add_argument("--repeat", type=int, default=3, help="counted ingest runs per server (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted ingest runs first (a cold JVM is slow)")
    ap.add_argument("--baseline-rows", type=int, default=2000)
    ap.add_argument("--reads", type=int, default=1000, help="calls of each read, per server")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    if min(args.repeat, args.baseline_rows, args.reads) < 1 or args.warmup < 0:
        ap.error("--repeat, --baseline-rows and --reads must be at least 1, --warmup at least 0")
    missing = [f for f in FILES if not (args.akg_dir / f).is_file()]
    if missing:
        ap.error(f"{args.akg_dir} lacks {', '.join(missing)}: pass --akg-dir or run `akg dataset fetch`")
    try:
        neo4j_server.classpath()
    except neo4j_server.Neo4jUnavailable as e:
        raise BenchError(str(e)) from None
    result = {"date": time.strftime("%Y-%m-%d"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "input": {"files": [str(args.akg_dir / f) for f in FILES], "rows": EXPECTED_ROWS},
              "settings": {"repeat": args.repeat, "warmup": args.warmup, "baseline_rows": args.baseline_rows,
                           "reads": args.reads},
              "embedded": measure("embedded server", embedded, args),
              "neo4j": measure("Neo4j", neo4j, args)}
    emit(result, as_json=args.json, json_out=args.json_out, table=table)
    return 0


if __name__ == "__main__":
    run(main, "servers_bench")
