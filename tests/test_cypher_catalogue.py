"""Every named query in cypher/ runs against the real server; the loader and migrations behave."""

from __future__ import annotations

import pytest

from akg import migrations, queries
from akg.errors import AkgError, InputError
from akg.relations import RELATIONS, cypher_type, type_of
from helpers import wipe


@pytest.fixture(scope="module")
def loaded_graph(graph, akg_dir):
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file

    wipe(graph)
    ingest(graph, [read_file(akg_dir / "AKG_pruned.tsv"), read_file(akg_dir / "AKG_test.tsv")])
    return graph


CATALOGUE = queries.catalogue()


def test_catalogue_is_not_empty_and_documented():
    assert len(CATALOGUE) >= 20
    for q in CATALOGUE.values():
        params = set(__import__("re").findall(r"\$(\w+)", q.text))
        missing = params - set(q.example)
        assert not missing, f"{q.name} ({q.source}) has no example value for {missing}"
        if q.needs_relation:
            assert "relation" in q.example, f"{q.name} needs an example relation"


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_query_runs_on_the_real_server(loaded_graph, name):
    q = CATALOGUE[name]
    params = dict(q.example)
    relation = params.pop("relation", None)
    is_write = any(w in q.text.upper().split() for w in ("CREATE", "MERGE", "SET", "DELETE"))
    if is_write:
        loaded_graph.write(q, params, relation=relation)
    else:
        loaded_graph.read(q, params, relation=relation)


def test_people_queries_give_sensible_answers(loaded_graph):
    hood = loaded_graph.read(queries.get("entity_neighbourhood"), {"name": "dog", "limit": 500})
    assert {r["direction"] for r in hood} == {"in", "out"}
    assert all(r["status"] and r["sources"] for r in hood)
    paths = loaded_graph.read(queries.get("taxonomy_path"), {"name": "dog barking", "depth": 6})
    assert paths and all(p["path"][0] == "dog barking" and len(p["path"]) == p["hops"] + 1 for p in paths)
    assert any("dog" in p["path"] for p in paths)
    cov = loaded_graph.read(queries.get("label_coverage"), {"labels": ["dog", "rain", "no such label"]})[0]
    assert (cov["labels"], cov["covered"], cov["missing"]) == (3, 2, ["no such label"])
    hist = loaded_graph.read(queries.get("relation_histogram"))
    assert sum(r["n"] for r in hist) == 18348 + 2039
    assert [r["n"] for r in hist] == sorted((r["n"] for r in hist), reverse=True)
    found = loaded_graph.read(queries.get("entity_search"), {"text": "dog", "limit": 5})
    assert found[0]["name"] == "dog" and all("dog" in r["name"] for r in found)


def test_relationship_types_only_from_the_allowlist():
    assert cypher_type("has parent") == "`HAS_PARENT`"
    assert cypher_type("HAS_PARENT") == "`HAS_PARENT`"
    assert type_of("co-occurs with") == "CO_OCCURS_WITH"
    assert len({type_of(r) for r in RELATIONS}) == 47
    for evil in ("HAS_PARENT`]->() DETACH DELETE n //", "has parnt", "x"):
        with pytest.raises(InputError):
            cypher_type(evil)
    with pytest.raises(InputError, match="did you mean 'has parent'"):
        cypher_type("has parnt")
    with pytest.raises(AkgError, match="needs a relation"):
        queries.get("triple_properties").render()


def test_parser_names_blocks_and_refuses_duplicates():
    parsed = queries.parse("// file comment\n// name: a\n// example: {\"x\": 1}\nRETURN $x\n\n// name: b\nRETURN 2\n", "t.cypher")
    assert [(q.name, q.text, q.example) for q in parsed] == [("a", "RETURN $x", {"x": 1}), ("b", "RETURN 2", {})]
    with pytest.raises(AkgError, match="empty"):
        queries.parse("// name: a\n", "t.cypher")


def test_migrations_recorded_and_idempotent(graph):
    ids = [m.id for m in migrations.all_migrations()]
    assert ids == sorted(ids) and ids[0] == 1
    assert migrations.applied(graph) == set(ids)
    assert migrations.apply(graph) == []
    constraints = {r["name"] for r in graph.read("SHOW CONSTRAINTS")}
    assert "entity_name_unique" in constraints
    with pytest.raises(AkgError):  # the constraint holds
        graph.write("UNWIND ['dup-x', 'dup-x'] AS n CREATE (:Entity {name: n})")
    assert graph.read("MATCH (e:Entity {name: 'dup-x'}) RETURN count(e) AS n")[0]["n"] == 0
