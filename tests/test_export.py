"""`akg export`: deterministic TSV equal to the paper's preprocessing, with the content hash beside it."""

from __future__ import annotations

import hashlib
import json

import pandas as pd


def upstream_preprocessing(path) -> set[tuple[str, str, str]]:
    """The steps of the paper's KGE_training/train_kge.py (preprocess_dataframe), re-stated here."""
    df = pd.read_csv(path, sep="\t")
    df = df[(df["tail"] != "sound") & (df["tail"] != "Sound")]
    for col in ("head", "tail", "relation"):
        df[col] = df[col].str.replace("_", " ")
    df = df.drop_duplicates(subset=["head", "relation", "tail"])
    for col in ("head", "tail", "relation"):
        df[col] = df[col].str.lower().str.strip()
    return set(zip(df["head"], df["relation"], df["tail"]))


def _rows(path):
    return [tuple(line.split("\t")) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_equals_upstream_preprocessing_of_pruned(empty_graph, akg_dir, run_cli, tmp_path):
    assert run_cli("ingest", str(akg_dir / "AKG_pruned.tsv")).exit_code == 0
    out = tmp_path / "train.tsv"
    res = run_cli("export", "--split", "train", "--status", "accepted", "-o", str(out), "--json")
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    expected = upstream_preprocessing(akg_dir / "AKG_pruned.tsv")
    assert len(rows) == len(expected) == 18348
    assert set(rows) == expected
    assert rows == sorted(rows)  # deterministic order

    meta = json.loads((tmp_path / "train.tsv.meta.json").read_text())
    assert meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert meta["rows"] == 18348 and meta["split"] == "train" and meta["status"] == "accepted"

    # The same graph exports the same bytes; stdout gives the same rows.
    again = tmp_path / "again.tsv"
    run_cli("export", "-o", str(again))
    assert again.read_bytes() == out.read_bytes()
    stdout = run_cli("export").stdout
    assert stdout == out.read_text(encoding="utf-8")

    # Ingesting the test file changes the graph's version but not the train export.
    assert run_cli("ingest", str(akg_dir / "AKG_test.tsv")).exit_code == 0
    later = tmp_path / "later.tsv"
    run_cli("export", "-o", str(later))
    later_meta = json.loads((tmp_path / "later.tsv.meta.json").read_text())
    assert later_meta["sha256"] == meta["sha256"]
    assert later_meta["graph_version"] != meta["graph_version"]
    test_out = tmp_path / "test.tsv"
    run_cli("export", "--split", "test", "-o", str(test_out))
    assert len(_rows(test_out)) == 2039


def test_export_filters(empty_graph, tmp_path, run_cli):
    src = tmp_path / "mini_raw.tsv"
    src.write_text("label_name\thead\trelation\ttail\tresponse\n"
                   "dog\tdog\thas parent\tanimal\tYes.\ndog\tdog\toccurs in\tmoon\tNo.\n", encoding="utf-8")
    assert run_cli("ingest", str(src)).exit_code == 0
    assert run_cli("export", "--status", "rejected").stdout == "dog\toccurs in\tmoon\n"
    assert run_cli("export", "--status", "any").stdout == "dog\thas parent\tanimal\ndog\toccurs in\tmoon\n"
    assert run_cli("export", "--split", "test").stdout == ""
