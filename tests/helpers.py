"""Small helpers shared by several test files (and bench/ui_bench.py through tests/ui_browser.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1 as IPv4 and as IPv4-mapped IPv6


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on `port`, from /proc/net/tcp{,6} (hex, as the kernel writes them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


def slice_by_heads(src: Path, dst: Path, heads: set[str]) -> Path:
    """The rows of an AKG TSV (header kept) whose head is one of `heads` (raw names), written to dst."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    dst.write_text(lines[0] + "".join(l for l in lines[1:] if l.split("\t")[1] in heads), encoding="utf-8")
    return dst


def wipe(graph) -> None:
    """Empty the graph: entities and triples, and the change log that describes them."""
    for label in ("Entity", "ChangeItem", "Change", "Version", "GraphState"):
        graph.write(f"MATCH (n:{label}) DETACH DELETE n")


def load_akg_with_small_kge(graph, akg_dir: Path, home: Path, *, name: str, evaluate_after: bool) -> Path:
    """An empty graph filled with AKG pruned + test, no cached prompts or audio, and a small RotatE
    trained on it as the only (so the latest) model. Returns the models folder."""
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from kge import store
    from kge.presets import preset
    from kge.workflows import train_from_graph

    wipe(graph)
    ingest(graph, [read_file(akg_dir / "AKG_pruned.tsv"), read_file(akg_dir / "AKG_test.tsv")])
    root = store.models_root(home)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(Path(home) / "cache", ignore_errors=True)
    config = preset("fast").with_overrides(epochs=2, embedding_dim=16, negatives=32)
    train_from_graph(graph, config, models_root=root, name=name, evaluate_after=evaluate_after)
    return root


def snapshot(graph) -> tuple:
    """Everything a console query must leave as it was: schema, labels, types, counts, triples' state."""
    from akg.graph_state import state_hash

    return (sorted(r["name"] for r in graph.read("SHOW INDEXES")),
            sorted(r["name"] for r in graph.read("SHOW CONSTRAINTS")),
            sorted(r["label"] for r in graph.read("CALL db.labels()")),
            sorted(r["relationshipType"] for r in graph.read("CALL db.relationshipTypes()")),
            graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"],
            graph.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"],
            graph.read("MATCH (n:Entity) WHERE n.hacked IS NOT NULL RETURN count(n) AS n")[0]["n"],
            state_hash(graph))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(env: dict, *args: str, wait: float = 90.0) -> tuple[subprocess.Popen, str]:
    """`akg serve` as users start it, on a free loopback port; returns the process and its URL once /health answers."""
    import httpx

    port = free_port()
    akg = str(Path(sys.executable).parent / "akg")
    proc = subprocess.Popen([akg, "serve", "--port", str(port), "--log-level", "warning", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"akg serve exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"akg serve did not answer within {wait} s")


def stop_service(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
