"""Embeddings to take away (kge/export.py, docs/embeddings.md): exports that numpy and pandas load
with the right shapes and names, the doc's PyKEEN snippets run as written, re-import with checksums."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from akg_loader.ingest import ingest
from akg_loader.tsv import read_file
from kge import store
from kge.presets import TrainConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "embeddings.md"
ROTATE = TrainConfig(model="RotatE", embedding_dim=8, learning_rate=0.02, batch_size=128, epochs=2, training_loop="lean",
                     negatives=16, loss="nssa", loss_kwargs={"margin": 6.0}, seed=5, preset="test")


@pytest.fixture(scope="module")
def models(graph, mini_dir, server_env):
    """A RotatE, a DistMult with inverse triples and a TuckER trained on the bundled mini graph."""
    from kge.workflows import train_from_graph

    graph.write("MATCH (e:Entity) DETACH DELETE e")
    ingest(graph, [read_file(mini_dir / "mini_akg_pruned.tsv"), read_file(mini_dir / "mini_akg_test.tsv")])
    root = store.models_root(server_env.home)
    shutil.rmtree(root, ignore_errors=True)
    slcwa = dict(training_loop="slcwa", negatives=2, loss=None, loss_kwargs={}, epochs=1)
    out = {"rotate": train_from_graph(graph, ROTATE, models_root=root, name="rotate", evaluate_after=False),
           "distmult": train_from_graph(graph, dataclasses.replace(ROTATE, model="DistMult", inverse_triples=True, **slcwa),
                                        models_root=root, name="distmult", evaluate_after=False),
           "tucker": train_from_graph(graph, dataclasses.replace(ROTATE, model="TuckER", **slcwa), models_root=root,
                                      name="tucker", evaluate_after=False)}
    yield {k: store.load(v.path) for k, v in out.items()}
    shutil.rmtree(root, ignore_errors=True)


def _snippet(label: str) -> str:
    """The python block after `<!-- snippet: label -->` in docs/embeddings.md, as written."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- snippet: {label} -->\n```python\n(.*?)```", text, re.S)
    assert found, f"no snippet {label} in {DOC}"
    return found.group(1)


def _run_snippet(label: str, folder: Path, monkeypatch) -> dict:
    monkeypatch.setattr(sys, "argv", ["rebuild.py", str(folder)])
    namespace = {"__name__": "__main__"}
    exec(compile(_snippet(label), f"docs/embeddings.md:{label}", "exec"), namespace)
    return namespace


def _triples(stored, n=40):
    """Some (head, relation, tail) names, spread over the id ranges."""
    ents = sorted(stored.entity_to_id, key=stored.entity_to_id.get)
    rels = sorted(stored.relation_to_id, key=stored.relation_to_id.get)
    return [(ents[(7 * i) % len(ents)], rels[(3 * i) % len(rels)], ents[(11 * i + 5) % len(ents)]) for i in range(n)]


def _reference_scores(stored, triples):
    model = stored.load_model()
    hrt = torch.tensor([[stored.entity_to_id[h], stored.relation_to_id[r], stored.entity_to_id[t]] for h, r, t in triples])
    with torch.no_grad():
        return model.score_hrt(hrt)[:, 0].tolist()


def test_exported_files_load_with_the_right_shapes_and_names(models, run_cli, tmp_path):
    stored = models["rotate"]
    n, d = len(stored.entity_to_id), 8
    weights = load_file(stored.path / "weights.safetensors")
    # the raw parameters (PyKEEN keeps a complex vector as (real, imaginary) pairs): what the files must hold
    ent = weights["entity_representations.0._embeddings.weight"].reshape(n, d, 2).numpy()
    names = sorted(stored.entity_to_id, key=stored.entity_to_id.get)
    for fmt in ("npy", "parquet", "tsv"):
        out = tmp_path / fmt
        r = run_cli("export-embeddings", "rotate", "--format", fmt, "--out", str(out), "--json")
        assert r.exit_code == 0, r.output
        meta = json.loads((out / "meta.json").read_text())
        assert meta["model"] == "rotate" and meta["model_class"] == "RotatE" and meta["complex"] and meta["dim"] == d
        assert meta["graph_version"] == stored.trained_on["graph_version"] and meta["graph_version"]
        assert meta["files"] == {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in meta["files"]}
        if fmt == "npy":
            assert sorted(meta["files"]) == ["entity_embeddings.npy", "entity_ids.tsv", "relation_embeddings.npy",
                                             "relation_ids.tsv"]
            array = np.load(out / "entity_embeddings.npy")
            assert array.shape == (n, d, 2) and array.dtype == np.float32 and np.array_equal(array, ent)
            ids = pd.read_csv(out / "entity_ids.tsv", sep="\t", keep_default_na=False)
            assert list(ids.columns) == ["id", "name"] and ids["name"].tolist() == names
            assert ids["id"].tolist() == list(range(n))
            rel = np.load(out / "relation_embeddings.npy")
            assert rel.shape == (len(stored.relation_to_id), d, 2)
            assert np.allclose(np.hypot(rel[..., 0], rel[..., 1]), 1.0, atol=1e-5)  # RotatE: unit-modulus rotations
        else:
            df = (pd.read_parquet(out / "entity_embeddings.parquet") if fmt == "parquet"
                  else pd.read_csv(out / "entity_embeddings.tsv", sep="\t", keep_default_na=False))
            assert list(df.columns) == ["id", "name"] + [f"re{i}" for i in range(d)] + [f"im{i}" for i in range(d)]
            assert df.shape == (n, 2 + 2 * d) and df["name"].tolist() == names
            assert np.array_equal(df[[f"re{i}" for i in range(d)]].to_numpy(np.float32), ent[..., 0])
            assert np.array_equal(df[[f"im{i}" for i in range(d)]].to_numpy(np.float32), ent[..., 1])
    # the library gives the same vectors
    import akg

    model = akg.load_model("rotate")
    emb = model.entity_embeddings()
    assert emb.names == names and emb.vectors.shape == (n, d) and np.iscomplexobj(emb.vectors)
    assert np.array_equal(emb.array(), ent)
    rels = model.relation_embeddings()
    assert rels.names == sorted(stored.relation_to_id, key=stored.relation_to_id.get)
    assert np.array_equal(rels.array(), np.load(tmp_path / "npy" / "relation_embeddings.npy"))
    folder = model.export_embeddings(tmp_path / "api", format="parquet")
    assert pd.read_parquet(folder / "entity_embeddings.parquet").equals(
        pd.read_parquet(tmp_path / "parquet" / "entity_embeddings.parquet"))
    again = akg.import_embeddings(folder, name="rotate-api")
    assert again.name == "rotate-api"
    assert [r["tail"] for r in again.predict("dog barking", "has parent", k=5)] == \
        [r["tail"] for r in model.predict("dog barking", "has parent", k=5)]
    # a real-valued model with inverse triples: (rows, dim), two rows per relation
    dm = models["distmult"]
    r = run_cli("export-embeddings", "distmult", "--format", "tsv", "--out", str(tmp_path / "dm"))
    assert r.exit_code == 0, r.output
    rel = pd.read_csv(tmp_path / "dm" / "relation_embeddings.tsv", sep="\t", keep_default_na=False)
    rels = sorted(dm.relation_to_id, key=dm.relation_to_id.get)
    assert rel["name"].tolist() == [x for name in rels for x in (name, f"{name}_inverse")]
    assert list(rel.columns) == ["id", "name"] + [f"e{i}" for i in range(8)]
    # a folder that is not empty is not written into
    bad = run_cli("export-embeddings", "rotate", "--out", str(tmp_path / "npy"))
    assert bad.exit_code == 1 and "exists and is not an empty folder" in bad.output


def test_the_pykeen_snippets_reproduce_the_scores(models, run_cli, tmp_path, monkeypatch):
    for key in ("rotate", "distmult", "tucker"):
        stored = models[key]
        triples = _triples(stored)
        ns = _run_snippet("rebuild-from-model-folder", stored.path, monkeypatch)
        got = [ns["score"](*t) for t in triples]
        assert got == pytest.approx(_reference_scores(stored, triples), abs=1e-6), key
    for key in ("rotate", "distmult"):
        stored = models[key]
        out = tmp_path / key
        assert run_cli("export-embeddings", key, "--out", str(out)).exit_code == 0
        triples = _triples(stored)
        ns = _run_snippet("rebuild-from-export", out, monkeypatch)
        assert [ns["score"](*t) for t in triples] == pytest.approx(_reference_scores(stored, triples), abs=1e-6), key


def test_import_checks_the_checksums_and_scores_the_same(models, run_cli, tmp_path):
    stored = models["distmult"]
    for fmt in ("npy", "parquet", "tsv"):
        out = tmp_path / fmt
        assert run_cli("export-embeddings", "distmult", "--format", fmt, "--out", str(out)).exit_code == 0
        r = run_cli("models", "import", str(out), "--name", f"dm-{fmt}", "--json")
        assert r.exit_code == 0, r.output
        imported = store.load(Path(json.loads(r.output)["path"]))
        assert imported.train_config.model == "DistMult" and imported.train_config.inverse_triples
        assert imported.entity_to_id == stored.entity_to_id and imported.relation_to_id == stored.relation_to_id
        assert imported.trained_on["graph_version"] == stored.trained_on["graph_version"]
        triples = _triples(stored)
        assert _reference_scores(imported, triples) == pytest.approx(_reference_scores(stored, triples), abs=1e-6)
    listed = {m["name"] for m in json.loads(run_cli("models", "--json").output)}
    assert {"dm-npy", "dm-parquet", "dm-tsv"} <= listed
    # one changed number: refused, naming the file, nothing stored
    tsv = tmp_path / "tsv" / "entity_embeddings.tsv"
    lines = tsv.read_text().splitlines()
    fields = lines[1].split("\t")
    fields[2] = "0.5" if fields[2] != "0.5" else "0.25"
    tsv.write_text("\n".join([lines[0], "\t".join(fields), *lines[2:]]) + "\n")
    r = run_cli("models", "import", str(tmp_path / "tsv"), "--name", "tampered")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert f"{tsv}: does not match its checksum in meta.json" in r.output
    assert not (store.models_root(Path(stored.path).parent.parent) / "tampered").exists()
    meta = tmp_path / "npy" / "meta.json"
    doc = json.loads(meta.read_text())
    doc["files"]["entity_ids.tsv"] = "0" * 64
    meta.write_text(json.dumps(doc))
    r = run_cli("models", "import", str(tmp_path / "npy"), "--name", "tampered")
    assert r.exit_code == 1 and "meta.json was changed" in r.output
    # TuckER's core tensor is no embedding: its export cannot be imported
    assert run_cli("export-embeddings", "tucker", "--out", str(tmp_path / "tk")).exit_code == 0
    r = run_cli("models", "import", str(tmp_path / "tk"))
    assert r.exit_code == 1 and "cannot be rebuilt from its embeddings alone" in r.output


def _one_line_error(r, *parts: str) -> str:
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output and "unexpected" not in r.output, r.output
    for part in parts:
        assert part in r.output, r.output
    return r.output


def _unwritable(tmp_path: Path) -> Path:
    """A folder nothing can be created in: one without write permission, or (root ignores those) /proc."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    return locked if not os.access(locked, os.W_OK) else Path("/proc")


def test_an_out_that_cannot_be_written_is_one_line_and_leaves_nothing(models, run_cli, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    # a file as --out, and a folder under a file: refused in one line, the file untouched
    _one_line_error(run_cli("export-embeddings", "rotate", "--out", str(a_file)), str(a_file),
                    "exists and is not an empty folder")
    _one_line_error(run_cli("export-embeddings", "rotate", "--out", str(a_file / "emb")), str(a_file / "emb"),
                    "cannot write the export here")
    assert a_file.read_text() == "mine"
    locked = _unwritable(tmp_path)
    out = locked / "new" / "emb"
    _one_line_error(run_cli("export-embeddings", "rotate", "--out", str(out)), str(out), "cannot write the export here")
    if locked != Path("/proc"):
        assert list(locked.iterdir()) == []
        empty = tmp_path / "locked-empty"
        empty.mkdir(mode=0o555)
        _one_line_error(run_cli("export-embeddings", "rotate", "--out", str(empty)), "cannot write into this folder")
        locked.chmod(0o755)  # so that pytest can clean up
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    _one_line_error(run_cli("export-embeddings", "rotate", "--out", str(link)), "is a symbolic link")
    assert not (tmp_path / "elsewhere").exists()
    # a failure after the folders for --out were made removes them again: nothing is half-written
    from kge.export import export

    with pytest.raises(AttributeError):
        export(models["rotate"], tmp_path / "made" / "for" / "emb", model=object())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a-file", "link", "locked"] +
                                                                (["locked-empty"] if locked != Path("/proc") else []))


def test_import_reads_only_the_listed_files_inside_the_folder(models, run_cli, tmp_path):
    out = tmp_path / "exp"
    assert run_cli("export-embeddings", "distmult", "--format", "tsv", "--out", str(out)).exit_code == 0
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text())
    # meta.json's file format is not covered by the checksum: switched to npy, the import would have read
    # entity_embeddings.npy, a file no checksum lists. Planted beside the real files, it is never opened.
    np.save(out / "entity_embeddings.npy", np.zeros((3, 8), np.float32))
    (out / "relation_embeddings.npy").write_bytes(b"junk")
    _rewrite(meta_path, meta, file_format="npy")
    _one_line_error(run_cli("models", "import", str(out), "--name", "stray"), "a npy export has exactly")
    # stray files beside the listed ones change nothing: the import reads the listed ones only
    _rewrite(meta_path, meta)
    r = run_cli("models", "import", str(out), "--name", "with-strays", "--json")
    assert r.exit_code == 0, r.output
    imported = store.load(Path(json.loads(r.output)["path"]))
    assert _reference_scores(imported, _triples(models["distmult"])) == \
        pytest.approx(_reference_scores(models["distmult"], _triples(models["distmult"])), abs=1e-6)
    # extra names in the list (re-checksummed, as a forger would) are refused, not read
    files = {**meta["files"], "../outside.tsv": "0" * 64}
    _rewrite(meta_path, meta, files=files, checksum=_checksum_of(files))
    _one_line_error(run_cli("models", "import", str(out), "--name", "extra"), "a tsv export has exactly")
    _rewrite(meta_path, meta)
    # a listed file that is a link out of the folder is refused, even with the right checksum
    outside = tmp_path / "outside.tsv"
    shutil.move(out / "entity_embeddings.tsv", outside)
    (out / "entity_embeddings.tsv").symlink_to(outside)
    _one_line_error(run_cli("models", "import", str(out), "--name", "escape"), str(out / "entity_embeddings.tsv"),
                    "is a link pointing out of the export's folder")
    # a link that stays inside the folder is followed
    (out / "entity_embeddings.tsv").unlink()
    shutil.move(outside, out / "entity-data.tsv")
    (out / "entity_embeddings.tsv").symlink_to("entity-data.tsv")
    assert run_cli("models", "import", str(out), "--name", "inner-link").exit_code == 0
    # meta.json itself: a link out is refused, a pipe is refused at once (it used to be read forever)
    shutil.move(meta_path, tmp_path / "meta.json")
    meta_path.symlink_to(tmp_path / "meta.json")
    _one_line_error(run_cli("models", "import", str(out), "--name", "meta-link"), "is a link pointing out")
    meta_path.unlink()
    os.mkfifo(meta_path)
    _one_line_error(run_cli("models", "import", str(out), "--name", "meta-pipe"), "is not a regular file")
    names = {m["name"] for m in json.loads(run_cli("models", "--json").output)}
    assert {"with-strays", "inner-link"} <= names and not names & {"stray", "extra", "escape", "meta-link", "meta-pipe"}


def test_import_of_a_forged_export_is_one_line(models, run_cli, tmp_path):
    """A forger can recompute every checksum: what the files hold is still checked."""
    out = tmp_path / "exp"
    assert run_cli("export-embeddings", "distmult", "--format", "npy", "--out", str(out)).exit_code == 0
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text())

    def forge(name: str, data: bytes, **changes) -> None:
        (out / name).write_bytes(data)
        meta["files"][name] = hashlib.sha256(data).hexdigest()
        meta["checksum"] = _checksum_of(meta["files"])
        _rewrite(meta_path, meta, **changes)

    ids = (out / "entity_ids.tsv").read_bytes()
    forge("entity_ids.tsv", b"id\tname\n0\n")  # a line without a name
    _one_line_error(run_cli("models", "import", str(out), "--name", "f1"), "not readable as entity embeddings")
    forge("entity_ids.tsv", ids)
    forge("entity_embeddings.npy", b"\x93NUMPY junk")
    _one_line_error(run_cli("models", "import", str(out), "--name", "f2"), str(out / "entity_embeddings.npy"),
                    "not readable as entity embeddings")
    # a dimension the vectors do not have is refused before a model of that size is built
    stored = models["distmult"]
    array = np.zeros((len(stored.entity_to_id), 8), np.float32)
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    forge("entity_embeddings.npy", buffer.getvalue(),
          training={**meta["training"], "embedding_dim": 4096})
    _one_line_error(run_cli("models", "import", str(out), "--name", "f3"), "'training' says dimension 4096, the embeddings have 8")
    _rewrite(meta_path, meta, dim="8")
    _one_line_error(run_cli("models", "import", str(out), "--name", "f4"), "'dim' is not a positive whole number")


def _checksum_of(files: dict) -> str:
    return hashlib.sha256("".join(f"{n} {files[n]}\n" for n in sorted(files)).encode()).hexdigest()


def _rewrite(path: Path, meta: dict, **changes) -> None:
    path.write_text(json.dumps({**meta, **changes}))
