"""`akg query` is read-only whatever is typed: writes, schema commands and file reads are refused, the
graph unchanged, by three layers of which each holds alone; runaway queries are stopped on the server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from akg import gate, readonly
from akg.errors import AkgError, ConfigError, GraphError, QueryRefused, QueryTimeout
from akg.readonly import run_read_only
from helpers import snapshot

ATTACKS = json.loads((Path(__file__).parent / "corpus" / "console_attacks.json").read_text(encoding="utf-8"))
# Burns CPU on the server for minutes unless stopped (ArcadeDB caps a single range at ~13M elements).
HEAVY = "UNWIND range(1, 10000000) AS x UNWIND range(1, 100) AS y WITH x, y WHERE (x * y) % 7 = 0 RETURN count(*) AS n"


@pytest.fixture(scope="module")
def small_graph(graph, mini_dir):
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from helpers import wipe

    wipe(graph)
    ingest(graph, [read_file(mini_dir / "mini_akg_test.tsv")])
    return graph


@pytest.fixture
def unchanged(small_graph):
    before = snapshot(small_graph)
    yield
    assert snapshot(small_graph) == before


@pytest.mark.parametrize("attack", ATTACKS, ids=[a["why"] for a in ATTACKS])
def test_console_attacks_are_refused_whole(small_graph, reader, run_cli, unchanged, attack):
    text = attack["query"]
    res = run_cli("query", text)
    assert res.exit_code == 1
    assert res.output.startswith("Error:") and len(res.output.strip().splitlines()) == 1
    assert "Traceback" not in res.output
    with pytest.raises(QueryRefused):
        run_read_only(reader, text)


def test_the_server_refuses_what_slips_past_the_gate(small_graph, reader, monkeypatch, unchanged, tmp_path):
    """Layer 2 alone: with the lexical gate switched off, the read-only connection still refuses writes,
    schema commands, writing procedures and file reads, and nothing is left behind."""
    monkeypatch.setattr(readonly, "checked_text", lambda text: text)
    secret = tmp_path / "secret.csv"
    secret.write_text("AKG-SECRET-LINE\n", encoding="utf-8")
    for text in ["MATCH (n:Entity) WITH n LIMIT 3 SET n.hacked = true RETURN n.name AS name",
                 "MATCH (n:Entity) WITH n LIMIT 1 CALL { WITH n CREATE (:Intruder) } RETURN 1 AS one",
                 "MATCH (n:Entity) WITH n LIMIT 1 CREATE (:Entity {name: 'intruder'}) RETURN 1 AS one",
                 "CREATE INDEX evil IF NOT EXISTS FOR (n:Entity) ON (n.hacked)",
                 "DROP CONSTRAINT entity_name_unique"]:
        with pytest.raises(QueryRefused, match="refused|turned out to write|classifies this query"):
            run_read_only(reader, text)
    # A file read is refused (ArcadeDB: the reader may not; Neo4j: file URLs are off) and shows nothing of it
    with pytest.raises(AkgError) as refused:
        run_read_only(reader, f"LOAD CSV FROM 'file://{secret}' AS l RETURN l")
    assert "AKG-SECRET-LINE" not in str(refused.value)
    # ArcadeDB's procedure that runs any command; Neo4j has no such procedure (an error, nothing run)
    with pytest.raises(QueryRefused if reader.dialect == "arcadedb" else GraphError):
        run_read_only(reader, "CALL do.when(true, 'DROP CONSTRAINT entity_name_unique', '') YIELD value RETURN value")


def test_files_cannot_be_read_even_by_the_service_connection(small_graph, tmp_path):
    """The server itself has LOAD CSV from files switched off (the embedded server's settings; Neo4j's
    dbms.security.allow_csv_import_from_file_urls, as docker-compose.yml and the test server set it)."""
    secret = tmp_path / "secret.csv"
    secret.write_text("AKG-SECRET-LINE\n", encoding="utf-8")
    with pytest.raises(GraphError, match="(?i)file"):
        small_graph.read(f"LOAD CSV FROM 'file://{secret}' AS l RETURN l")


def test_the_service_connection_is_never_used_for_typed_queries(small_graph):
    with pytest.raises(ConfigError, match="read-only connection"):
        run_read_only(small_graph, "RETURN 1 AS one")


def test_comments_are_not_sent_and_line_ends_follow_the_servers():
    assert gate.checked_text("MATCH (n) // c\rRETURN n") == "MATCH (n)  \rRETURN n"
    assert gate.checked_text("RETURN /* c */ 1 AS x") == "RETURN   1 AS x"
    assert gate.checked_text("RETURN 'a // b' AS x") == "RETURN 'a // b' AS x"
    for text in ["RETURN 1 AS x // c\u2028", "RETURN '\u200b' AS x", "RETURN 1 AS é"]:
        with pytest.raises(QueryRefused):
            gate.checked_text(text)


def test_read_procedures_subqueries_and_schema_listings_are_allowed(small_graph, reader):
    assert "Entity" in {r["label"] for r in run_read_only(reader, "CALL db.labels()").rows}
    if reader.dialect == "arcadedb":  # Neo4j reads `db.labels` as one name, dot included: no such procedure
        assert "Entity" in {r["label"] for r in run_read_only(reader, "CALL `db.labels`()").rows}
    res = run_read_only(reader, "MATCH (n:Entity) WITH n LIMIT 2 CALL { WITH n RETURN n.name AS nm } RETURN nm")
    assert len(res.rows) == 2
    names = {r["name"] for r in run_read_only(reader, "SHOW CONSTRAINTS").rows}
    assert "entity_name_unique" in names
    res = run_read_only(reader, "MATCH (n:Entity) // a comment\r\nRETURN count(n) /* and another */ AS n")
    assert res.rows == small_graph.read("MATCH (n:Entity) RETURN count(n) AS n")


def test_keywords_inside_strings_are_not_writes(small_graph, reader):
    gate.checked_text("MATCH (e:Entity) WHERE e.name = 'create index; drop' RETURN count(e) AS n")
    res = run_read_only(reader, "MATCH (e:Entity) WHERE e.name <> 'CREATE (x) // \\' ' RETURN count(e) AS n")
    assert res.rows[0]["n"] == small_graph.read("MATCH (e:Entity) RETURN count(e) AS n")[0]["n"]


def test_read_with_parameter_table_and_json(small_graph, run_cli):
    q = "MATCH (:Entity {name: $name})-[r]->(t) RETURN type(r) AS rel, t.name AS tail ORDER BY rel, tail"
    expected = small_graph.read(q, {"name": "bassoon"})
    assert expected, "the mini graph's test split has facts about bassoon"
    res = run_cli("query", q, "--param", "name=bassoon", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["columns"] == ["rel", "tail"]
    assert out["rows"] == expected and out["truncated"] is False
    table = run_cli("query", q, "-p", "name=bassoon")
    assert table.exit_code == 0 and "PRODUCES" in table.stdout and "music" in table.stdout


def test_nodes_and_paths_are_serialised(small_graph, reader):
    res = run_read_only(reader, "MATCH p = (e:Entity {name: 'bassoon'})-[r]->(t) RETURN e, r, p LIMIT 1")
    row = res.rows[0]
    assert row["e"]["labels"] == ["Entity"] and row["e"]["properties"]["name"] == "bassoon"
    assert row["r"]["start"] == "bassoon" and "status" in row["r"]["properties"]
    assert len(row["p"]["nodes"]) == 2 and len(row["p"]["relationships"]) == 1


def test_row_limit_truncates(small_graph, run_cli):
    res = run_cli("query", "MATCH (e:Entity) RETURN e.name AS name", "--limit", "7", "--json")
    out = json.loads(res.stdout)
    assert out["row_count"] == 7 and out["truncated"] is True


def _console_queries(graph) -> list[str]:
    """Console queries (those carrying the gate's marker) that the server is running now."""
    return [r["currentQuery"] for r in graph.read("SHOW TRANSACTIONS")
            if "akg-console:" in (r.get("currentQuery") or "") and "SHOW TRANSACTIONS" not in r["currentQuery"]]


def test_queries_past_their_limit_are_stopped_on_the_server(small_graph, reader, run_cli):
    """Five heavy queries abandoned at their limit leave nothing running: the next command answers at once."""
    for _ in range(5):
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match="stopped on the server"):
            run_read_only(reader, HEAVY, timeout=0.5)
        assert time.monotonic() - started < 10
    assert _console_queries(small_graph) == []
    started = time.monotonic()
    res = run_cli("stats", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["entities"] > 0
    assert time.monotonic() - started < 10  # a queue behind running queries waited 30 s and failed


def test_the_cap_on_running_queries_holds_across_processes(small_graph, reader, server_env):
    """Two slots held by another process: a third query is refused, and runs once they are free."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time, pathlib\n"
        "d = pathlib.Path(sys.argv[1]) / 'console'; d.mkdir(parents=True, exist_ok=True)\n"
        "fs = [open(d / f'slot-{i}.lock', 'a+') for i in range(2)]\n"
        "[fcntl.flock(f, fcntl.LOCK_EX) for f in fs]\n"
        "print('held', flush=True); time.sleep(60)\n"), str(server_env.home)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(QueryRefused, match="already running"):
            run_read_only(reader, "RETURN 1 AS one")
    finally:
        holder.kill()
        holder.wait()
    assert run_read_only(reader, "RETURN 1 AS one").rows == [{"one": 1}]


def test_a_query_whose_process_died_is_stopped_by_the_next(small_graph, reader):
    """A console query left running with its deadline passed (its process was killed) is reaped."""
    orphan = f"/*akg-console:deadbeef00000000:{int(time.time() * 1000) - 1}*/ {HEAVY}"

    def run_orphan():
        try:
            with reader.session() as s:
                s.run(orphan).consume()
        except Exception:  # stopped: that is the point
            pass

    worker = threading.Thread(target=run_orphan, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not _console_queries(small_graph):
        assert time.monotonic() < deadline, "the orphan never started"
        time.sleep(0.1)
    assert run_read_only(reader, "RETURN 1 AS one").rows == [{"one": 1}]
    worker.join(10)
    assert not worker.is_alive() and _console_queries(small_graph) == []


def test_bad_cypher_is_a_clear_error(small_graph, run_cli):
    res = run_cli("query", "MATCH (n RETURN n")
    assert res.exit_code == 1 and "Error:" in res.output and "Traceback" not in res.output
    res = run_cli("query", "MATCH (n) RETURN n", "--param", "oops")
    assert res.exit_code == 2 and "NAME=VALUE" in res.output
