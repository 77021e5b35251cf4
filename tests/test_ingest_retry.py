"""The ingest's duplicate-key retry (akg_loader.ingest._write_with_retry), triggered for real.

On one machine the embedded server's ingests are serialised by a file lock in its home
(`Graph.exclusive`), so two `akg ingest` there never race. Two machines reaching the same server
through AKG_URI have no shared lock: ArcadeDB's optimistic transactions then let both see an entity
missing and both create it, and the second commit fails on the unique name ("Duplicated key"; on a
graph never ingested into, first on the ingest lock node's key). That batch is retried and must
then write only what is still missing. This test makes that happen with two connections made as
such a second machine makes them (AKG_URI, no file lock), ingesting files that share their new
entities at the same moment, until the retry's log record (INFO, akg_loader.ingest) names the
clashing key; the graph must then hold exactly the entities and triples computed from the files'
text, each once.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from akg.config import Settings
from akg.connect import connect, embedded_server
from akg_loader.ingest import ingest
from akg_loader.tsv import read_file

pytestmark = pytest.mark.embedded_only  # Neo4j serialises ingests on the lock node: no duplicate key to retry

HEADER = "label_name\thead\trelation\ttail\tresponse\n"
RELATIONS = ("has parent", "occurs in", "produces", "co-occurs with")
ROUNDS = 15  # each round races two ingests; here the retry showed in the first round of every run


def _remote_settings(server_env: Settings) -> Settings:
    """How a second machine reaches the session's embedded server: AKG_URI and its credentials."""
    server = embedded_server(server_env)
    state = server.ensure_running()
    user, password = server.credentials()
    return Settings.from_env({"AKG_URI": state.bolt_uri, "AKG_USER": user, "AKG_PASSWORD": password,
                              "AKG_DATABASE": server_env.database, "AKG_HOME": str(server_env.home)})


def _files(folder: Path, round_: int) -> list[Path]:
    """Two files about the same 60 new entities: some triples in both, some in one only."""
    names = [f"race {round_} entity {i}" for i in range(60)]
    a, b = [], []
    for i, head in enumerate(names):
        for k, relation in enumerate(RELATIONS):
            tail = names[(i + 1 + k) % len(names)]
            row = f"{head}\t{head}\t{relation}\t{tail}\tYes.\n"
            if (i + k) % 3 == 0:
                a.append(row)
            elif (i + k) % 3 == 1:
                b.append(row)
            else:
                a.append(row)
                b.append(row)
    paths = [folder / f"race_{round_}_a_pruned.tsv", folder / f"race_{round_}_b_pruned.tsv"]
    for path, rows in zip(paths, (a, b)):
        path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return paths


def _expected(paths: list[Path]) -> tuple[int, dict[str, int]]:
    """Entities and triples per relation, straight from the files' text (not through the loader)."""
    triples = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            _, head, relation, tail, _ = line.split("\t")
            triples.add((head, relation, tail))
    entities = {n for h, _, t in triples for n in (h, t)}
    per_relation: dict[str, int] = {}
    for _, relation, _ in triples:
        per_relation[relation] = per_relation.get(relation, 0) + 1
    return len(entities), per_relation


def _race(settings: Settings, paths: list[Path]) -> list:
    """Ingest each file on its own connection, both starting together; return the summaries."""
    graphs = [connect(settings) for _ in paths]
    start = threading.Barrier(len(paths))
    summaries: list = [None] * len(paths)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            parsed = [read_file(paths[i])]
            start.wait(timeout=60)
            summaries[i] = ingest(graphs[i], parsed, batch_size=40)
        except BaseException as e:  # reported below
            errors.append(e)

    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(paths))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        for g in graphs:
            g.close()
    assert not errors, errors
    return summaries


@pytest.mark.parametrize("clash", ["entity", "lock"], ids=["same-new-entities", "first-ingest-ever"])
def test_racing_ingests_retry_on_a_duplicate_key_and_write_each_triple_once(empty_graph, server_env, tmp_path,
                                                                             caplog, clash):
    """`entity`: the ingest lock node exists (as after any ingest), both runs create the same new
    entities. `lock`: a graph that was never ingested into, both runs also create the lock node."""
    graph = empty_graph
    settings = _remote_settings(server_env)
    caplog.set_level(logging.INFO, logger="akg_loader.ingest")
    all_paths: list[Path] = []
    retried: list[str] = []
    for round_ in range(ROUNDS):
        if clash == "lock":
            graph.write("MATCH (l:IngestLock) DELETE l")
        else:
            graph.write("MERGE (l:IngestLock {id: 1})")
        paths = _files(tmp_path, round_)
        all_paths += paths
        summaries = _race(settings, paths)
        round_entities, round_triples = _expected(paths)
        # nothing written twice: together the two runs created each entity and triple once
        assert sum(x.entities_created for x in summaries) == round_entities
        assert sum(x.triples_created for x in summaries) == sum(round_triples.values())
        key = f"race {round_} entity" if clash == "entity" else "IngestLock"
        retried = [r.getMessage() for r in caplog.records
                   if "created the same key first" in r.getMessage() and "Duplicated key" in r.getMessage()
                   and key in r.getMessage()]
        if retried:
            break
    assert retried, f"no ingest hit a duplicate key ({clash}) in {ROUNDS} rounds of two racing ingests"

    entities, per_relation = _expected(all_paths)
    assert graph.read("MATCH (e:Entity) RETURN count(e) AS n")[0]["n"] == entities
    assert graph.read("MATCH (e:Entity) WITH e.name AS name, count(*) AS c WHERE c > 1 RETURN count(*) AS n")[0]["n"] == 0
    found = {r["relation"]: r["n"] for r in graph.read(
        "MATCH (:Entity)-[r]->(:Entity) RETURN r.relation AS relation, count(r) AS n")}
    assert found == per_relation
    duplicated = graph.read("MATCH (h:Entity)-[r]->(t:Entity) WITH h, type(r) AS ty, t, count(r) AS c "
                            "WHERE c > 1 RETURN count(*) AS n")[0]["n"]
    assert duplicated == 0
    assert graph.read("MATCH (l:IngestLock) RETURN count(l) AS n")[0]["n"] == 1
