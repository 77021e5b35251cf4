"""Ingest against the real embedded server: exact counts, provenance, idempotence, interruptions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from akg_loader.ingest import ingest
from akg_loader.stats import graph_stats
from akg_loader.tsv import read_file

AKG_FILES = ("AKG_pruned.tsv", "AKG_raw.tsv", "AKG_test.tsv")


def _ingest(graph, *paths, **kw):
    return ingest(graph, [read_file(p) for p in paths], **kw)


def _consistency(graph) -> dict:
    """Invariants that must hold whatever happened: no duplicated triple, full provenance on each."""
    dup = graph.read("MATCH (h:Entity)-[r]->(t:Entity) WITH h, type(r) AS ty, t, count(r) AS c WHERE c > 1 RETURN count(*) AS n")[0]["n"]
    partial = graph.read(
        "MATCH ()-[r]->() WHERE r.status IS NULL OR r.split IS NULL OR r.sources IS NULL OR r.relation IS NULL "
        "OR r.created_at IS NULL RETURN count(r) AS n")[0]["n"]
    nameless = graph.read("MATCH (e:Entity) WHERE e.name IS NULL RETURN count(e) AS n")[0]["n"]
    return {"duplicated": dup, "partial": partial, "nameless": nameless}


def test_full_akg_exact_counts(empty_graph, akg_dir, run_cli):
    res = run_cli("ingest", str(akg_dir / "AKG_pruned.tsv"))
    assert res.exit_code == 0, res.output
    res = run_cli("ingest", str(akg_dir / "AKG_raw.tsv"), str(akg_dir / "AKG_test.tsv"), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["triples_created"] == 51254 - 18348
    assert summary["triples_updated"] == 18348  # pruned triples gain the raw provenance
    stats = json.loads(run_cli("stats", "--json").stdout)
    assert stats["entities"] == 11267
    assert stats["triples"] == 51254
    assert stats["by_status"] == {"accepted": 18348 + 2039, "rejected": 30867}
    assert stats["by_split"] == {"train": 49215, "test": 2039}
    cells = {(r["status"], r["split"]): r["n"] for r in stats["by_status_and_split"]}
    assert cells == {("accepted", "train"): 18348, ("accepted", "test"): 2039, ("rejected", "train"): 30867}
    assert len(stats["by_relation"]) == 47
    assert sum(stats["by_relation"].values()) == 51254
    assert _consistency(empty_graph) == {"duplicated": 0, "partial": 0, "nameless": 0}

    # Idempotent: everything again changes nothing, timestamps included, and says so.
    before = empty_graph.read("MATCH ()-[r]->() RETURN max(r.updated_at) AS t")[0]["t"]
    res = run_cli("ingest", *(str(akg_dir / f) for f in AKG_FILES))
    assert res.exit_code == 0, res.output
    assert "nothing changed" in res.stdout
    assert "0 created, 0 updated, 51254 unchanged" in res.stdout
    assert empty_graph.read("MATCH ()-[r]->() RETURN max(r.updated_at) AS t")[0]["t"] == before
    assert json.loads(run_cli("stats", "--json").stdout)["triples"] == 51254


def test_provenance_merges_pruned_then_raw(empty_graph, tmp_path):
    pruned = tmp_path / "mini_pruned.tsv"
    raw = tmp_path / "mini_raw.tsv"
    test = tmp_path / "mini_test.tsv"
    header = "label_name\thead\trelation\ttail\tresponse\n"
    pruned.write_text(header + "dog\tdog\thas parent\tanimal\tYes.\n", encoding="utf-8")
    raw.write_text(header + "dog\tDog\thas_parent\tAnimal\tYes.\ndog\tdog\toccurs in\tmoon\tNo.\n"
                   "café\tcafé\tpart of scene\tcup clinking\tYes.\n", encoding="utf-8")
    test.write_text(header + "dog\tdog\tproduces\tbark\tYes.\n", encoding="utf-8")

    first = _ingest(empty_graph, pruned)
    assert (first.triples_created, first.entities_created) == (1, 2)
    second = _ingest(empty_graph, raw, test)
    assert (second.triples_created, second.triples_updated, second.triples_unchanged) == (3, 1, 0)

    rows = empty_graph.read(
        "MATCH (h:Entity)-[r]->(t:Entity) RETURN h.name AS h, r.relation AS rel, t.name AS t, properties(r) AS p")
    facts = {(r["h"], r["rel"], r["t"]): r["p"] for r in rows}
    assert set(facts) == {("dog", "has parent", "animal"), ("dog", "occurs in", "moon"),
                          ("café", "part of scene", "cup clinking"), ("dog", "produces", "bark")}
    merged = facts[("dog", "has parent", "animal")]
    assert merged["sources"] == ["pruned", "raw"]
    assert merged["source_files"] == ["mini_pruned.tsv", "mini_raw.tsv"]
    assert (merged["status"], merged["split"], merged["verdict"]) == ("accepted", "train", "yes")
    assert merged["created_at"] <= merged["updated_at"]
    assert facts[("dog", "occurs in", "moon")]["status"] == "rejected"
    assert facts[("dog", "occurs in", "moon")]["verdict"] == "no"
    assert facts[("dog", "produces", "bark")]["split"] == "test"
    rel_types = {r["t"] for r in empty_graph.read("MATCH ()-[r]->() RETURN DISTINCT type(r) AS t")}
    assert rel_types == {"HAS_PARENT", "OCCURS_IN", "PART_OF_SCENE", "PRODUCES"}
    # A curator's decision is never overridden by a later ingest.
    empty_graph.write("MATCH (:Entity {name: 'dog'})-[r:OCCURS_IN]->() SET r.status = 'accepted', r.curated_at = '2026-01-01'")
    raw_again = tmp_path / "more_raw.tsv"
    raw_again.write_text(header + "dog\tdog\toccurs in\tmoon\tNo.\n", encoding="utf-8")
    _ingest(empty_graph, raw_again)
    assert empty_graph.read("MATCH (:Entity {name: 'dog'})-[r:OCCURS_IN]->() RETURN r.status AS s")[0]["s"] == "accepted"


def test_same_file_twice_changes_nothing(empty_graph, akg_dir):
    first = _ingest(empty_graph, akg_dir / "AKG_test.tsv")
    assert first.changed and first.triples_created == 2039
    second = _ingest(empty_graph, akg_dir / "AKG_test.tsv")
    assert not second.changed
    assert (second.triples_created, second.triples_updated, second.triples_unchanged) == (0, 0, 2039)
    assert second.entities_created == 0


def test_concurrent_ingests_do_not_duplicate(empty_graph, akg_dir):
    """Two ingests of the same file at once: one triple each, exact counts, nothing lost."""
    import threading

    from akg.connect import connect

    errors, summaries = [], []

    def run():
        try:
            with connect() as g:
                summaries.append(_ingest(g, akg_dir / "AKG_test.tsv", batch_size=200))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert _count(empty_graph) == 2039
    assert _consistency(empty_graph) == {"duplicated": 0, "partial": 0, "nameless": 0}
    assert sum(s.triples_created for s in summaries) == 2039
    assert empty_graph.read("MATCH (l:IngestLock) RETURN count(l) AS n")[0]["n"] == 1


def _count(graph) -> int:
    return graph.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]


def _akg_subprocess(args, env_extra=None) -> subprocess.Popen:
    env = dict(os.environ, **(env_extra or {}))
    # Ctrl-C must reach the child as it reaches a command in a terminal: a suite started in the background
    # by a non-interactive shell runs with SIGINT ignored, which the child would inherit (and finish).
    return subprocess.Popen([sys.executable, "-c", "from akg.cli import main; main()", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_interrupted_run_is_consistent_and_rerun_completes(empty_graph, akg_dir, how):
    raw = akg_dir / "AKG_raw.tsv"
    proc = _akg_subprocess(["ingest", str(raw), "--batch-size", "300"], {"PYTHONFAULTHANDLER": "1"})
    deadline = time.monotonic() + 120
    while _count(empty_graph) < 3000 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the ingest finished before it could be interrupted: {proc.communicate()}"
    proc.send_signal(how)
    try:
        out, err = proc.communicate(timeout=120)  # (rolling back the open batch on a loaded server)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # with PYTHONFAULTHANDLER, the child prints where each thread is
        out, err = proc.communicate()
        pytest.fail(f"the ingest went on for 120 s after {how.name}: {err[-6000:]}")
    assert proc.returncode != 0, (out, err)
    if how == signal.SIGINT:  # Ctrl-C stops between two batches and says so in one line
        assert "interrupted: stopped after" in err and "Traceback" not in err, err
    part = _count(empty_graph)
    assert 0 < part < 49215
    assert _consistency(empty_graph) == {"duplicated": 0, "partial": 0, "nameless": 0}

    rerun = _ingest(empty_graph, raw)
    assert rerun.triples_created == 49215 - part  # nothing lost, nothing written twice
    assert rerun.triples_unchanged == part
    assert _count(empty_graph) == 49215
    assert _consistency(empty_graph) == {"duplicated": 0, "partial": 0, "nameless": 0}
    assert graph_stats(empty_graph)["by_status"] == {"accepted": 18348, "rejected": 30867}
