"""Curation benchmark (issue 6): a page of a 30,000-triple review queue, and 1,000 decisions in one bulk run.

Usage (from the repository root):

    .venv/bin/python bench/curation_bench.py [--akg-dir DIR] [--queue 30000] [--decisions 1000]
        [--repeat K] [--warmup N] [--baseline-decisions 100] [--akg-repeat K] [--seed S]
        [--json] [--json-out FILE]

Everything runs against one embedded ArcadeDB server that the script starts under a temporary
AKG_HOME (random loopback ports) and always stops and removes at the end.

Setup (timed once, not a target): the full AKG (AKG_raw + AKG_pruned + AKG_test: 11,267 entities,
51,254 triples, 30,867 of them rejected) is parsed and ingested; then a pending queue of --queue
triples is built the way `akg curate suggest` builds one: synthetic new triples between existing
entities (seeded, none of them already in the graph) are queued with `curation.suggest.queue`
as one change of --queue items, each pending, split train, source kge, with a score.

1. listing: `curation.queue.page(graph, Filters(status="pending", ...), offset=k, limit=50)`, what
   `akg curate list` runs: the first, middle and last page of the whole pending queue, and the
   first page with a relation filter and with a head filter. Median of --repeat after --warmup.
   Baseline, same run: the whole filtered queue read in one call (`page` with limit = the total),
   then the page sliced in Python. The rows of both must be the same.
2. bulk decisions: a decisions TSV of --decisions lines (head, relation, tail, decision, new_tail,
   note, rev; 2 % edits, the rest about 61 % accept / 39 % reject, a note on every tenth) over
   pending triples is written, then `read_decisions` + `decide(graph, decisions, by=..., note=...,
   action="apply")`, what `akg curate apply FILE --by NAME` runs, is timed. Every run (warm-up ones too) decides different,
   still-pending triples, so no run is a no-op. Baseline, same run: --baseline-decisions decisions
   from the same kind of file, `decide()` once per decision (one change each), extrapolated to
   --decisions and labelled so.
3. `akg curate apply FILE --by bench --json` as a child process against the same server, on
   fresh triples, --akg-repeat times (whole command: Python start-up, imports, connecting).
   Also `akg curate list --json` (middle page) as a child process, for scale.

Checks (the script fails loudly when one does not hold): the graph's counts after ingest; the
queue's total; the listed rows against the baseline's slice; after every apply, each decided
triple's status (and an edit's new triple), the number of triples changed and that nothing was
"already so"; the pending total after all runs; and `curation.versions.verify(graph)` consistent
after setup and at the end.

Targets from the issue: listing a page under 2 s, applying 1,000 decisions in one bulk run under 2 s
(embedded server).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

try:                                                   # run as bench/curation_bench.py
    from common import BenchError, default_akg_dir, emit, log, run
    from scratch_server import scratch_graph
except ImportError:                                    # imported as bench.curation_bench
    from bench.common import BenchError, default_akg_dir, emit, log, run
    from bench.scratch_server import scratch_graph

REPO = Path(__file__).resolve().parent.parent
FILES = ("AKG_raw.tsv", "AKG_pruned.tsv", "AKG_test.tsv")
EXPECTED_ENTITIES = 11_267
EXPECTED_TRIPLES = 51_254
EXPECTED_REJECTED = 30_867
PAGE = 50
TARGET_SECONDS = 2.0
BY = "bench"
HEADER = ("head", "relation", "tail", "decision", "new_tail", "note", "rev")


def median_of(fn, repeat: int, warmup: int) -> tuple[list[float], object]:
    """Run fn() warmup + repeat times; the counted runs' seconds and the last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def stats_of(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": times}


# -- setup --------------------------------------------------------------------------------------

def ingest_akg(graph, akg_dir: Path) -> dict:
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file

    t0 = time.perf_counter()
    parsed = [read_file(akg_dir / name) for name in FILES]
    with UnitTimer(graph) as timer:
        ingest(graph, parsed, by=BY)
    seconds = time.perf_counter() - t0
    entities = graph.read("MATCH (e:Entity) RETURN count(e) AS n")[0]["n"]
    by_status = {r["status"]: r["n"] for r in graph.read(
        "MATCH (:Entity)-[r]->(:Entity) WHERE r.relation IS NOT NULL RETURN r.status AS status, count(r) AS n")}
    triples = sum(by_status.values())
    if (entities, triples, by_status.get("rejected")) != (EXPECTED_ENTITIES, EXPECTED_TRIPLES, EXPECTED_REJECTED):
        raise BenchError(f"after ingest: {entities} entities, {triples} triples, by status {by_status}; expected "
                         f"{EXPECTED_ENTITIES}, {EXPECTED_TRIPLES}, {EXPECTED_REJECTED} rejected")
    log(f"  ingested the AKG in {seconds:.1f} s: {entities:,} entities, {triples:,} triples {by_status}")
    top = list(timer.statement_seconds().items())[:4]
    log("    its slowest statements: " + ", ".join(f"{k} {v['seconds']:.1f} s ({v['calls']} calls)" for k, v in top))
    return {"seconds": seconds, "entities": entities, "triples": triples, "by_status": by_status,
            "statements": timer.statement_seconds()}


def all_triples(graph) -> set[tuple[str, str, str]]:
    from akg import queries

    return {(r["head"], r["relation"], r["tail"]) for r in graph.read(queries.get("graph_state_triples"))}


def synthetic_suggestions(graph, n: int, rng: random.Random) -> tuple[list, set, list[str]]:
    """n new triples (h, r, t) between existing entities, none in the graph, each with a score."""
    from akg.relations import RELATIONS

    names = sorted(r["name"] for r in graph.read("MATCH (e:Entity) RETURN e.name AS name"))
    taken = all_triples(graph)
    chosen: dict[tuple[str, str, str], float] = {}
    while len(chosen) < n:
        h, t = rng.choice(names), rng.choice(names)
        triple = (h, rng.choice(RELATIONS), t)
        if h != t and triple not in taken and triple not in chosen:
            chosen[triple] = rng.random()
    taken.update(chosen)
    return sorted(chosen.items(), key=lambda c: (-c[1], c[0])), taken, names


def verify_consistent(graph, where: str) -> dict:
    from curation.versions import verify

    t0 = time.perf_counter()
    check = verify(graph)
    seconds = time.perf_counter() - t0
    if not check["consistent"]:
        raise BenchError(f"{where}: curation.versions.verify says inconsistent: {check}")
    return {**check, "seconds": seconds}


def pending_total(graph) -> int:
    from curation.queue import Filters, page

    return page(graph, Filters(status="pending"), offset=0, limit=1).total


# -- 1. listing ---------------------------------------------------------------------------------

def run_listing(graph, cases: list[tuple], repeat: int, warmup: int) -> list[dict]:
    """Each case: the page and the baseline alternately (page, whole, page, whole...), so that load
    from other work on the machine falls on both alike. A case (label, filters, offset, keyset)
    with keyset True asks for the page that starts at `offset` by the previous row's key
    (`page(after=...)`, what `akg curate list --after` does) instead of skipping `offset` rows."""
    from curation.queue import page

    out = []
    for label, filters, offset, *mode in cases:
        total = page(graph, filters, offset=0, limit=1).total
        after = None
        if mode and mode[0] and offset:
            prev = page(graph, filters, offset=offset - 1, limit=1).rows[0]
            after = (prev["head"], prev["relation"], prev["tail"])

        def one_page():
            if after is not None:
                return page(graph, filters, after=after, limit=PAGE)
            return page(graph, filters, offset=offset, limit=PAGE)

        def whole():  # the baseline: the whole filtered queue in one read, then the page sliced in Python
            full = page(graph, filters, offset=0, limit=max(total, 1))
            return full, full.rows[offset:offset + PAGE]

        times, b_times = [], []
        for i in range(warmup + repeat):
            t0 = time.perf_counter()
            got = one_page()
            t1 = time.perf_counter()
            full, sliced = whole()
            t2 = time.perf_counter()
            if i >= warmup:
                times.append(t1 - t0)
                b_times.append(t2 - t1)
        if got.total != total or len(full.rows) != total:
            raise BenchError(f"listing {label}: totals {got.total} / {len(full.rows)} rows, expected {total}")
        if got.rows != sliced:
            raise BenchError(f"listing {label}: the page's rows differ from the whole queue's slice "
                             f"({len(got.rows)} vs {len(sliced)} rows)")
        expected_rows = max(0, min(PAGE, total - offset))
        if len(got.rows) != expected_rows or any(r["status"] != filters.status for r in got.rows):
            raise BenchError(f"listing {label}: {len(got.rows)} rows, expected {expected_rows} {filters.status}")
        if filters.relation and any(r["relation"] != filters.relation for r in got.rows):
            raise BenchError(f"listing {label}: a row of another relation")
        if filters.head and any(r["head"] != filters.head for r in got.rows):
            raise BenchError(f"listing {label}: a row of another head")
        row = {"case": label, "filters": {k: v for k, v in vars(filters).items() if v is not None},
               "offset": offset, "keyset": after is not None, "total": total, "rows": len(got.rows),
               "page": stats_of(times), "baseline_whole_queue": stats_of(b_times),
               "ratio": statistics.median(b_times) / statistics.median(times)}
        out.append(row)
        log(f"  {label:<48} total {total:>6,}  page {row['page']['median'] * 1000:8.1f} ms   "
            f"whole+slice {row['baseline_whole_queue']['median'] * 1000:8.1f} ms   ratio {row['ratio']:.2f}x")
    return out


def listing_query_split(graph, filters, offsets: list[int], repeat: int, warmup: int) -> dict:
    """The two statements of page(), each run alone in its own read, alternately: where a page's time goes."""
    from akg import queries

    params = {k: v for k, v in filters.params().items() if k != "relation"}  # no relation filter here
    params.update(after_head=None, after_relation=None, after_tail=None)
    out = {}
    for offset in offsets:
        count_t, page_t = [], []
        for i in range(warmup + repeat):
            t0 = time.perf_counter()
            graph.read(queries.get("curation_queue_count"), params)
            t1 = time.perf_counter()
            graph.read(queries.get("curation_queue_page"), {**params, "skip": offset, "limit": PAGE})
            t2 = time.perf_counter()
            if i >= warmup:
                count_t.append(t1 - t0)
                page_t.append(t2 - t1)
        out[str(offset)] = {"count_query": statistics.median(count_t), "page_query": statistics.median(page_t)}
    return out


# -- 2. decisions -------------------------------------------------------------------------------

class Pool:
    """Pending triples not yet decided, handed out in a seeded random order; edit targets kept fresh."""

    def __init__(self, triples: list, taken: set, names: list[str], rng: random.Random, rev: int):
        self.rev = rev   # the revision of every queued suggestion: the sequence number of the change that queued them
        self.free = list(triples)
        rng.shuffle(self.free)
        self.taken = taken
        self.names = names
        self.rng = rng

    def take(self, n: int) -> list:
        if n > len(self.free):
            raise BenchError(f"the pending queue ran out: {n} triples wanted, {len(self.free)} left; "
                             f"raise --queue or lower --decisions/--repeat")
        got, self.free = self.free[:n], self.free[n:]
        return got

    def new_tail(self, head: str, relation: str) -> str:
        while True:
            tail = self.rng.choice(self.names)
            if tail != head and (head, relation, tail) not in self.taken:
                self.taken.add((head, relation, tail))
                return tail


def make_decisions(pool: Pool, n: int, rng: random.Random) -> list[dict]:
    """n decisions on fresh pending triples: 2 % edits, the rest ~61 % accept / ~39 % reject; a note on every tenth."""
    rows = []
    for i, (h, r, t) in enumerate(pool.take(n)):
        if i % 50 == 25:
            action, new_tail = "edit", pool.new_tail(h, r)
        else:
            action, new_tail = ("accept" if rng.random() < 0.61 else "reject"), ""
        note = f"bench note {i}" if i % 10 == 0 else ""
        rows.append({"head": h, "relation": r, "tail": t, "decision": action, "new_tail": new_tail,
                     "note": note, "rev": str(pool.rev)})   # as `akg curate list` shows it
    return rows


def write_decisions(rows: list[dict], path: Path) -> Path:
    lines = ["\t".join(HEADER)] + ["\t".join(row[c] for c in HEADER) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_applied(graph, rows: list[dict], where: str) -> None:
    """Every decided triple (and each edit's new one) has the status decided, curated by BY."""
    from curation.triples import read_properties

    touched = [(d["head"], d["relation"], d["tail"]) for d in rows]
    touched += [(d["head"], d["relation"], d["new_tail"]) for d in rows if d["decision"] == "edit"]
    props = graph.read_unit(lambda run: read_properties(run, touched), name="bench check")
    bad = []
    for d in rows:
        old = (d["head"], d["relation"], d["tail"])
        p = props.get(old)
        want = {"accept": "accepted", "reject": "rejected", "edit": "rejected"}[d["decision"]]
        if p is None or p.get("status") != want or p.get("curated_by") != BY:
            bad.append(f"{'|'.join(old)}: {None if p is None else (p.get('status'), p.get('curated_by'))}, "
                       f"expected {want} by {BY}")
            continue
        if d["note"] and p.get("curation_note") != d["note"]:
            bad.append(f"{'|'.join(old)}: note {p.get('curation_note')!r}, expected {d['note']!r}")
        if d["decision"] == "edit":
            new = (d["head"], d["relation"], d["new_tail"])
            q = props.get(new)
            if p.get("edited_to") != d["new_tail"]:
                bad.append(f"{'|'.join(old)}: edited_to {p.get('edited_to')!r}")
            if q is None or q.get("status") != "accepted" or q.get("edited_from") != d["tail"]:
                bad.append(f"{'|'.join(new)} (edit's new triple): {q}")
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise BenchError(f"{where}: {len(bad)} decided triple(s) not as decided: " + "; ".join(bad[:5]) + more)


def expected_items(rows: list[dict]) -> int:
    return len(rows) + sum(1 for d in rows if d["decision"] == "edit")


class UnitTimer:
    """Times graph.read / read_unit / write_unit calls by name, and each statement run inside a unit.

    A perf_counter around each call and each statement: negligible beside a round trip. The
    statements' seconds include their round trip and the decoding of their results.
    """

    def __init__(self, graph):
        self.graph = graph
        self.units: dict[str, float] = defaultdict(float)
        self.statements: dict[str, list] = defaultdict(lambda: [0, 0.0])   # name -> [calls, seconds]

    def _timed_work(self, work):
        def timed_work(run):
            def timed_run(query, params=None, relation=None):
                t0 = time.perf_counter()
                try:
                    return run(query, params, relation)
                finally:
                    slot = self.statements[getattr(query, "name", "query")]
                    slot[0] += 1
                    slot[1] += time.perf_counter() - t0
            return work(timed_run)
        return timed_work

    def __enter__(self):
        g = self.graph
        for attr in ("read", "read_unit", "write_unit"):
            original = getattr(type(g), attr)

            def timed(*args, _original=original, _attr=attr, **kw):
                if _attr == "read":
                    name = getattr(args[0], "name", "query")
                else:
                    name = kw.get("name") or (args[1] if len(args) > 1 else "?")
                    args = (self._timed_work(args[0]), *args[1:])
                t0 = time.perf_counter()
                try:
                    return _original(g, *args, **kw)
                finally:
                    self.units[f"{_attr}: {name}"] += time.perf_counter() - t0
            setattr(g, attr, timed)
        return self

    def __exit__(self, *exc):
        for attr in ("read", "read_unit", "write_unit"):
            delattr(self.graph, attr)

    def statement_seconds(self) -> dict[str, dict]:
        return {k: {"calls": c, "seconds": s} for k, (c, s) in sorted(self.statements.items(), key=lambda kv: -kv[1][1])}


def run_bulk(graph, pool: Pool, rng: random.Random, n: int, repeat: int, warmup: int, work: Path) -> dict:
    from curation.decide import decide
    from curation.decisions_file import read_decisions

    runs = []
    for i in range(warmup + repeat):
        rows = make_decisions(pool, n, rng)
        path = write_decisions(rows, work / f"bulk-{i}.tsv")
        with UnitTimer(graph) as timer:
            t0 = time.perf_counter()
            decisions = read_decisions(path)
            t1 = time.perf_counter()
            outcome = decide(graph, decisions, by=BY, note=f"decisions from {path.name}", action="apply")
            t2 = time.perf_counter()
        if outcome.committed is None or len(outcome.committed.items) != expected_items(rows) or outcome.unchanged:
            raise BenchError(f"bulk run {i + 1}: {len(outcome.committed.items) if outcome.committed else 0} triples "
                             f"changed, {len(outcome.unchanged)} already so; expected {expected_items(rows)} and 0")
        check_applied(graph, rows, f"bulk run {i + 1}")
        counted = i >= warmup
        runs.append({"counted": counted, "seconds": t2 - t0, "read_decisions": t1 - t0, "decide": t2 - t1,
                     "units": dict(timer.units), "statements": timer.statement_seconds(),
                     "items": len(outcome.committed.items),
                     "edits": sum(1 for d in rows if d["decision"] == "edit")})
        log(f"  bulk run {i + 1}{'' if counted else ' (warm-up)'}: {t2 - t0:.3f} s "
            f"(read_decisions {t1 - t0:.3f}, decide {t2 - t1:.3f}; "
            + ", ".join(f"{k} {v:.3f}" for k, v in timer.units.items()) + ")")
    counted = [r for r in runs if r["counted"]]
    med = statistics.median(r["seconds"] for r in counted)
    units = sorted({k for r in counted for k in r["units"]})
    names = sorted({k for r in counted for k in r["statements"]})
    return {"decisions": n, "runs": runs, "seconds": stats_of([r["seconds"] for r in counted]),
            "read_decisions_median": statistics.median(r["read_decisions"] for r in counted),
            "decide_median": statistics.median(r["decide"] for r in counted),
            "units_median": {k: statistics.median(r["units"].get(k, 0.0) for r in counted) for k in units},
            "statements_median": dict(sorted(
                ((k, {"calls": statistics.median(r["statements"].get(k, {"calls": 0})["calls"] for r in counted),
                      "seconds": statistics.median(r["statements"].get(k, {"seconds": 0.0})["seconds"] for r in counted)})
                 for k in names), key=lambda kv: -kv[1]["seconds"])),
            "decisions_per_s": n / med}


def run_one_by_one(graph, pool: Pool, rng: random.Random, n: int, per: int, work: Path) -> dict:
    from curation.decide import decide
    from curation.decisions_file import read_decisions

    rows = make_decisions(pool, n, rng)
    path = write_decisions(rows, work / "one-by-one.tsv")
    t0 = time.perf_counter()
    decisions = read_decisions(path)
    for d in decisions:
        outcome = decide(graph, [d], by=BY, note=f"decisions from {path.name}", action="apply")
        if outcome.committed is None:
            raise BenchError(f"one-by-one: {d} changed nothing")
    seconds = time.perf_counter() - t0
    check_applied(graph, rows, "one-by-one baseline")
    log(f"  one change per decision: {n} decisions in {seconds:.2f} s ({seconds / n * 1000:.1f} ms each), "
        f"extrapolated to {per:,}: {seconds * per / n:.1f} s")
    return {"decisions": n, "seconds": seconds, "seconds_per_decision": seconds / n,
            "extrapolated_to": per, "extrapolated_seconds": seconds * per / n}


# -- 3. child processes -------------------------------------------------------------------------

def akg_command() -> Path:
    akg = Path(sys.executable).with_name("akg")
    if akg.exists():
        return akg
    found = shutil.which("akg")
    if found is None:
        raise BenchError("no `akg` command next to this Python or on PATH")
    return Path(found)


def run_akg_apply(graph, pool: Pool, rng: random.Random, n: int, repeat: int, work: Path) -> dict:
    akg = akg_command()
    env = dict(os.environ)
    env.pop("AKG_PROGRESS", None)
    runs = []
    for i in range(repeat):
        rows = make_decisions(pool, n, rng)
        path = write_decisions(rows, work / f"akg-apply-{i}.tsv")
        cmd = [str(akg), "curate", "apply", str(path), "--by", BY, "--json"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise BenchError(f"`akg curate apply` exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout)
        if len(out.get("triples") or []) != expected_items(rows) or out.get("unchanged"):
            raise BenchError(f"`akg curate apply` run {i + 1}: {len(out.get('triples') or [])} triples changed, "
                             f"{len(out.get('unchanged') or [])} already so; expected {expected_items(rows)} and 0")
        check_applied(graph, rows, f"`akg curate apply` run {i + 1}")
        runs.append(wall)
        log(f"  akg curate apply run {i + 1}/{repeat}: {wall:.2f} s (whole command)")
    return {"command": f"{akg} curate apply FILE --by {BY} --json", "decisions": n, "seconds": stats_of(runs)}


def run_akg_list(offset: int, repeat: int, work: Path) -> dict:
    akg = akg_command()
    env = dict(os.environ)
    runs = []
    cmd = [str(akg), "curate", "list", "--status", "pending", "--offset", str(offset), "--limit", str(PAGE), "--json"]
    for i in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise BenchError(f"`akg curate list` exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
        if len(json.loads(proc.stdout)["rows"]) != PAGE:
            raise BenchError("`akg curate list` did not return a full page")
        runs.append(wall)
        log(f"  akg curate list run {i + 1}/{repeat}: {wall:.2f} s (whole command)")
    return {"command": " ".join(["akg", *cmd[1:]]), "seconds": stats_of(runs)}


def python_startup(repeat: int) -> float:
    """Wall of `python -c 'import curation.cli'`: what a child command pays before any graph work."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import akg.cli, curation.cli, curation.decide"], check=True)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


# -- driver -------------------------------------------------------------------------------------

def table(res: dict) -> str:
    def ms(s: float) -> str:
        return f"{s * 1000:,.1f}"

    lines = [
        "",
        f"AKG curation benchmark  ({res['machine']['cpus']} CPUs, Python {res['machine']['python']}, "
        f"server {res['server_agent']})",
        f"load average (1/5/15 min) at start {'/'.join(f'{x:.1f}' for x in res['machine']['loadavg_start'])}, "
        f"at end {'/'.join(f'{x:.1f}' for x in res['machine']['loadavg_end'])}",
        f"graph: {EXPECTED_ENTITIES:,} entities, {EXPECTED_TRIPLES:,} AKG triples + {res['setup']['queue']:,} pending "
        f"suggestions; medians of {res['repeat']} after {res['warmup']} warm-up",
        f"setup: ingest {res['setup']['ingest']['seconds']:.1f} s; suggest.queue of {res['setup']['queue']:,} "
        f"triples (one change) {res['setup']['suggest_queue_seconds']:.2f} s; "
        f"verify {res['setup']['verify_after_setup']['seconds']:.2f} s",
        "",
        f"{'listing (limit %d)' % PAGE:<56} {'total':>7} {'page ms':>10} {'whole+slice ms':>15} {'ratio':>7}",
        f"{'-' * 56} {'-' * 7} {'-' * 10} {'-' * 15} {'-' * 7}",
    ]
    for r in res["listing"]:
        lines.append(f"{r['case']:<56} {r['total']:>7,} {ms(r['page']['median']):>10} "
                     f"{ms(r['baseline_whole_queue']['median']):>15} {r['ratio']:>6.2f}x")
    for off, v in res["listing_split"].items():
        lines.append(f"  pending, offset {int(off):,}: page()'s two statements alone: count {ms(v['count_query'])} ms, "
                     f"page {ms(v['page_query'])} ms")
    b, o = res["bulk"], res["one_by_one"]
    lines += [
        "",
        f"{'decisions':<62} {'value':>12}",
        f"{'-' * 62} {'-' * 12}",
        f"{'bulk: read_decisions + decide, %d decisions, median (s)' % b['decisions']:<62} {b['seconds']['median']:>12.3f}",
        f"{'  min / max (s)':<62} {b['seconds']['min']:>5.3f} / {b['seconds']['max']:.3f}",
        f"{'  read_decisions / decide, medians (s)':<62} {b['read_decisions_median']:>5.3f} / {b['decide_median']:.3f}",
    ]
    for k, v in b["units_median"].items():
        lines.append(f"{'    ' + k:<62} {v:>12.3f}")
    lines.append("  statements inside the units, medians (s):")
    for k, v in list(b["statements_median"].items())[:8]:
        lines.append(f"{'    %s (%g calls)' % (k, v['calls']):<62} {v['seconds']:>12.3f}")
    lines += [
        f"{'  decisions/s':<62} {b['decisions_per_s']:>12,.0f}",
        f"{'baseline: one change per decision, %d decisions (s)' % o['decisions']:<62} {o['seconds']:>12.2f}",
        f"{'  per decision (ms)':<62} {o['seconds_per_decision'] * 1000:>12.1f}",
        f"{'  extrapolated to %d decisions (s)' % o['extrapolated_to']:<62} {o['extrapolated_seconds']:>12.1f}",
        f"{'ratio extrapolated baseline / bulk':<62} {res['ratio_decisions']:>11.1f}x",
        f"{'akg curate apply (whole command, %d decisions), median (s)' % res['akg_apply']['decisions']:<62} "
        f"{res['akg_apply']['seconds']['median']:>12.2f}",
        f"{'akg curate list (whole command, middle page), median (s)':<62} {res['akg_list']['seconds']['median']:>12.2f}",
        f"{'  python start-up + imports alone (s)':<62} {res['python_startup_seconds']:>12.2f}",
        "",
        f"checks: statuses as decided after every apply; pending left {res['pending_after']:,} "
        f"(expected {res['pending_expected']:,}); versions.verify consistent: {res['verify_end']['consistent']}",
        f"targets: page < {TARGET_SECONDS} s: {'met' if res['targets']['listing'] else 'MISSED'} "
        f"(slowest case {res['targets']['listing_slowest']:.3f} s); "
        f"{b['decisions']:,} decisions < {TARGET_SECONDS} s: {'met' if res['targets']['bulk'] else 'MISSED'} "
        f"({b['seconds']['median']:.3f} s in-process, {res['akg_apply']['seconds']['median']:.2f} s whole command)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--akg-dir", type=Path, default=default_akg_dir(),
                    help="folder holding AKG_raw.tsv, AKG_pruned.tsv, AKG_test.tsv (default: $AKG_DATASET_DIR, "
                         "else ../shared/AKG_dataset beside the repository, else /work/shared/AKG_dataset)")
    ap.add_argument("--queue", type=int, default=30_000, help="pending triples queued as suggestions")
    ap.add_argument("--decisions", type=int, default=1000, help="decisions per bulk run")
    ap.add_argument("--repeat", type=int, default=5, help="counted runs per figure (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted runs first, per figure")
    ap.add_argument("--baseline-decisions", type=int, default=100,
                    help="decisions applied one change each for the baseline (extrapolated to --decisions)")
    ap.add_argument("--akg-repeat", type=int, default=2, help="runs of the `akg curate apply/list` child processes")
    ap.add_argument("--seed", type=int, default=6, help="seed of the synthetic queue and decisions")
    ap.add_argument("--json", action="store_true", help="print all figures as JSON instead of the table")
    ap.add_argument("--json-out", type=Path, help="also write all figures as JSON to this file")
    args = ap.parse_args(argv)
    if min(args.queue, args.decisions, args.repeat, args.baseline_decisions, args.akg_repeat) < 1 or args.warmup < 0:
        ap.error("--queue, --decisions, --repeat, --baseline-decisions and --akg-repeat must be at least 1")
    needed = (args.warmup + args.repeat + args.akg_repeat) * args.decisions + args.baseline_decisions
    if needed > args.queue:
        ap.error(f"the runs decide {needed:,} pending triples but --queue is {args.queue:,}")
    missing = [f for f in FILES if not (args.akg_dir / f).is_file()]
    if missing:
        ap.error(f"{args.akg_dir} lacks {', '.join(missing)}: pass --akg-dir or run `akg dataset fetch`")

    from curation.queue import Filters
    from curation.suggest import queue

    rng = random.Random(args.seed)
    load_start = os.getloadavg()
    log("starting the embedded server under a temporary AKG_HOME ...")
    t = time.perf_counter()
    with scratch_graph("akg-curation-bench-") as (graph, home, state), \
            tempfile.TemporaryDirectory(prefix="akg-curation-bench-work-") as work_dir:
        work = Path(work_dir)
        log(f"  up in {time.perf_counter() - t:.1f} s ({state.bolt_uri}, pid {state.pid}, {home})")

        log("setup: ingest the AKG, queue the suggestions:")
        ingested = ingest_akg(graph, args.akg_dir)
        suggestions, taken, names = synthetic_suggestions(graph, args.queue, rng)
        t0 = time.perf_counter()
        done = queue(graph, suggestions, model="bench", by=BY)
        queue_seconds = time.perf_counter() - t0
        if len(done.items) != args.queue:
            raise BenchError(f"suggest.queue recorded {len(done.items)} items, expected {args.queue}")
        total = pending_total(graph)
        if total != args.queue:
            raise BenchError(f"the pending queue holds {total} triples after queueing {args.queue}")
        log(f"  suggest.queue: {args.queue:,} pending triples as one change in {queue_seconds:.2f} s")
        verify_setup = verify_consistent(graph, "after setup")

        # the filters' subjects: the relation and the head with the most pending suggestions
        per_relation, per_head = defaultdict(int), defaultdict(int)
        for (h, r, _), _ in suggestions:
            per_relation[r] += 1
            per_head[h] += 1
        relation = max(sorted(per_relation), key=per_relation.get)
        head = max(sorted(per_head), key=per_head.get)
        middle = (total // 2) // PAGE * PAGE
        last = (total - 1) // PAGE * PAGE
        cases = [
            ("pending, first page", Filters(status="pending"), 0),
            (f"pending, middle page (offset {middle:,})", Filters(status="pending"), middle),
            (f"pending, last page (offset {last:,})", Filters(status="pending"), last),
            (f"pending, middle page by key (after row {middle:,})", Filters(status="pending"), middle, True),
            (f"pending, last page by key (after row {last:,})", Filters(status="pending"), last, True),
            (f"pending, relation '{relation}', first page", Filters(status="pending", relation=relation), 0),
            (f"pending, head '{head}'", Filters(status="pending", head=head), 0),
        ]
        log(f"listing, {args.warmup} warm-up + median of {args.repeat}:")
        listing = run_listing(graph, cases, args.repeat, args.warmup)
        split = listing_query_split(graph, Filters(status="pending"), [0, middle, last], args.repeat, args.warmup)
        for off, v in split.items():
            log(f"  offset {int(off):>6,}, the two statements of page() alone: count {v['count_query'] * 1000:.1f} ms, "
                f"page {v['page_query'] * 1000:.1f} ms")
        log("`akg curate list` as a child process (middle page):")
        akg_list = run_akg_list(middle, args.akg_repeat, work)

        pool = Pool([tr for tr, _ in suggestions], taken, names, rng, done.seq)
        log(f"bulk decisions, {args.decisions:,} per run, {args.warmup} warm-up + {args.repeat}:")
        bulk = run_bulk(graph, pool, rng, args.decisions, args.repeat, args.warmup, work)
        log("baseline, one change per decision:")
        one = run_one_by_one(graph, pool, rng, args.baseline_decisions, args.decisions, work)
        log("`akg curate apply` as a child process:")
        akg_apply = run_akg_apply(graph, pool, rng, args.decisions, args.akg_repeat, work)
        startup = python_startup(args.akg_repeat)

        pending_after = pending_total(graph)
        pending_expected = args.queue - needed
        if pending_after != pending_expected:
            raise BenchError(f"{pending_after} pending triples left, expected {pending_expected}")
        verify_end = verify_consistent(graph, "at the end")
        log(f"  checks passed: {pending_after:,} pending left, versions.verify consistent "
            f"({verify_end['accepted']:,} accepted)")

        load_end = os.getloadavg()
        slowest = max(r["page"]["median"] for r in listing)
        res = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "loadavg_start": load_start, "loadavg_end": load_end},
            "server_agent": graph.server_agent,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "repeat": args.repeat, "warmup": args.warmup,
            "setup": {"ingest": ingested, "queue": args.queue, "suggest_queue_seconds": queue_seconds,
                      "verify_after_setup": verify_setup},
            "listing": listing,
            "listing_split": split,
            "bulk": bulk,
            "one_by_one": one,
            "ratio_decisions": one["extrapolated_seconds"] / bulk["seconds"]["median"],
            "akg_apply": akg_apply,
            "akg_list": akg_list,
            "python_startup_seconds": startup,
            "pending_after": pending_after, "pending_expected": pending_expected,
            "verify_end": verify_end,
            "targets": {"listing": slowest < TARGET_SECONDS, "listing_slowest": slowest,
                        "bulk": bulk["seconds"]["median"] < TARGET_SECONDS},
        }

    emit(res, as_json=args.json, json_out=args.json_out, table=table)
    return 0


if __name__ == "__main__":
    run(main, "curation_bench")
