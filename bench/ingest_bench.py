"""Ingest benchmark (issue 2): AKG_raw + AKG_pruned + AKG_test into a fresh embedded server.

Usage (from the repository root):

    .venv/bin/python bench/ingest_bench.py [--akg-dir DIR] [--baseline-rows N] [--repeat K]
        [--warmup N] [--akg-repeat K] [--json] [--json-out FILE]

What it measures, all against one embedded ArcadeDB server that it starts under a temporary
AKG_HOME (random loopback ports) and always stops and removes at the end:

1. measured path: `akg_loader.tsv.read_file` on the three files + `akg_loader.ingest.ingest`
   into an empty graph, timed together, K times (median reported); the graph is checked to end
   with 11,267 entities and 51,254 triples.
2. baseline, same process and server: one transaction per triple (MERGE head, MERGE tail,
   MERGE the relationship, SET its provenance) on the first N parsed rows, into an empty graph.
3. per-query breakdown: one extra, untimed-for-the-headline run of the measured path with every
   statement of `ingest` timed (round trip, server work and result decoding together), plus the
   CPU seconds of this Python process and of the Java server during the run.
4. the `akg` process as a whole: `.venv/bin/akg ingest FILES` as a child process against the same
   server, into an empty graph, under `/usr/bin/time -v` when available (else getrusage of the
   child): peak RSS of the `akg` process, its wall time and rows/s including start-up.

Targets from the issue: >= 20,000 triples/s, >= 30x the baseline, peak RSS of `akg` <= 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import BenchError, default_akg_dir, emit, log, run
from scratch_server import scratch_graph

REPO = Path(__file__).resolve().parent.parent
FILES = ("AKG_raw.tsv", "AKG_pruned.tsv", "AKG_test.tsv")
EXPECTED_ROWS = 69_602        # data rows in the three files (headers excluded)
EXPECTED_TRIPLES = 51_254     # distinct (head, relation, tail) over the three files
EXPECTED_ENTITIES = 11_267
TARGET_TRIPLES_PER_S = 20_000
TARGET_RATIO = 30
TARGET_RSS_MB = 500          # megabytes (10^6 bytes); RSS is measured in MiB (2^20 bytes)

BASELINE_QUERY = (
    "MERGE (h:Entity {name: $h}) "
    "MERGE (t:Entity {name: $t}) "
    "MERGE (h)-[r:__TYPE__]->(t) "
    "SET r += $props"
)


# -- helpers ------------------------------------------------------------------------------------

def empty_graph(graph) -> None:
    graph.write("MATCH (e:Entity) DETACH DELETE e")
    counts = graph_counts(graph)
    if counts != (0, 0):
        raise BenchError(f"graph not empty after DETACH DELETE: {counts}")


def graph_counts(graph) -> tuple[int, int]:
    entities = graph.read("MATCH (e:Entity) RETURN count(e) AS n")[0]["n"]
    triples = graph.read("MATCH (:Entity)-[r]->(:Entity) RETURN count(r) AS n")[0]["n"]
    return entities, triples


def check_full_graph(graph, where: str) -> None:
    entities, triples = graph_counts(graph)
    if (entities, triples) != (EXPECTED_ENTITIES, EXPECTED_TRIPLES):
        raise BenchError(f"{where}: graph has {entities} entities and {triples} triples; "
                         f"expected {EXPECTED_ENTITIES} and {EXPECTED_TRIPLES}")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc; 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def parse_all(akg_dir: Path):
    from akg_loader.tsv import read_file

    return [read_file(akg_dir / name) for name in FILES]


def input_rows(parsed) -> int:
    return sum(len(p.rows) + p.duplicates + len(p.rejected) for p in parsed)


# -- 1. measured path ---------------------------------------------------------------------------

def run_measured(graph, akg_dir: Path, repeat: int, warmup: int = 0) -> dict:
    from akg_loader.ingest import ingest

    for i in range(warmup):  # not counted: lets the server's JIT settle first
        empty_graph(graph)
        t0 = time.perf_counter()
        ingest(graph, parse_all(akg_dir))
        log(f"  warm-up run {i + 1}/{warmup}: {time.perf_counter() - t0:.2f} s (not counted)")
    runs = []
    for i in range(repeat):
        empty_graph(graph)
        t0 = time.perf_counter()
        parsed = parse_all(akg_dir)
        t1 = time.perf_counter()
        summary = ingest(graph, parsed)
        t2 = time.perf_counter()
        check_full_graph(graph, f"measured run {i + 1}")
        rows = input_rows(parsed)
        if rows != EXPECTED_ROWS or summary.triples != EXPECTED_TRIPLES or summary.triples_created != EXPECTED_TRIPLES:
            raise BenchError(f"measured run {i + 1}: {rows} input rows, {summary.triples} distinct triples, "
                             f"{summary.triples_created} created; expected {EXPECTED_ROWS}, {EXPECTED_TRIPLES}, "
                             f"{EXPECTED_TRIPLES}")
        total = t2 - t0
        runs.append({"seconds": total, "parse_seconds": t1 - t0, "ingest_seconds": t2 - t1,
                     "rows_per_s": EXPECTED_ROWS / total, "triples_per_s": EXPECTED_TRIPLES / total})
        log(f"  measured run {i + 1}/{repeat}: {total:.2f} s (parse {t1 - t0:.2f} s, ingest {t2 - t1:.2f} s), "
            f"{EXPECTED_TRIPLES / total:,.0f} triples/s")
    secs = [r["seconds"] for r in runs]
    med = statistics.median(secs)
    return {
        "warmup_runs": warmup,
        "runs": runs,
        "seconds_median": med, "seconds_min": min(secs), "seconds_max": max(secs),
        "parse_seconds_median": statistics.median(r["parse_seconds"] for r in runs),
        "ingest_seconds_median": statistics.median(r["ingest_seconds"] for r in runs),
        "rows_per_s": EXPECTED_ROWS / med,
        "triples_per_s": EXPECTED_TRIPLES / med,
    }


# -- 3. per-query breakdown -------------------------------------------------------------------

def run_profiled(graph, akg_dir: Path, server_pid: int) -> dict:
    """One more measured-path run with every statement inside `ingest` timed."""
    from akg_loader.ingest import ingest

    per_query: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # name -> [calls, seconds]
    units = {"count": 0, "seconds": 0.0, "work_seconds": 0.0}
    original = graph.write_unit

    def timed_write_unit(work, name="write"):
        def timed_work(run):
            def timed_run(query, params=None, relation=None):
                label = getattr(query, "name", "query")
                t = time.perf_counter()
                try:
                    return run(query, params, relation)
                finally:
                    slot = per_query[label]
                    slot[0] += 1
                    slot[1] += time.perf_counter() - t
            t_work = time.perf_counter()
            try:
                return work(timed_run)
            finally:
                units["work_seconds"] += time.perf_counter() - t_work

        t = time.perf_counter()
        try:
            return original(timed_work, name=name)
        finally:
            units["count"] += 1
            units["seconds"] += time.perf_counter() - t

    empty_graph(graph)
    graph.write_unit = timed_write_unit
    try:
        cpu_py0, cpu_srv0 = time.process_time(), proc_cpu_seconds(server_pid)
        t0 = time.perf_counter()
        parsed = parse_all(akg_dir)
        t1 = time.perf_counter()
        ingest(graph, parsed)
        t2 = time.perf_counter()
        cpu_py1, cpu_srv1 = time.process_time(), proc_cpu_seconds(server_pid)
    finally:
        del graph.write_unit  # back to the class's method
    check_full_graph(graph, "profiled run")
    in_queries = sum(s for _, s in per_query.values())
    return {
        "seconds": t2 - t0,
        "parse_seconds": t1 - t0,
        "ingest_seconds": t2 - t1,
        "transactions": units["count"],
        "transactions_seconds": units["seconds"],
        "queries": {k: {"calls": c, "seconds": s} for k, (c, s) in sorted(per_query.items(), key=lambda kv: -kv[1][1])},
        # inside the transaction function but outside statements: the Python merge work
        "python_in_transactions_seconds": units["work_seconds"] - in_queries,
        # around the transaction function: session, BEGIN and COMMIT (the server's commit work)
        "begin_commit_seconds": units["seconds"] - units["work_seconds"],
        # outside transactions: collect() and sorting in ingest()
        "outside_transactions_seconds": (t2 - t1) - units["seconds"],
        "python_cpu_seconds": cpu_py1 - cpu_py0,
        "server_cpu_seconds": cpu_srv1 - cpu_srv0,
    }


# -- 2. baseline --------------------------------------------------------------------------------

def run_baseline(graph, akg_dir: Path, n_rows: int) -> dict:
    from akg.relations import cypher_type

    parsed = parse_all(akg_dir)
    rows = [(p, r) for p in parsed for r in p.rows][:n_rows]
    empty_graph(graph)
    texts: dict[str, str] = {}
    t0 = time.perf_counter()
    with graph.session() as session:
        for p, row in rows:
            text = texts.get(row.relation)
            if text is None:
                text = texts[row.relation] = BASELINE_QUERY.replace("__TYPE__", cypher_type(row.relation))
            props = {"relation": row.relation, "sources": [p.source], "status": row.status, "split": p.split,
                     "verdict": row.verdict}
            params = {"h": row.head, "t": row.tail, "props": props}
            session.execute_write(lambda tx: tx.run(text, params).consume())
    seconds = time.perf_counter() - t0
    triples = graph.read("MATCH (:Entity)-[r]->(:Entity) RETURN count(r) AS n")[0]["n"]
    if triples != len(rows):
        raise BenchError(f"baseline: {triples} triples in the graph after {len(rows)} distinct rows")
    log(f"  baseline: {len(rows)} triples in {seconds:.2f} s, {len(rows) / seconds:,.0f} triples/s")
    return {"rows": len(rows), "seconds": seconds, "triples_per_s": len(rows) / seconds}


# -- 4. the akg process as a whole ----------------------------------------------------------------

_TIME_V = {
    "max_rss_kb": re.compile(r"Maximum resident set size \(kbytes\):\s*(\d+)"),
    "wall": re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\):\s*([\d:.]+)"),
    "user": re.compile(r"User time \(seconds\):\s*([\d.]+)"),
    "sys": re.compile(r"System time \(seconds\):\s*([\d.]+)"),
}


def _clock(text: str) -> float:
    secs = 0.0
    for part in text.split(":"):
        secs = secs * 60 + float(part)
    return secs


def run_subprocess(graph, akg_dir: Path, env: dict, repeat: int) -> dict:
    akg = Path(sys.executable).with_name("akg")
    if not akg.exists():
        akg_path = shutil.which("akg")
        if akg_path is None:
            raise BenchError("no `akg` command next to this Python or on PATH")
        akg = Path(akg_path)
    files = [str(akg_dir / f) for f in FILES]
    gnu_time = Path("/usr/bin/time")
    use_time = gnu_time.exists()
    runs = []
    with tempfile.TemporaryDirectory(prefix="akg-bench-cwd-") as cwd:  # any rejects file lands here
        for i in range(repeat):
            empty_graph(graph)
            cmd = [str(akg), "ingest", "--json", *files]
            if use_time:
                cmd = [str(gnu_time), "-v", *cmd]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode != 0:
                raise BenchError(f"`akg ingest` exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
            summary = json.loads(proc.stdout)
            if summary["triples_created"] != EXPECTED_TRIPLES:
                raise BenchError(f"`akg ingest` created {summary['triples_created']} triples, expected {EXPECTED_TRIPLES}")
            check_full_graph(graph, f"`akg ingest` run {i + 1}")
            run = {"wall_seconds": wall, "ingest_seconds_reported": summary["seconds"]}
            if use_time:
                found = {k: rx.search(proc.stderr) for k, rx in _TIME_V.items()}
                if found["max_rss_kb"] is None:
                    raise BenchError(f"could not read /usr/bin/time -v output:\n{proc.stderr[-2000:]}")
                run["max_rss_mib"] = int(found["max_rss_kb"].group(1)) / 1024
                run["time_v_wall_seconds"] = _clock(found["wall"].group(1))
                run["user_seconds"] = float(found["user"].group(1))
                run["sys_seconds"] = float(found["sys"].group(1))
                run["rss_source"] = "/usr/bin/time -v"
            else:
                # ru_maxrss of RUSAGE_CHILDREN is the largest of all reaped children so far (KiB on Linux)
                run["max_rss_mib"] = after.ru_maxrss / 1024
                run["user_seconds"] = after.ru_utime - before.ru_utime
                run["sys_seconds"] = after.ru_stime - before.ru_stime
                run["rss_source"] = "getrusage(RUSAGE_CHILDREN)"
            run["rows_per_s"] = EXPECTED_ROWS / wall
            run["triples_per_s"] = EXPECTED_TRIPLES / wall
            runs.append(run)
            log(f"  akg ingest run {i + 1}/{repeat}: wall {wall:.2f} s, peak RSS {run['max_rss_mib']:.0f} MiB, "
                f"user {run['user_seconds']:.2f} s, sys {run['sys_seconds']:.2f} s")
    walls = [r["wall_seconds"] for r in runs]
    med = statistics.median(walls)
    return {
        "runs": runs,
        "command": "akg ingest --json " + " ".join(files),
        "rss_source": runs[0]["rss_source"],
        "max_rss_mib": max(r["max_rss_mib"] for r in runs),
        "wall_seconds_median": med, "wall_seconds_min": min(walls), "wall_seconds_max": max(walls),
        "rows_per_s": EXPECTED_ROWS / med,
        "triples_per_s": EXPECTED_TRIPLES / med,
    }


# -- driver -------------------------------------------------------------------------------------

def table(result: dict) -> str:
    m, b, s, p = result["measured"], result["baseline"], result["akg_process"], result["profile"]
    t = result["targets"]

    def ok(flag: bool) -> str:
        return "met" if flag else "MISSED"

    lines = [
        "",
        f"AKG ingest benchmark  ({result['machine']['cpus']} CPUs, Python {result['machine']['python']}, "
        f"server {result['server_agent']})",
        f"input: {EXPECTED_ROWS:,} rows, {EXPECTED_TRIPLES:,} distinct triples, {EXPECTED_ENTITIES:,} entities",
        "",
        f"{'figure':<54} {'value':>14}",
        f"{'-' * 54} {'-' * 14}",
        f"{'measured parse+ingest, median of %d (s)%s' % (len(m['runs']), ', %d warm-up' % m['warmup_runs'] if m['warmup_runs'] else ''):<54} {m['seconds_median']:>14.2f}",
        f"{'  min / max (s)':<54} {m['seconds_min']:>6.2f} / {m['seconds_max']:.2f}",
        f"{'  parse / ingest, medians (s)':<54} {m['parse_seconds_median']:>6.2f} / {m['ingest_seconds_median']:.2f}",
        f"{'measured rows/s':<54} {m['rows_per_s']:>14,.0f}",
        f"{'measured triples/s':<54} {m['triples_per_s']:>14,.0f}",
        f"{'baseline triples/s (1 tx per triple, %d rows)' % b['rows']:<54} {b['triples_per_s']:>14,.0f}",
        f"{'ratio measured/baseline':<54} {result['ratio']:>13.1f}x",
        f"{'akg process peak RSS, max of %d (MiB)' % len(s['runs']):<54} {s['max_rss_mib']:>14.0f}",
        f"{'  = MB (10^6 bytes)':<54} {s['max_rss_mib'] * 2**20 / 10**6:>14.0f}",
        f"{'akg process wall, median (s)':<54} {s['wall_seconds_median']:>14.2f}",
        f"{'  min / max (s)':<54} {s['wall_seconds_min']:>6.2f} / {s['wall_seconds_max']:.2f}",
        f"{'akg process rows/s (whole command)':<54} {s['rows_per_s']:>14,.0f}",
        f"{'akg process triples/s (whole command)':<54} {s['triples_per_s']:>14,.0f}",
        "",
        f"targets: >= {TARGET_TRIPLES_PER_S:,} triples/s: {ok(t['triples_per_s'])}; "
        f">= {TARGET_RATIO}x baseline: {ok(t['ratio'])}; "
        f"peak RSS <= {TARGET_RSS_MB} MB: {ok(t['rss'])}",
        "",
        f"profiled run ({p['seconds']:.2f} s: parse {p['parse_seconds']:.2f} s, ingest {p['ingest_seconds']:.2f} s, "
        f"{p['transactions']} transactions):",
    ]
    for name, q in p["queries"].items():
        lines.append(f"  {name:<32} {q['calls']:>5} calls {q['seconds']:>7.2f} s")
    lines += [
        f"  {'Python merge inside tx':<32} {'':>11} {p['python_in_transactions_seconds']:>7.2f} s",
        f"  {'session + BEGIN + COMMIT':<32} {'':>11} {p['begin_commit_seconds']:>7.2f} s",
        f"  {'outside transactions (collect)':<32} {'':>11} {p['outside_transactions_seconds']:>7.2f} s",
        f"  CPU during the run: this Python process {p['python_cpu_seconds']:.2f} s, "
        f"Java server {p['server_cpu_seconds']:.2f} s",
        f"  Java server peak RSS so far: {result['server_peak_rss_mib']} MiB",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--akg-dir", type=Path, default=default_akg_dir(),
                    help="folder holding AKG_raw.tsv, AKG_pruned.tsv, AKG_test.tsv "
                         "(default: $AKG_DATASET_DIR, else ../shared/AKG_dataset beside the repository, else AKG_dataset/ in it)")
    ap.add_argument("--baseline-rows", type=int, default=3000, help="rows for the one-transaction-per-triple baseline")
    ap.add_argument("--repeat", type=int, default=3, help="measured repetitions (median reported)")
    ap.add_argument("--warmup", type=int, default=0,
                    help="uncounted measured-path runs first (default 0: the first counted run meets a cold server)")
    ap.add_argument("--akg-repeat", type=int, default=1, help="runs of the `akg ingest` child process")
    ap.add_argument("--json", action="store_true", help="print all figures as JSON instead of the table")
    ap.add_argument("--json-out", type=Path, help="also write all figures as JSON to this file")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.baseline_rows < 1 or args.akg_repeat < 1 or args.warmup < 0:
        ap.error("--repeat, --baseline-rows and --akg-repeat must be at least 1")
    missing = [f for f in FILES if not (args.akg_dir / f).is_file()]
    if missing:
        ap.error(f"{args.akg_dir} lacks {', '.join(missing)}: pass --akg-dir or run `akg dataset fetch`")

    log("starting the embedded server under a temporary AKG_HOME ...")
    t = time.perf_counter()
    with scratch_graph("akg-bench-") as (graph, home, state):
        log(f"  up in {time.perf_counter() - t:.1f} s ({state.bolt_uri}, pid {state.pid}, {home})")

        log("measured path (read_file + ingest):")
        measured = run_measured(graph, args.akg_dir, args.repeat, args.warmup)
        log("baseline (one transaction per triple):")
        baseline = run_baseline(graph, args.akg_dir, args.baseline_rows)
        log("profiled run (per statement):")
        profile = run_profiled(graph, args.akg_dir, state.pid)
        log("`akg ingest` as a child process:")
        child_env = dict(os.environ)
        child_env.pop("AKG_PROGRESS", None)
        akg_process = run_subprocess(graph, args.akg_dir, child_env, args.akg_repeat)

        ratio = measured["triples_per_s"] / baseline["triples_per_s"]
        server_hwm = proc_status_kb(state.pid, "VmHWM")
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "server_agent": graph.server_agent,
            "input": {"files": [str(args.akg_dir / f) for f in FILES], "rows": EXPECTED_ROWS,
                      "triples": EXPECTED_TRIPLES, "entities": EXPECTED_ENTITIES},
            "measured": measured,
            "baseline": baseline,
            "ratio": ratio,
            "profile": profile,
            "akg_process": akg_process,
            "server_peak_rss_mib": round(server_hwm / 1024) if server_hwm else None,
            "targets": {
                "triples_per_s": measured["triples_per_s"] >= TARGET_TRIPLES_PER_S,
                "ratio": ratio >= TARGET_RATIO,
                "rss": akg_process["max_rss_mib"] * 2**20 <= TARGET_RSS_MB * 10**6,
            },
        }

    emit(result, as_json=args.json, json_out=args.json_out, table=table)
    return 0


if __name__ == "__main__":
    run(main, "ingest_bench")
