"""Property-based fuzzing of the read-only gate against the real server.

Queries are generated from pieces that have fooled Cypher gates before: comments of every form
with quotes, escapes, comment markers and line terminators inside, strings with escapes, Unicode
whitespace and invisible characters, case games, numbers glued to words, around write clauses,
schema commands, writing procedures and file reads. Each runs through the whole gate
(`run_read_only` on the read-only connection). Whatever it answers, afterwards the schema (indexes,
constraints, labels, relationship types), the data and the graph's version are as before, and no
answer (rows or error) holds any byte of the files it tried to read.

AKG_FUZZ_EXAMPLES sets how many queries each run tries (default 200; it runs twice, with every layer
and with the lexical gate off; the closing note of issue 11 gives a larger run). Cases worth
keeping go into tests/corpus/console_attacks.json, which tests/test_query_gate.py runs every time.
"""

from __future__ import annotations

import os
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akg.errors import AkgError
from akg.readonly import run_read_only
from helpers import snapshot

EXAMPLES = int(os.environ.get("AKG_FUZZ_EXAMPLES", "200"))  # per run; two runs (all layers, server layers)
SECRET = f"AKG-FUZZ-SECRET-{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "secret.csv"
    path.write_text(f"{SECRET}\n{SECRET},{SECRET}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fuzz_graph(graph, mini_dir):
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from helpers import wipe

    wipe(graph)
    ingest(graph, [read_file(mini_dir / "mini_akg_test.tsv")])
    return graph


LEADS = ["MATCH (n:Entity) WITH n LIMIT 1", "WITH 1 AS x", "RETURN 1 AS a", "UNWIND [1] AS u",
         "OPTIONAL MATCH (n:Entity) WITH n LIMIT 1", "CALL db.labels() YIELD label WITH label LIMIT 1",
         "MATCH (n:Entity)-[r]->(m) WITH n, r, m LIMIT 1", ""]
TERMINATORS = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\u0085", "\f", "\v", "\x1c", "\x00"]
SPACES = [" ", "\t", "\u00a0", "\u200b", "\u3000", "\ufeff", "\u202e", "\u2066", ""]
NOISE = ["'", '"', "`", "\\", "\\'", "*/", "/*", "//", ";", "{", "}", "(", ")", "$", "x", "CREATE"]


def payloads(secret_path: str) -> list[str]:
    return [
        "CREATE (:FuzzIntruder)", "CREATE (:Entity {name: 'fuzz intruder'})", "SET n.hacked = true",
        "MERGE (:FuzzIntruder)", "DETACH DELETE n", "REMOVE n:Entity", "REMOVE n.name", "DELETE r",
        "DROP CONSTRAINT entity_name_unique", "DROP INDEX `Entity[name]`",
        "CREATE INDEX fuzz_idx IF NOT EXISTS FOR (z:FuzzIntruder) ON (z.q)",
        f"LOAD CSV FROM 'file://{secret_path}' AS l RETURN l",
        "LOAD CSV FROM 'file:///etc/hostname' AS l RETURN l",
        "CALL do.when(true, 'CREATE (:FuzzIntruder)', '') YIELD value RETURN value",
        "CALL do.when(true, 'DROP CONSTRAINT entity_name_unique', '') YIELD value RETURN value",
        "FOREACH (i IN [1] | CREATE (:FuzzIntruder))", "CALL { CREATE (:FuzzIntruder) } RETURN 1 AS c",
        "RETURN 1 AS b", "SHOW USERS", "TERMINATE TRANSACTIONS 'x'",
    ]


def case_games(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.lower(), word.title(), word.replace("S", "\u017f").replace("s", "\u017f")])


def pieces(secret_path: str) -> st.SearchStrategy[str]:
    comment_body = st.lists(st.sampled_from(NOISE + TERMINATORS + SPACES + [" a "]), max_size=5).map("".join)
    return st.one_of(
        st.sampled_from(payloads(secret_path)),
        st.sampled_from(payloads(secret_path)).flatmap(
            lambda p: case_games(p.split(" ", 1)[0]).map(lambda w: w + (" " + p.split(" ", 1)[1] if " " in p else ""))),
        st.tuples(st.sampled_from(["//", "/*"]), comment_body, st.sampled_from(TERMINATORS + ["*/", ""]))
          .map("".join),
        st.tuples(st.sampled_from(["'", '"']), comment_body, st.sampled_from(["'", '"', ""])).map("".join),
        st.sampled_from(SPACES + TERMINATORS),
        st.sampled_from(["1e5", "0xFF", "1", ".5"]),
        st.sampled_from(NOISE),
    )


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("layers", ["all layers", "server layers alone"])
def test_generated_queries_never_write_or_read_files(fuzz_graph, reader, secret_file, server_env, monkeypatch, layers):
    """With every layer, and again with the lexical gate switched off: the read-only connection and
    the rolled-back transaction must hold by themselves."""
    if layers == "server layers alone":
        from akg import readonly

        monkeypatch.setattr(readonly, "checked_text", lambda text: text)
    tried = {"queries": 0, "answered": 0, "refused": 0}
    import json

    credentials = server_env.home / "credentials.json"  # the embedded server's; Neo4j's is in the environment
    passwords = [v for v in (json.loads(credentials.read_text(encoding="utf-8")).values() if credentials.exists()
                             else [server_env.password]) if v and len(v) > 8]
    before = snapshot(fuzz_graph)
    secret_path = str(secret_file)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(lead=st.sampled_from(LEADS), middle=st.lists(pieces(secret_path), min_size=1, max_size=6))
    def one(lead: str, middle: list[str]) -> None:
        text = lead + " " + "".join(middle)
        tried["queries"] += 1
        try:
            answer = repr(run_read_only(reader, text, timeout=5).rows)
            tried["answered"] += 1
        except AkgError as e:
            answer = str(e)
            tried["refused"] += 1
        assert SECRET not in answer, f"file content returned for {text!r}"
        assert not any(p in answer for p in passwords), f"credentials returned for {text!r}"
        assert snapshot(fuzz_graph) == before, f"the graph changed after {text!r}"

    one()
    print(f"\nfuzzed the read-only gate ({layers}) with {tried['queries']} queries: {tried['answered']} answered, "
          f"{tried['refused']} refused")
    assert tried["queries"] >= EXAMPLES * 0.9
