"""Load on `akg serve`: tail prediction and an entity's neighbourhood at 1, 8 and 32 concurrent clients.

A scratch embedded server is filled with AKG pruned + test and a small RotatE (tests/helpers.py,
as the other benchmarks); `akg serve` runs as a subprocess against it (one worker, as users start
it), and an httpx/asyncio driver keeps N clients busy for --seconds per level, each sending its
next request as soon as the last one is answered. Per workload and level: requests/s, p50/p99
latency, errors (anything but 200, or a transport error) and the service's RSS before and after.
The baseline is the CLI's per-call cost: `akg predict HEAD RELATION --json` as a fresh process.

    .venv/bin/python bench/serve_bench.py --seconds 60 --json-out bench/out/serve.json

The load generator is wrk (`apt-get install wrk`; a C program, with a Lua script here choosing each
request at random from 2,000 drawn in advance) when it is installed, else the httpx/asyncio driver
(`--driver httpx`). The driver shares the machine's cores with the service and the graph server, and
the httpx one costs ~1.2 ms of CPU per request (about as much as the service's own work), so on 2
cores its figures are a floor; the fault run always uses httpx (it keeps every request's timeline).

The fault run (`--fault`, or `--fault-only`) kills the graph server with SIGKILL during prediction load
at 8 clients. The embedded server is started again by the service's next connection; with
`--server neo4j` (the Neo4j test server, Java 17+ and Maven) an operator's restart is played
`--restart-after` seconds later, on the same ports, from the store the dead process left:

    .venv/bin/python bench/serve_bench.py --server neo4j --fault-only --fault-seconds 120 --json-out bench/out/serve_fault_neo4j.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, BenchError, default_akg_dir, emit, log  # noqa: E402
from scratch_server import scratch_graph, scratch_neo4j_graph  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))

AKG = str(Path(sys.executable).parent / "akg")
MODEL = "serve-bench"


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def drive(url: str, make_request, clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        async def one(worker: int):
            rnd = random.Random(worker)
            while time.monotonic() < stop:
                method, path, body = make_request(rnd)
                started = time.perf_counter()
                try:
                    r = await client.request(method, path, json=body)
                    ok = r.status_code == 200
                    if not ok:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as e:
                    ok = False
                    errors.append(f"{type(e).__name__}: {e}")
                if ok:
                    latencies.append(time.perf_counter() - started)

        began = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.monotonic() - began
    return {"requests": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
            "error_examples": sorted(set(errors))[:3], "seconds": round(elapsed, 2),
            "req_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(1000 * percentile(latencies, 50), 2) if latencies else None,
            "p99_ms": round(1000 * percentile(latencies, 99), 2) if latencies else None}


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n', summary.requests,
    summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(99), latency.max))
end
"""


def drive_wrk(url: str, make_request, clients: int, seconds: float, workdir: Path) -> dict:
    """The same closed loop as `drive`, run by wrk: `clients` connections, each sending its next
    request when the last is answered; errors are transport errors, timeouts and statuses >= 400."""
    rnd = random.Random(0)
    rows = []
    for _ in range(2000):
        method, path, body = make_request(rnd)
        rows.append("{" + ", ".join([lua_string(method), lua_string(path),
                                     lua_string(json.dumps(body)) if body is not None else "nil"]) + "}")
    script = workdir / "wrk.lua"
    script.write_text("local reqs = {\n" + ",\n".join(rows) + "\n}\nmath.randomseed(1)\n"
                      "local json = {['Content-Type'] = 'application/json'}\n"
                      "request = function()\n  local r = reqs[math.random(#reqs)]\n"
                      "  if r[3] then return wrk.format(r[1], r[2], json, r[3]) end\n"
                      "  return wrk.format(r[1], r[2])\nend\n" + WRK_DONE, encoding="utf-8")
    done = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
                           "-s", str(script), url], capture_output=True, text=True)
    line = next((l for l in done.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed: {done.stderr.strip() or done.stdout.strip()}")
    w = json.loads(line[len("WRKJSON "):])
    errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
    elapsed = w["duration_us"] / 1e6
    return {"requests": w["requests"], "ok": w["requests"] - w["status"], "errors": errors,
            "error_examples": [], "seconds": round(elapsed, 2),
            "req_per_s": round((w["requests"] - w["status"]) / elapsed, 1),
            "p50_ms": round(w["p50_us"] / 1000, 2), "p99_ms": round(w["p99_us"] / 1000, 2),
            "max_ms": round(w["max_us"] / 1000, 2)}


async def fault_run(url: str, make_request, clients: int, seconds: float, kill_at: float, kill) -> dict:
    """Load for `seconds`; at `kill_at` the graph server is killed (`kill()`); every request's
    (start, end, status) is kept, to say how many failed, how fast the 503s came, and when answers
    were right again."""
    import httpx

    records: list[tuple[float, float, int]] = []  # seconds since the start; status 0 = transport error
    began = time.monotonic()
    stop = began + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one(worker: int):
            rnd = random.Random(worker)
            while time.monotonic() < stop:
                method, path, body = make_request(rnd)
                t0 = time.monotonic() - began
                try:
                    status = (await client.request(method, path, json=body)).status_code
                except httpx.HTTPError:
                    status = 0
                records.append((t0, time.monotonic() - began, status))

        async def killer():
            await asyncio.sleep(kill_at)
            kill()

        await asyncio.gather(killer(), *(one(i) for i in range(clients)))
    after = [r for r in records if r[0] >= kill_at]
    failed = [r for r in after if r[2] != 200]
    unavailable = [1000 * (end - start) for start, end, status in failed if status == 503]
    last_failed_start = max((r[0] for r in failed), default=kill_at)
    first_ok = min((end for start, end, status in after if status == 200 and start > last_failed_start), default=None)
    return {"clients": clients, "seconds": seconds, "killed_at_s": kill_at, "requests": len(records),
            "failed": len(failed), "failed_by_status": {str(k): sum(1 for r in failed if r[2] == k)
                                                        for k in sorted({r[2] for r in failed})},
            "ok_before_kill": sum(1 for r in records if r[0] < kill_at and r[2] == 200),
            "first_failure_after_kill_s": round(min((r[1] for r in failed), default=kill_at) - kill_at, 3) if failed else None,
            "failed_ms_p50": round(percentile(unavailable, 50), 1) if unavailable else None,
            "failed_ms_p99": round(percentile(unavailable, 99), 1) if unavailable else None,
            "failed_ms_max": round(max(unavailable), 1) if unavailable else None,
            # when the 503s slower than a second started (s after the kill): connecting to a server that
            # is coming up is where they come from
            "failed_over_1s_started_s_after_kill": sorted(round(start - kill_at, 1) for start, end, status in failed
                                                          if status == 503 and end - start > 1.0)[:20],
            "last_failure_s_after_kill": round(max(r[1] for r in failed) - kill_at, 3) if failed else None,
            "correct_again_s_after_kill": round(first_ok - kill_at, 3) if first_ok is not None else None}


def embedded_killer():
    """SIGKILL the embedded server; the service's next connection starts it again by itself."""
    from akg.config import Settings
    from akg.connect import embedded_server

    def kill():
        state = embedded_server(Settings.from_env()).status()
        log(f"killing the graph server (pid {state.pid})")
        os.kill(state.pid, 9)

    return kill


def neo4j_killer(servers: list, restart_after: float, results: dict):
    """SIGKILL Neo4j; `restart_after` seconds later an operator's restart on the same ports from the
    store the dead process left (recovered from its transaction logs); results gain when it answered."""
    import threading

    import neo4j_server

    def kill():
        dead = servers[-1]
        log(f"killing Neo4j (pid {dead.pid})")
        killed = time.monotonic()
        os.kill(dead.pid, 9)

        # Everything after the signal runs in a thread: kill() is called on the load's event loop,
        # and blocking it would stretch the timings of the requests in flight.
        def restart():
            try:
                dead.process.wait(30)
                time.sleep(max(0.0, restart_after - (time.monotonic() - killed)))
                servers.append(neo4j_server.restart_after_crash(dead))
                results["neo4j_restart_ready_s_after_kill"] = round(time.monotonic() - killed, 3)
                log(f"Neo4j answers again, {results['neo4j_restart_ready_s_after_kill']} s after the kill")
            except Exception as e:  # noqa: BLE001 - a failed restart is a result of the run, not a crash of it
                results["neo4j_restart_failed"] = str(e).splitlines()[0]
                log(f"Neo4j did not start again: {results['neo4j_restart_failed']}")

        threading.Thread(target=restart, daemon=True).start()

    return kill


def cli_baseline(env: dict, pair: tuple[str, str], repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([AKG, "predict", pair[0], pair[1], "-k", "10", "--model", MODEL, "--json"], env=env,
                              capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise BenchError(f"akg predict failed: {done.stderr.strip()}")
    median = statistics.median(times)
    return {"calls": repeat, "median_s": round(median, 3), "per_s": round(1 / median, 3),
            "all_s": [round(t, 3) for t in times]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--akg-dir", type=Path, default=default_akg_dir())
    p.add_argument("--seconds", type=float, default=60.0, help="per workload and level")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--cli-repeat", type=int, default=3)
    p.add_argument("--fault", action="store_true",
                   help="after the levels, a fault run: the graph server is killed during prediction load")
    p.add_argument("--fault-seconds", type=float, default=40.0)
    p.add_argument("--kill-at", type=float, default=5.0)
    p.add_argument("--fault-only", action="store_true", help="the fault run alone (no levels, no CLI baseline)")
    p.add_argument("--server", choices=("embedded", "neo4j"), default="embedded",
                   help="the graph server: the embedded one (restarts by itself after a kill) or the Neo4j test "
                        "server (restarted from the killed store --restart-after seconds after the kill)")
    p.add_argument("--restart-after", type=float, default=2.0, help="Neo4j fault run: seconds from kill to restart")
    p.add_argument("--driver", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx",
                   help="load generator (default: wrk when installed)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    levels = [int(x) for x in a.clients.split(",")]

    from helpers import load_akg_with_small_kge

    scratch = (scratch_neo4j_graph("akg-serve-bench-neo4j-") if a.server == "neo4j"
               else scratch_graph("akg-serve-bench-"))
    with scratch as (graph, home, servers):
        log("loading the AKG and training a small RotatE ...")
        load_akg_with_small_kge(graph, a.akg_dir, home, name=MODEL, evaluate_after=False)
        rows = graph.read("MATCH (h:Entity)-[r]->(:Entity) WHERE r.status = 'accepted' AND r.split = 'train' "
                          "RETURN DISTINCT h.name AS head, r.relation AS relation LIMIT 500")
        pairs = [(r["head"], r["relation"]) for r in rows]
        names = sorted({h for h, _ in pairs})
        env = dict(os.environ)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        service_log = open(Path(home) / "serve.log", "w")  # noqa: SIM115 - closed with the process below
        proc = subprocess.Popen([AKG, "serve", "--port", str(port), "--log-level", "warning"], env=env,
                                stdout=service_log, stderr=subprocess.STDOUT, text=True)
        try:
            import httpx

            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(url + "/ready", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise BenchError("akg serve did not become ready")
                time.sleep(0.3)
            # warm: the model and the code paths, not counted
            httpx.post(url + "/predict", json={"head": pairs[0][0], "relation": pairs[0][1], "model": MODEL}, timeout=60)
            workloads = {
                "predict": lambda rnd: ("POST", "/predict", dict(zip(("head", "relation"), rnd.choice(pairs)),
                                                                  k=10, model=MODEL)),
                "neighbourhood": lambda rnd: ("GET", f"/entities/{quote(rnd.choice(names), safe='')}/neighbourhood?limit=200",
                                              None),
            }
            results = {"driver": None if a.fault_only else a.driver, "pairs": len(pairs), "entities_sampled": len(names), "seconds_per_level": a.seconds,
                       "rss_mib_start": rss_mib(proc.pid), "levels": []}
            for name, make in ([] if a.fault_only else workloads.items()):
                for clients in levels:
                    before = rss_mib(proc.pid)
                    got = (drive_wrk(url, make, clients, a.seconds, Path(home)) if a.driver == "wrk"
                           else asyncio.run(drive(url, make, clients, a.seconds)))
                    got.update(workload=name, clients=clients, rss_mib_before=before, rss_mib_after=rss_mib(proc.pid))
                    log(f"{name} x{clients}: {got['req_per_s']} req/s, p50 {got['p50_ms']} ms, p99 {got['p99_ms']} ms, "
                        f"errors {got['errors']}, RSS {before} -> {got['rss_mib_after']} MiB")
                    results["levels"].append(got)
            results["rss_mib_end"] = rss_mib(proc.pid)
            if a.fault or a.fault_only:
                kill = neo4j_killer(servers, a.restart_after, results) if a.server == "neo4j" else embedded_killer()
                results["fault_driver"] = "httpx"  # it keeps every request's timeline
                results["fault_server"] = a.server
                results["fault"] = asyncio.run(fault_run(url, workloads["predict"], 8, a.fault_seconds, a.kill_at, kill))
                log(f"fault run: {results['fault']}")
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            service_log.close()
        if not a.fault_only:
            log("CLI baseline ...")
            results["cli"] = cli_baseline(env, pairs[0], a.cli_repeat)
    if a.fault_only:
        print(json.dumps(results, indent=2))
        if a.json_out:
            a.json_out.write_text(json.dumps(results, indent=2) + "\n")
        return
    best = max((r["req_per_s"] for r in results["levels"] if r["workload"] == "predict"), default=0)
    results["predict_throughput_vs_cli"] = round(best / results["cli"]["per_s"], 1) if results["cli"]["per_s"] else None
    if any(r["errors"] for r in results["levels"]):
        log("ERRORS during the load: the figures must not be used")

    def table(r: dict) -> str:
        lines = ["| workload | clients | req/s | p50 ms | p99 ms | errors | RSS MiB before → after |",
                 "|---|---:|---:|---:|---:|---:|---|"]
        for x in r["levels"]:
            lines.append(f"| {x['workload']} | {x['clients']} | {x['req_per_s']} | {x['p50_ms']} | {x['p99_ms']} | "
                         f"{x['errors']} | {x['rss_mib_before']} → {x['rss_mib_after']} |")
        c = r["cli"]
        lines.append(f"\nCLI `akg predict` per call: median {c['median_s']} s ({c['per_s']} calls/s); "
                     f"service predict best {r['predict_throughput_vs_cli']}x the CLI's throughput. "
                     f"Service RSS {r['rss_mib_start']} → {r['rss_mib_end']} MiB.")
        return "\n".join(lines)

    emit(results, as_json=a.json, json_out=a.json_out, table=table)


if __name__ == "__main__":
    main()
