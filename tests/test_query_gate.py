"""`akg query` is read-only whatever is typed: writes and schema commands are refused, graph unchanged."""

from __future__ import annotations

import json
import time

import pytest

from akg.errors import QueryRefused, QueryTimeout
from akg.readonly import lexical_check, run_read_only
from akg_loader.export import state_hash

WRITES = [
    "CREATE (:Intruder)",
    "MERGE (:Intruder {a: 1})",
    "MATCH (n:Entity) SET n.hacked = true",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n:Entity) REMOVE n.name",
    "CREATE INDEX evil IF NOT EXISTS FOR (n:Intruder) ON (n.y)",
    "DROP CONSTRAINT entity_name_unique",
    "/* a comment first */ CREATE (:Intruder)",
    "// a line comment\nCREATE (:Intruder)",
    "match (n:Entity) with n limit 1 create (m:Intruder)",
    "MATCH (n:Entity) WITH n LIMIT 1 CALL { WITH n SET n.hacked = true } RETURN n.name",
    "MATCH (n:Entity) WITH n LIMIT 1 MERGE (n)-[:HAS_PARENT]->(:Intruder {name: 'x'}) RETURN 1",
    "UNWIND [1, 2] AS x CREATE (:Intruder {v: x})",
    "WITH 1 AS x MERGE (:Intruder)",
    "EXPLAIN CREATE INDEX evil2 IF NOT EXISTS FOR (n:Intruder) ON (n.z)",
    "PROFILE MATCH (n) DETACH DELETE n",
    "MATCH (n) RETURN count(n); CREATE (:Intruder)",
    "FOREACH (x IN [1] | CREATE (:Intruder))",
    "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line",
    "",
    "   // only a comment",
    # procedures can run anything on ArcadeDB: only a list of read procedures is callable
    "CALL do.when(true, 'CREATE INDEX evil3 IF NOT EXISTS FOR (n:Intruder) ON (n.q)', 'RETURN 1', {}) YIELD value RETURN value",
    "MATCH (n) WITH n LIMIT 1 CALL do.when(true, 'DROP CONSTRAINT entity_name_unique', 'RETURN 1', {}) YIELD value RETURN value",
    # a quote inside a comment must not hide what follows
    "/* ' */ DROP CONSTRAINT entity_name_unique // ' */ MATCH (n) RETURN count(n) AS n",
    "MATCH (n) RETURN n // ' \nCREATE (:Intruder)",
    # reading the server's files (its credentials among them)
    "WITH 1 AS x LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line",
    "MATCH (n:Entity) WITH n LIMIT 1 SET n.hacked = true RETURN n.name",
    "RETURN 'unterminated",
    # a procedure's name quoted or split cannot slip past the list of read procedures
    "CALL `do.when`(true, 'DROP CONSTRAINT entity_name_unique', '') YIELD value RETURN value",
    "CALL do.`when`(true, 'CREATE (:Intruder {x: 1})', '') YIELD value RETURN value",
    "CALL `do`.`when`(true, 'CREATE (:Intruder {x: 1})', '') YIELD value RETURN value",
    "MATCH (n) CALL",
]


def _schema(graph) -> tuple:
    indexes = sorted(r["name"] for r in graph.read("SHOW INDEXES"))
    constraints = sorted(r["name"] for r in graph.read("SHOW CONSTRAINTS"))
    return indexes, constraints


@pytest.fixture(scope="module")
def small_graph(graph, akg_dir):
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file

    graph.write("MATCH (e:Entity) DETACH DELETE e")
    ingest(graph, [read_file(akg_dir / "AKG_test.tsv")])
    return graph


@pytest.mark.parametrize("text", WRITES)
def test_writes_are_refused_and_change_nothing(small_graph, run_cli, text):
    version, schema = state_hash(small_graph), _schema(small_graph)
    res = run_cli("query", text)
    assert res.exit_code == 1
    assert "Error:" in res.output and "Traceback" not in res.output
    with pytest.raises(QueryRefused):
        run_read_only(small_graph, text)
    assert state_hash(small_graph) == version
    assert _schema(small_graph) == schema
    assert small_graph.read("MATCH (n:Intruder) RETURN count(n) AS n")[0]["n"] == 0
    assert small_graph.read("MATCH (n:Entity) WHERE n.hacked RETURN count(n) AS n")[0]["n"] == 0
    assert "Intruder" not in {r["label"] for r in small_graph.read("CALL db.labels()")}


def test_a_write_that_passes_the_first_layer_is_rolled_back(small_graph, monkeypatch):
    """Defence in depth: with the lexical layer switched off, the transaction layer still refuses."""
    import akg.readonly as ro

    monkeypatch.setattr(ro, "lexical_check", lambda text: None)
    version = state_hash(small_graph)
    with pytest.raises(QueryRefused, match="rolled back"):
        ro.run_read_only(small_graph, "MATCH (n:Entity) WITH n LIMIT 3 SET n.hacked = true RETURN n.name AS name")
    with pytest.raises(QueryRefused, match="rolled back"):
        ro.run_read_only(small_graph, "MATCH (n:Entity) WITH n LIMIT 1 CALL { WITH n CREATE (:Intruder) } RETURN 1 AS one")
    assert state_hash(small_graph) == version
    assert small_graph.read("MATCH (n:Entity) WHERE n.hacked RETURN count(n) AS n")[0]["n"] == 0
    assert small_graph.read("MATCH (n:Intruder) RETURN count(n) AS n")[0]["n"] == 0


def test_read_procedures_and_subqueries_are_allowed(small_graph):
    assert "Entity" in {r["label"] for r in run_read_only(small_graph, "CALL db.labels()").rows}
    assert "Entity" in {r["label"] for r in run_read_only(small_graph, "CALL `db.labels`()").rows}
    res = run_read_only(small_graph, "MATCH (n:Entity) WITH n LIMIT 2 CALL { WITH n RETURN n.name AS nm } RETURN nm")
    assert len(res.rows) == 2


def test_keywords_inside_strings_are_not_writes(small_graph):
    lexical_check("MATCH (e:Entity) WHERE e.name = 'create index; drop' RETURN count(e) AS n")
    res = run_read_only(small_graph, "MATCH (e:Entity) WHERE e.name <> 'CREATE (x)' RETURN count(e) AS n")
    assert res.rows[0]["n"] > 0


def test_read_with_parameter_table_and_json(small_graph, run_cli):
    q = "MATCH (:Entity {name: $name})-[r]->(t) RETURN type(r) AS rel, t.name AS tail ORDER BY rel, tail"
    expected = small_graph.read(q, {"name": "bassoon"})
    assert expected, "AKG_test has facts about bassoon"
    res = run_cli("query", q, "--param", "name=bassoon", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["columns"] == ["rel", "tail"]
    assert out["rows"] == expected and out["truncated"] is False
    table = run_cli("query", q, "-p", "name=bassoon")
    assert table.exit_code == 0 and "PRODUCES" in table.stdout and "music" in table.stdout


def test_nodes_and_paths_are_serialised(small_graph):
    res = run_read_only(small_graph, "MATCH p = (e:Entity {name: 'bassoon'})-[r]->(t) RETURN e, r, p LIMIT 1")
    row = res.rows[0]
    assert row["e"]["labels"] == ["Entity"] and row["e"]["properties"]["name"] == "bassoon"
    assert row["r"]["start"] == "bassoon" and "status" in row["r"]["properties"]
    assert len(row["p"]["nodes"]) == 2 and len(row["p"]["relationships"]) == 1


def test_row_limit_truncates(small_graph, run_cli):
    res = run_cli("query", "MATCH (e:Entity) RETURN e.name AS name", "--limit", "7", "--json")
    out = json.loads(res.stdout)
    assert out["row_count"] == 7 and out["truncated"] is True


def test_timeout_abandons_a_slow_query(small_graph):
    slow = "UNWIND range(1, 8000000) AS x UNWIND range(1, 4) AS y WITH x, y WHERE (x * y) % 7 = 0 RETURN count(*) AS n"
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="0.5 s limit"):
        run_read_only(small_graph, slow, timeout=0.5)
    assert time.monotonic() - started < 5
    # abandoned queries still occupy the server: a second one may start, a third is refused...
    with pytest.raises(QueryTimeout):
        run_read_only(small_graph, slow, timeout=0.5)
    with pytest.raises(QueryRefused, match="still running"):
        run_read_only(small_graph, "RETURN 1 AS one")
    # ...until they have ended
    deadline = time.monotonic() + 120
    while True:
        try:
            assert run_read_only(small_graph, "RETURN 1 AS one").rows == [{"one": 1}]
            break
        except QueryRefused:
            assert time.monotonic() < deadline, "the abandoned queries never ended"
            time.sleep(0.2)


def test_bad_cypher_is_a_clear_error(small_graph, run_cli):
    res = run_cli("query", "MATCH (n RETURN n")
    assert res.exit_code == 1 and "Error:" in res.output and "Traceback" not in res.output
    res = run_cli("query", "MATCH (n) RETURN n", "--param", "oops")
    assert res.exit_code == 2 and "NAME=VALUE" in res.output
