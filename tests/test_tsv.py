"""The TSV reader: both layouts, normalisation, provenance hints, and every bad input named by
file, line and problem. Unit tests need no server; the CLI tests at the end use the real one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from akg.errors import InputError
from akg_loader.tsv import read_file

HEADER = "label_name\thead\trelation\ttail\tresponse\n"


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def akg(tmp_path: Path, rows: str, name: str = "mini_raw.tsv") -> Path:
    return write(tmp_path / name, HEADER + rows)


def rel_count(graph) -> int:
    return graph.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]


def ent_count(graph) -> int:
    return graph.read("MATCH (e:Entity) RETURN count(e) AS n")[0]["n"]


# ---------------------------------------------------------------------------------------------
# Good inputs
# ---------------------------------------------------------------------------------------------

def test_akg_five_column_file_with_header(tmp_path):
    path = akg(tmp_path, "dog\tdog\thas parent\tanimal\tYes.\n"
                         "dog\tdog\toccurs in\tmoon\tNo.\n")
    parsed = read_file(path)
    assert parsed.layout == "akg"
    assert parsed.source == "raw" and parsed.split == "train"
    assert [(r.line, r.key, r.verdict, r.status) for r in parsed.rows] == [
        (2, ("dog", "has parent", "animal"), "yes", "accepted"),
        (3, ("dog", "occurs in", "moon"), "no", "rejected"),
    ]
    assert parsed.rejected == [] and parsed.duplicates == 0 and parsed.notes == []


def test_pykeen_three_column_headerless_file(tmp_path):
    path = write(tmp_path / "train_raw.tsv", "dog\thas parent\tanimal\ncat\tproduces\tmeow\n")
    parsed = read_file(path)
    assert parsed.layout == "triples"
    # the first line is data, not a header: both rows are kept, with their real line numbers
    assert [(r.line, r.key) for r in parsed.rows] == [
        (1, ("dog", "has parent", "animal")), (2, ("cat", "produces", "meow"))]
    assert all(r.verdict is None and r.status == "accepted" for r in parsed.rows)


def test_three_column_file_with_header(tmp_path):
    path = write(tmp_path / "train_raw.tsv", "head\trelation\ttail\ndog\thas parent\tanimal\n")
    parsed = read_file(path)
    assert parsed.layout == "triples"
    assert [(r.line, r.key) for r in parsed.rows] == [(2, ("dog", "has parent", "animal"))]
    assert parsed.rejected == []


def test_names_are_normalised(tmp_path):
    path = akg(tmp_path, "x\t  Tom_Tom  \thas parent\t CAFÉ \tYes.\n"
                         "x\tcafé\tis_sound_of\tcoffee_Machine\tYes.\n")
    parsed = read_file(path)
    assert [r.key for r in parsed.rows] == [
        ("tom tom", "has parent", "café"),
        ("café", "is sound of", "coffee machine"),
    ]


def test_relations_are_normalised(tmp_path):
    path = write(tmp_path / "t_raw.tsv", "a\tHas_Parent\tb\na\t  CO-OCCURS  with \tc\n")
    assert [r.relation for r in read_file(path).rows] == ["has parent", "co-occurs with"]


@pytest.mark.parametrize("response, verdict, status", [
    ("Yes.", "yes", "accepted"), ("No.", "no", "rejected"), ("yes", "yes", "accepted"), (" NO. ", "no", "rejected"),
])
def test_verdict_sets_status(tmp_path, response, verdict, status):
    path = akg(tmp_path, f"a\ta\thas parent\tb\t{response}\n")
    (row,) = read_file(path).rows
    assert (row.verdict, row.status) == (verdict, status)


def test_duplicates_counted_not_kept_twice(tmp_path):
    path = akg(tmp_path, "a\ta\thas parent\tb\tYes.\n"
                         "a\tA\thas_parent\tB \tYes.\n"      # the same triple once normalised
                         "a\ta\thas parent\tb\tYes.\n"
                         "a\ta\thas parent\tc\tYes.\n")
    parsed = read_file(path)
    assert [r.key for r in parsed.rows] == [("a", "has parent", "b"), ("a", "has parent", "c")]
    assert parsed.rows[0].line == 2  # the first occurrence is the one kept
    assert parsed.duplicates == 2


def test_repeated_triple_with_conflicting_verdicts_is_accepted(tmp_path):
    # Within a file as across files: a triple is accepted if any of its rows accepts it.
    parsed = read_file(akg(tmp_path, "a\ta\thas parent\tb\tNo.\n" "a\ta\thas parent\tb\tYes.\n"))
    (row,) = parsed.rows
    assert (row.verdict, row.status, parsed.duplicates) == ("yes", "accepted", 1)


@pytest.mark.parametrize("name, source, split", [
    ("AKG_raw.tsv", "raw", "train"), ("AKG_pruned.tsv", "pruned", "train"), ("AKG_test.tsv", "test", "test"),
    ("my_PRUNED_copy.tsv", "pruned", "train"), ("raw-2024.tsv", "raw", "train"), ("AKG_test_v2.tsv", "test", "test"),
])
def test_source_inferred_from_file_name(tmp_path, name, source, split):
    parsed = read_file(akg(tmp_path, "a\ta\thas parent\tb\tYes.\n", name=name))
    assert (parsed.source, parsed.split) == (source, split)


@pytest.mark.parametrize("name", ["latest.tsv", "contest_triples.tsv", "straw.tsv", "unpruned_list.tsv"])
def test_source_not_guessed_from_part_of_a_word(tmp_path, name):
    # 'latest' must not silently put training triples into the held-out test split
    path = akg(tmp_path, "a\ta\thas parent\tb\tYes.\n", name=name)
    with pytest.raises(InputError) as e:
        read_file(path)
    assert e.value.file == str(path) and "--source" in str(e.value)


def test_source_argument_wins(tmp_path):
    path = akg(tmp_path, "a\ta\thas parent\tb\tYes.\n", name="AKG_raw.tsv")
    assert read_file(path, source="Curated").source == "curated"
    parsed = read_file(path, source="test")
    assert (parsed.source, parsed.split) == ("test", "test")
    with pytest.raises(InputError, match="source name 'bad name!'"):
        read_file(path, source="bad name!")


def test_unknown_source_without_source_argument(tmp_path):
    path = akg(tmp_path, "a\ta\thas parent\tb\tYes.\n", name="triples.tsv")
    with pytest.raises(InputError) as e:
        read_file(path)
    assert e.value.file == str(path)
    assert str(path) in str(e.value) and "--source" in str(e.value)
    assert read_file(path, source="mine").source == "mine"


def test_utf8_bom_is_ignored(tmp_path):
    path = write(tmp_path / "bom_raw.tsv", b"\xef\xbb\xbf" + (HEADER + "a\ta\thas parent\tb\tYes.\n").encode())
    parsed = read_file(path)
    assert parsed.layout == "akg" and [r.key for r in parsed.rows] == [("a", "has parent", "b")]


def test_reference_test_file(akg_dir):
    parsed = read_file(akg_dir / "AKG_test.tsv")
    assert (parsed.source, parsed.split, parsed.layout) == ("test", "test", "akg")
    assert parsed.rejected == [] and parsed.notes == []
    assert len(parsed.rows) == 2039


# ---------------------------------------------------------------------------------------------
# Bad files: InputError naming the file (and the line when there is one)
# ---------------------------------------------------------------------------------------------

def _input_error(path: Path, **kw) -> InputError:
    with pytest.raises(InputError) as e:
        read_file(path, **kw)
    assert e.value.file == str(path)
    assert str(e.value).startswith(str(path))
    return e.value


def test_wrong_five_column_header(tmp_path):
    path = write(tmp_path / "x_raw.tsv", "label\thead\tpredicate\ttail\tanswer\na\ta\thas parent\tb\tYes.\n")
    err = _input_error(path)
    assert err.line == 1 and f"{path}, line 1:" in str(err)
    assert "unrecognised header" in str(err) and "label_name" in str(err)


def test_headerless_five_column_file(tmp_path):
    path = write(tmp_path / "x_raw.tsv", "a\ta\thas parent\tb\tYes.\n")
    err = _input_error(path)
    assert err.line == 1 and "unrecognised header" in err.problem


def test_missing_file(tmp_path):
    err = _input_error(tmp_path / "nope_raw.tsv")
    assert "no such file" in err.problem


def test_directory(tmp_path):
    d = tmp_path / "dir_raw.tsv"
    d.mkdir()
    err = _input_error(d)
    assert "directory" in err.problem


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path, content):
    err = _input_error(write(tmp_path / "empty_raw.tsv", content))
    assert "empty" in err.problem


@pytest.mark.parametrize("header", [HEADER, "head\trelation\ttail\n", HEADER + "\n\n"])
def test_header_only_file(tmp_path, header):
    err = _input_error(write(tmp_path / "h_raw.tsv", header))
    assert "header but no rows" in err.problem


def test_bad_header_bytes(tmp_path):
    err = _input_error(write(tmp_path / "x_raw.tsv", b"\xff\xfeh\x00e\x00a\x00d\x00\n"))
    assert err.line == 1 and "NUL byte" in err.problem


# ---------------------------------------------------------------------------------------------
# Bad rows: collected with their line by default, InputError on the first with strict=True
# ---------------------------------------------------------------------------------------------

BAD_ROWS = [
    # (row bytes, what the problem must say)
    (b"a\ta\thas parent\tb\n", "expected 5 tab-separated columns, found 4"),
    (b"a\ta\thas parent\tb\tYes.\textra\n", "expected 5 tab-separated columns, found 6"),
    (b"a\t \thas parent\tb\tYes.\n", "empty 'head' field"),
    (b"a\ta\t\t_\tYes.\n", "empty 'relation', 'tail' field"),
    (b"a\ta\thas parent\tb\t\n", "empty 'response' field"),
    (b"a\tcaf\xff\thas parent\tb\tYes.\n", "not valid UTF-8 (byte 0xff at column 6)"),
    (b"a\ta\x00\thas parent\tb\tYes.\n", "NUL byte at column 4"),
    (b"a\ta\thas parnt\tb\tYes.\n", "unknown relation 'has parnt' (did you mean 'has parent'"),
    (b"a\ta\thas parent\tb\tMaybe.\n", "response must be 'Yes.' or 'No.', found 'Maybe.'"),
]


@pytest.mark.parametrize("row, problem", BAD_ROWS)
def test_bad_row_collected_others_parsed(tmp_path, row, problem):
    path = write(tmp_path / "bad_raw.tsv",
                 HEADER.encode() + b"a\ta\thas parent\tb\tYes.\n" + row + b"c\tc\tproduces\td\tNo.\n")
    parsed = read_file(path)
    assert [(r.line, r.key) for r in parsed.rows] == [
        (2, ("a", "has parent", "b")), (4, ("c", "produces", "d"))]
    (bad,) = parsed.rejected
    assert (bad.file, bad.line) == (str(path), 3)
    assert problem in bad.problem
    assert bad.text == row.rstrip(b"\n").decode("utf-8", "replace")


@pytest.mark.parametrize("row, problem", BAD_ROWS)
def test_bad_row_strict_names_first_bad_line(tmp_path, row, problem):
    path = write(tmp_path / "bad_raw.tsv",
                 HEADER.encode() + b"a\ta\thas parent\tb\tYes.\n" + row + b"c\tc\tproduces\td\tNo.\n" + row)
    err = _input_error(path, strict=True)
    assert err.line == 3 and f"{path}, line 3:" in str(err)
    assert problem in err.problem
    assert "2 bad row(s)" in err.problem and "nothing was written" in err.problem


def test_bad_rows_in_three_column_file(tmp_path):
    path = write(tmp_path / "t_raw.tsv", "a\thas parent\tb\nb\tproduce\tc\nc\td\n\nd\tproduces\t\ne\tfollows\tf\n")
    parsed = read_file(path)
    assert [r.line for r in parsed.rows] == [1, 6]
    assert [(r.line, r.problem) for r in parsed.rejected] == [
        (2, "unknown relation 'produce' (did you mean 'produces', 'produced during'?)"),
        (3, "expected 3 tab-separated columns, found 2"),
        (5, "empty 'tail' field"),
    ]


def test_all_rows_bad_is_not_an_empty_file(tmp_path):
    parsed = read_file(akg(tmp_path, "a\ta\tnot a relation\tb\tYes.\n"))
    assert parsed.rows == [] and [r.line for r in parsed.rejected] == [2]


def test_crlf_accepted_with_note(tmp_path):
    path = write(tmp_path / "win_raw.tsv",
                 (HEADER + "a\ta\thas parent\tb\tYes.\n").replace("\n", "\r\n") + "c\tc\tproduces\td\tNo.\r\n")
    parsed = read_file(path)
    assert [(r.key, r.verdict) for r in parsed.rows] == [
        (("a", "has parent", "b"), "yes"), (("c", "produces", "d"), "no")]
    assert parsed.rejected == []
    (note,) = parsed.notes
    assert note.startswith(f"{path}, line 1:") and "CRLF" in note and "3 line(s)" in note


def test_crlf_from_a_later_line_is_named(tmp_path):
    path = write(tmp_path / "mixed_raw.tsv", HEADER + "a\ta\thas parent\tb\tYes.\nc\tc\tproduces\td\tNo.\r\n")
    (note,) = read_file(path).notes
    assert f"{path}, line 3:" in note
    err = _input_error(path, strict=True)
    assert err.line == 3 and "CRLF" in err.problem


def test_crlf_strict(tmp_path):
    path = write(tmp_path / "win_raw.tsv", (HEADER + "a\ta\thas parent\tb\tYes.\n").replace("\n", "\r\n"))
    err = _input_error(path, strict=True)
    assert err.line == 1 and f"{path}, line 1:" in str(err) and "CRLF" in err.problem


# ---------------------------------------------------------------------------------------------
# `akg ingest` through the CLI, against the real server
# ---------------------------------------------------------------------------------------------

GOOD = "a\ta\thas parent\tb\tYes.\nc\tc\tproduces\td\tNo.\n"
MIXED = "x\tx\thas parent\ty\tYes.\nx\tx\thas parnt\tz\tYes.\nx\tx\tproduces\t\tYes.\ny\ty\tfollows\tz\tNo.\n"


def test_cli_ingest_skips_bad_rows_and_writes_rejects(empty_graph, run_cli, tmp_path):
    bad = akg(tmp_path, MIXED, name="bad_raw.tsv")
    rejects = tmp_path / "out" / "rejects.tsv"
    rejects.parent.mkdir()
    res = run_cli("ingest", str(bad), "--rejects", str(rejects))
    assert res.exit_code == 0, res.output
    assert rel_count(empty_graph) == 2
    triples = empty_graph.read("MATCH (h)-[r]->(t) RETURN h.name AS h, r.relation AS r, t.name AS t ORDER BY h")
    assert [(t["h"], t["r"], t["t"]) for t in triples] == [("x", "has parent", "y"), ("y", "follows", "z")]
    assert "2 created" in res.stdout and "rows rejected: 2" in res.stdout and str(rejects) in res.stdout
    assert f"rejected: {bad}, line 3: unknown relation 'has parnt'" in res.stderr
    assert f"rejected: {bad}, line 4: empty 'tail' field" in res.stderr

    with open(rejects, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [(r["file"], r["line"]) for r in rows] == [(str(bad), "3"), (str(bad), "4")]
    assert "did you mean 'has parent'" in rows[0]["problem"]
    assert rows[1]["problem"] == "empty 'tail' field"
    assert rows[0]["text"] == "x\\tx\\thas parnt\\tz\\tYes."
    assert not list(rejects.parent.glob("*.tmp"))


def test_cli_ingest_json_summary(empty_graph, run_cli, tmp_path):
    bad = akg(tmp_path, MIXED + "x\tX\thas_parent\tY\tYes.\n", name="bad_raw.tsv")
    good = akg(tmp_path, GOOD, name="good_pruned.tsv")
    res = run_cli("ingest", str(good), str(bad), "--json", "--rejects", str(tmp_path / "r.tsv"))
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["triples"] == 4 and summary["triples_created"] == 4
    assert (summary["triples_updated"], summary["triples_unchanged"]) == (0, 0)
    assert summary["entities_created"] == 7  # a b c d x y z
    assert (summary["rows_rejected"], summary["duplicates"]) == (2, 1)
    assert summary["rejects_file"] == str(tmp_path / "r.tsv") and summary["changed"] is True
    assert [(f["file"], f["source"], f["rows"], f["rejected"]) for f in summary["files"]] == [
        (str(good), "pruned", 2, 0), (str(bad), "raw", 2, 2)]
    assert rel_count(empty_graph) == 4

    again = json.loads(run_cli("ingest", str(good), "--json").stdout)
    assert (again["triples_created"], again["triples_unchanged"], again["changed"]) == (0, 2, False)
    assert again["rejects_file"] is None


def test_cli_strict_refuses_and_writes_nothing(empty_graph, run_cli, tmp_path):
    bad = akg(tmp_path, MIXED, name="bad_raw.tsv")
    rejects = tmp_path / "rejects.tsv"
    res = run_cli("ingest", "--strict", str(bad), "--rejects", str(rejects))
    assert res.exit_code != 0
    assert f"{bad}, line 3: unknown relation 'has parnt'" in res.output
    assert "Traceback" not in res.output
    assert rel_count(empty_graph) == 0 and ent_count(empty_graph) == 0
    assert not rejects.exists()


def test_cli_strict_good_file_before_bad_one(empty_graph, run_cli, tmp_path):
    good = akg(tmp_path, GOOD, name="good_pruned.tsv")
    bad = akg(tmp_path, MIXED, name="bad_raw.tsv")
    res = run_cli("ingest", "--strict", str(good), str(bad))
    assert res.exit_code != 0
    assert f"{bad}, line 3:" in res.output
    assert rel_count(empty_graph) == 0 and ent_count(empty_graph) == 0


def test_cli_strict_crlf(empty_graph, run_cli, tmp_path):
    win = write(tmp_path / "win_raw.tsv", (HEADER + GOOD).replace("\n", "\r\n"))
    res = run_cli("ingest", "--strict", str(win))
    assert res.exit_code != 0 and f"{win}, line 1:" in res.output and "CRLF" in res.output
    assert rel_count(empty_graph) == 0
    res = run_cli("ingest", str(win))
    assert res.exit_code == 0, res.output
    assert f"warning: {win}, line 1: CRLF" in res.stderr
    assert rel_count(empty_graph) == 2


def test_cli_missing_file_changes_nothing(empty_graph, run_cli, tmp_path):
    good = akg(tmp_path, GOOD, name="good_pruned.tsv")
    assert run_cli("ingest", str(good)).exit_code == 0
    assert rel_count(empty_graph) == 2
    other = akg(tmp_path, "e\te\tfollows\tf\tYes.\n", name="other_raw.tsv")
    missing = tmp_path / "missing_raw.tsv"
    res = run_cli("ingest", str(other), str(missing))
    assert res.exit_code != 0
    assert f"{missing}: no such file" in res.output and "Traceback" not in res.output
    assert rel_count(empty_graph) == 2 and ent_count(empty_graph) == 4


def test_cli_unknown_source(empty_graph, run_cli, tmp_path):
    path = akg(tmp_path, GOOD, name="triples.tsv")
    res = run_cli("ingest", str(path))
    assert res.exit_code != 0 and str(path) in res.output and "--source" in res.output
    assert rel_count(empty_graph) == 0
    res = run_cli("ingest", "--source", "mine", str(path), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["files"][0]["source"] == "mine"
    sources = empty_graph.read("MATCH ()-[r]->() RETURN DISTINCT r.sources AS s")
    assert sources == [{"s": ["mine"]}]



def test_bundled_mini_graph_matches_its_script():
    """tests/data/mini_akg_*.tsv are what tests/data/make_mini.py writes (regenerate: python tests/data/make_mini.py)."""
    import subprocess
    import sys

    script = Path(__file__).parent / "data" / "make_mini.py"
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
