"""One set of rules for every name on every write path (akg.names): refused with a one-line error naming
where, nothing written; one normal form; `akg check` for names already in the graph; and the ingest
guards that go with them (a test file cannot move training triples; a killed ingest says what it did)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from akg.hashing import set_version
from akg.names import MAX_LENGTH, normalise_name
from helpers import snapshot, wipe

CORPUS = json.loads((Path(__file__).parent / "corpus" / "bad_names.json").read_text(encoding="utf-8"))
BAD = [(c["why"], c["name"] * c.get("times", 1)) for c in CORPUS]
HEADER = "label_name\thead\trelation\ttail\tresponse\n"


def one_line_error(res) -> str:
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in res.output, res.output
    return lines[0]


@pytest.fixture(scope="module")
def dog_graph(graph):
    wipe(graph)
    graph.write("CREATE (:Entity {name: 'dog'})")
    return graph


@pytest.mark.parametrize("why,name", BAD, ids=[w for w, _ in BAD])
def test_bad_names_are_refused_by_curate_add(dog_graph, run_cli, why, name):
    before = snapshot(dog_graph)
    for head, tail in ((name, "dog"), ("dog", name)):
        line = one_line_error(run_cli("curate", "add", head, "has parent", tail, "--by", "tester"))
        assert len(line) < 400  # the name is cut in the message, never echoed whole
    assert snapshot(dog_graph) == before


@pytest.mark.parametrize("why,name", BAD, ids=[w for w, _ in BAD])
def test_bad_names_are_refused_by_strict_ingest(dog_graph, run_cli, tmp_path, why, name):
    before = snapshot(dog_graph)
    path = tmp_path / "names_raw.tsv"
    path.write_bytes((HEADER + "dog\tdog\thas parent\tanimal\tYes.\n"
                      + f"x\t{name}\thas parent\tanimal\tYes.\n").encode("utf-8"))
    line = one_line_error(run_cli("ingest", str(path), "--strict"))
    assert f"{path}, line 3" in line and len(line) < 400
    assert snapshot(dog_graph) == before


def test_a_bad_name_in_an_edit_or_a_decisions_file_is_refused(dog_graph, run_cli, tmp_path):
    assert run_cli("curate", "add", "dog barking", "has parent", "dog", "--by", "tester").exit_code == 0
    before = snapshot(dog_graph)
    line = one_line_error(run_cli("curate", "edit", "dog barking|has parent|dog", "--tail", "", "--by", "tester"))
    assert "empty" in line
    line = one_line_error(run_cli("curate", "edit", "dog barking|has parent|dog", "--tail", "a\u202eb", "--by", "t"))
    assert "U+202E" in line
    decisions = tmp_path / "decisions.tsv"
    decisions.write_text("head\trelation\ttail\tdecision\tnew_tail\n"
                         "dog barking\thas parent\tdog\tedit\tcanine\n"
                         "puppy\thas parent\tdo|g\tadd\t\n", encoding="utf-8")
    line = one_line_error(run_cli("curate", "apply", str(decisions), "--by", "tester"))
    assert f"{decisions}, line 3" in line and "'|'" in line
    assert snapshot(dog_graph) == before  # all or nothing: the good edit on line 2 was not applied either


def test_one_normal_form(dog_graph, run_cli, tmp_path):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert normalise_name(decomposed) == composed and normalise_name(" Dog_Barking ") == "dog barking"
    path = tmp_path / "cafe_raw.tsv"
    path.write_text(HEADER + f"x\t{composed}\toccurs in\tcity\tYes.\nx\t{decomposed.upper()}\toccurs in\tcity\tYes.\n",
                    encoding="utf-8")
    res = run_cli("ingest", str(path), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["triples"] == 1
    names = {r["name"] for r in dog_graph.read("MATCH (e:Entity) WHERE e.name STARTS WITH 'caf' RETURN e.name AS name")}
    assert names == {composed}
    assert all(unicodedata.is_normalized("NFC", n) for n in names)
    assert run_cli("curate", "add", decomposed, "has parent", "Dog", "--by", "tester").exit_code == 0
    assert dog_graph.read("MATCH (:Entity {name: $c})-[r:HAS_PARENT]->(:Entity {name: 'dog'}) RETURN count(r) AS n",
                          {"c": composed})[0]["n"] == 1


def test_the_longest_allowed_name_is_accepted(dog_graph, run_cli):
    long_name = "x" * MAX_LENGTH
    assert run_cli("curate", "add", long_name, "has parent", "dog", "--by", "tester").exit_code == 0


def test_check_reports_names_written_around_the_rules(graph, run_cli):
    wipe(graph)
    graph.write("CREATE (:Entity {name: 'dog'}), (:Entity {name: 'a\\nb'})-[:HAS_PARENT {status: 'accepted'}]->"
                "(:Entity {name: 'cafe\u0301'}), (:Entity {name: $long})", {"long": "y" * 1000})
    res = run_cli("check", "--json")
    assert res.exit_code == 1
    found = {f["name"]: f for f in json.loads(res.stdout)["bad_names"]}
    assert set(found) == {"a\nb", "cafe\u0301", "y" * 1000}
    assert "control character" in found["a\nb"]["problem"] and found["a\nb"]["triples"] == 1
    assert "normal form" in found["cafe\u0301"]["problem"]
    assert "1,000 characters" in found["y" * 1000]["problem"]
    wipe(graph)
    graph.write("CREATE (:Entity {name: 'dog'})")
    res = run_cli("check")
    assert res.exit_code == 0 and "keeps the rules" in res.output


def test_a_test_file_cannot_silently_move_training_triples(graph, run_cli, tmp_path):
    wipe(graph)
    train = tmp_path / "mine_raw.tsv"
    train.write_text(HEADER + "x\tdog\thas parent\tanimal\tYes.\nx\tcat\thas parent\tanimal\tYes.\n", encoding="utf-8")
    assert run_cli("ingest", str(train)).exit_code == 0
    test = tmp_path / "mine_test.tsv"
    test.write_text(HEADER + "x\towl\thas parent\tbird\tYes.\nx\tcat\thas parent\tanimal\tYes.\n", encoding="utf-8")
    before = snapshot(graph)
    line = one_line_error(run_cli("ingest", str(test)))
    assert f"{test}, line 3" in line and "cat|has parent|animal" in line and "--move-split" in line
    assert snapshot(graph) == before
    res = run_cli("ingest", str(test), "--move-split", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["moved_to_test"] == 1
    splits = {r["head"]: r["split"] for r in graph.read("MATCH (h:Entity)-[r]->() RETURN h.name AS head, r.split AS split")}
    assert splits == {"dog": "train", "cat": "test", "owl": "test"}


def test_a_killed_ingest_says_what_it_wrote_and_the_next_run_checkpoints_it(graph, server_env, akg_dir):
    """kill -9 in the middle of a real `akg ingest`: its change counts the triples it wrote, and the next
    ingest leaves a version checkpoint naming the accepted triples the killed one left."""
    wipe(graph)
    env = {**os.environ, "AKG_HOME": str(server_env.home)}
    proc = subprocess.Popen([sys.executable, "-c", "from akg.cli import main; main()", "ingest",
                             str(akg_dir / "AKG_raw.tsv"), "--batch-size", "500"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not graph.read("MATCH (c:Change {action: 'ingest'}) WHERE c.triples >= 2000 RETURN c.id AS id"):
        assert proc.poll() is None and time.monotonic() < deadline, "the ingest ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    change = graph.read("MATCH (c:Change {action: 'ingest'}) RETURN c.id AS id, c.triples AS triples, c.summary AS summary")
    written = graph.read("MATCH ()-[r]->() WHERE r.status IS NOT NULL RETURN count(r) AS n")[0]["n"]
    assert len(change) == 1 and change[0]["summary"] is None
    assert 0 < written < 49215 and change[0]["triples"] == written
    accepted = graph.read("MATCH (h:Entity)-[r {status: 'accepted'}]->(t:Entity) RETURN h.name AS h, r.relation AS r, t.name AS t")
    left = set_version((x["h"], x["r"], x["t"]) for x in accepted)

    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file

    ingest(graph, [read_file(akg_dir / "AKG_raw.tsv")])
    versions = graph.read("MATCH (v:Version) RETURN v.version AS version, v.cause AS cause, v.change AS change")
    assert any(v["version"] == left and "interrupted" in v["cause"] and v["change"] == change[0]["id"]
               for v in versions), versions


# -- names of things kept as folders or settings: the whole string, a final newline included --------------


def test_a_final_newline_is_refused_in_every_name_a_user_gives(tmp_path, monkeypatch):
    """`re.match(r"^...$")` lets "name\\n" through (`$` matches before a final newline); every check is whole."""
    from click.testing import CliRunner

    from akg.cli import cli
    from akg.config import Settings
    from akg.errors import ConfigError, InputError
    from akg.names import folder_name
    from akg_loader.tsv import infer_source
    from kge.store import check_new_name
    from service.tokens import add

    assert folder_name("tones-2.b_c", what="index name") == "tones-2.b_c"
    for bad in ("tones\n", "tones\r\n", "\ntones", "../x", ".hidden", "a b", "x" * 65, "", None, 3):
        with pytest.raises(InputError, match="index name"):
            folder_name(bad, what="index name")
    with pytest.raises(InputError, match=r"model name 'm\\n'"):
        check_new_name("m\n", tmp_path)
    with pytest.raises(InputError, match="not a token name"):
        add(tmp_path, "alice\n")
    assert not (tmp_path / "tokens.json").exists()
    with pytest.raises(InputError, match="source name"):
        infer_source(Path("x.tsv"), "ra w")
    for var, value in (("AKG_DATABASE", "akg\n"), ("AKG_SERVER_HEAP", "2g\n")):
        with pytest.raises(ConfigError, match=var):
            Settings.from_env({"AKG_HOME": str(tmp_path / "home"), var: value})

    # As a user meets it: `akg index DIR --name $'tones\n'` is one line, and no folder is made.
    monkeypatch.setenv("AKG_HOME", str(tmp_path / "home"))
    (tmp_path / "clips").mkdir()
    res = CliRunner().invoke(cli, ["index", str(tmp_path / "clips"), "--name", "tones\n"])
    assert "index name 'tones\\n'" in one_line_error(res)
    assert not (tmp_path / "home" / "indexes").exists()


def test_no_pattern_checks_a_whole_string_with_match_and_dollar():
    """The guard behind the test above: a `^...$` pattern in the packages is how the bug looked."""
    import re

    repo = Path(__file__).resolve().parents[1]
    anchored = re.compile(r"""re\.(?:compile|match)\(\s*r?(["'])\^.*?(?<!\\)\$\1""")
    found = [f"{p.relative_to(repo)}:{n}" for p in repo.rglob("*.py")
             if not {".venv", "tests", "bench"} & set(p.relative_to(repo).parts)
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if anchored.search(line) and not line.lstrip().startswith("#")]
    assert not found, f"use fullmatch without ^ and $ (they let a final newline through): {found}"
