"""The public Python API (akg.open, akg.train, ...) as a notebook uses it, against the session's real
server: a small graph written here (so every expected value is worked out from its lines), real
PyKEEN training, the small real CLAP model of the tests, and the same answers as the CLI."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import akg
from akg.errors import InputError, QueryRefused

sys.path.insert(0, str(Path(__file__).parent))

# A small graph in the AKG's format: (label_name, head, relation, tail, response)
TRAIN = [("dog", "dog", "has parent", "domestic animal"), ("dog", "dog", "occurs in", "park"),
         ("dog", "dog", "occurs in", "backyard"), ("dog barking", "dog barking", "has parent", "dog"),
         ("cat", "cat", "has parent", "domestic animal"), ("cat", "cat", "occurs in", "home"),
         ("rain", "rain", "has parent", "weather"), ("rain", "rain", "occurs in", "street"),
         ("car horn", "car horn", "has parent", "vehicle"), ("car horn", "car horn", "occurs in", "street"),
         ("siren", "siren", "has parent", "vehicle"), ("siren", "siren", "occurs in", "street")]
TEST = [("cat", "cat", "occurs in", "backyard"), ("siren", "siren", "occurs in", "park")]


def write_akg(path: Path, rows) -> Path:
    path.write_text("label_name\thead\trelation\ttail\tresponse\n" + "".join("\t".join(r) + "\tYes.\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("api")
    return write_akg(d / "small_pruned.tsv", TRAIN), write_akg(d / "small_test.tsv", TEST)


@pytest.fixture
def kg(empty_graph):
    with akg.open() as kg:
        yield kg


def test_the_notebook_path(kg, files, tmp_path):
    train, test = files
    report = kg.ingest([train, test])
    entities = {r[1] for r in TRAIN + TEST} | {r[3] for r in TRAIN + TEST}
    assert (report.triples_created, report.entities_created) == (len(TRAIN) + len(TEST), len(entities))
    assert list(report.to_df()["rows"]) == [len(TRAIN), len(TEST)]
    assert kg.ingest([train]).triples_created == 0  # idempotent

    # read-only Cypher, with $parameters as keywords; the server refuses writes
    tails = kg.query("MATCH (:Entity {name: $n})-[r]->(t) RETURN t.name AS tail ORDER BY tail", n="dog")
    assert [r["tail"] for r in tails] == sorted(t for _, h, _, t in TRAIN if h == "dog")
    assert list(tails.to_df().columns) == ["tail"]
    with pytest.raises(QueryRefused):
        kg.query("CREATE (:Evil) RETURN 1")
    assert kg.query("MATCH (e:Evil) RETURN count(e) AS n")[0]["n"] == 0

    stats = kg.stats().to_dict()
    assert json.dumps(stats)  # plain data
    exported = kg.export(split="train", path=tmp_path / "train.tsv")
    expected = sorted((h, r, t) for _, h, r, t in TRAIN)
    assert (tmp_path / "train.tsv").read_text() == "".join(f"{h}\t{r}\t{t}\n" for h, r, t in expected)
    assert [tuple(x.values()) for x in exported] == expected and exported.meta["rows"] == len(TRAIN)

    # curation: one change per call, in the versions and the audit trail
    before = len(kg.versions())
    done = kg.curate.reject(("dog", "occurs in", "backyard"), by="ann", note="a test")
    assert [t["after"] for t in done["triples"]] == ["rejected"]
    kg.curate.add("dog", "occurs in", "kennel", by="ann")
    assert len(kg.versions()) == before + 2
    assert "dog\toccurs in\tkennel\n" in kg.export(split="train", path=tmp_path / "t2.tsv").to_df().to_csv(
        sep="\t", header=False, index=False)
    with pytest.raises(InputError, match="say who decides"):
        kg.curate.accept("dog|occurs in|park", by="")


def test_train_predict_evaluate_and_load(kg, files):
    kg.ingest(list(files))
    model = akg.train(kg, preset="fast", epochs=3, embedding_dim=8, batch_size=8, negatives=4, name="api-small")
    try:
        assert model.name == "api-small" and model.config["epochs"] == 3
        assert model.metrics["all"]["triples"] == len(TEST)  # evaluated on the test split after training
        assert akg.load_model().name == "api-small"  # the latest
        assert "api-small" in list(akg.models().to_df()["name"])
        got = model.predict("dog", "occurs in", k=5)
        known = sorted(t for _, h, r, t in TRAIN if (h, r) == ("dog", "occurs in"))
        rows = got.to_df()
        is_known = rows["status"] == "known"
        assert sorted(rows[is_known]["tail"]) == known  # the graph's tails, marked known
        assert len(rows) == 5 and not rows[~is_known]["tail"].isin(known).any()
        metrics = model.evaluate(kg).to_dict()
        assert metrics["all"] == model.metrics["all"]  # the same model on the same triples
        assert "per_relation" not in metrics
        by_relation = model.evaluate(kg, per_relation=True)
        table = by_relation.to_df()  # one row per relation of the test split, the weakest first
        assert set(table["relation"]) == {r for _, _, r, _ in TEST}
        assert table["all triples"].sum() == len(TEST)
        assert by_relation["per_relation"] == model.metrics["per_relation"]  # as the model card keeps it
        with pytest.raises(InputError):
            akg.train(kg, preset="fast", epochs=-1)
    finally:
        shutil.rmtree(model.path, ignore_errors=True)


def tone(freq: float, seconds: float, sr: int = 48000) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return 0.3 * np.sin(2 * np.pi * freq * t)


def test_classify_and_zeroshot_equal_the_cli(kg, files, clap_dir, shared_dir, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("AKG_LABEL_SETS_DIR", str(shared_dir / "label_sets"))
    kg.ingest(list(files))
    clip = tmp_path / "a.wav"
    sf.write(clip, tone(440, 2), 48000)
    api = akg.classify(kg, [clip], labels="esc50", clap=clap_dir, top_k=5, use_kge=False)
    cli = json.loads(run_cli("classify", str(clip), "--model", str(clap_dir), "--labels", "esc50", "--top-k", "5",
                             "--no-kge", "--json").stdout)
    assert api.to_dict()["clips"] == cli["clips"]
    assert {k: v for k, v in api.settings.items() if k != "prompt_bank_cached"} == \
        {k: v for k, v in cli["settings"].items() if k != "prompt_bank_cached"}
    frame = api.to_df()
    assert list(frame["rank"]) == [1, 2, 3, 4, 5] and list(frame["label"]) == [r["label"] for r in cli["clips"][0]["refined"]]

    from reasoning import labels

    names = [label.name for label in labels.load("esc50").labels][:3]
    audio = tmp_path / "ESC-50" / "audio"
    audio.mkdir(parents=True)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for i in range(6):
        sf.write(audio / f"1-{i}-A-0.wav", tone(200 + 150 * i, 2), 48000)
        rows.append(f"1-{i}-A-0.wav,1,{i % 3},{names[i % 3]},False,{i},A")
    meta = tmp_path / "ESC-50" / "esc50.csv"
    meta.write_text("\n".join(rows) + "\n")
    report = akg.zeroshot_eval(kg, audio_dir=audio, meta=meta, clap=clap_dir, ks=[1, 3], use_kge=False,
                               out_dir=tmp_path / "api-report")
    cli = json.loads(run_cli("zeroshot-eval", "--audio-dir", str(audio), "--meta", str(meta), "--model", str(clap_dir),
                             "--ablate-k", "1,3", "--no-kge", "--out", str(tmp_path / "cli-report"), "--json").stdout)
    assert report["results"] == cli["results"] and report["metric"] == cli["metric"] == "accuracy"
    assert list(report.to_df()["top_k"]) == [1, 3]
    assert (tmp_path / "api-report" / "results.csv").read_text() == (tmp_path / "cli-report" / "results.csv").read_text()


def test_open_with_another_home_and_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="settings or home"):
        akg.open(home=tmp_path, settings=akg.Settings.from_env())
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        akg.nope  # noqa: B018
    assert set(akg.__all__) >= {"open", "train", "load_model", "classify", "zeroshot_eval"}
    assert os.environ.get("AKG_HOME")  # (the session's; akg.open(home=...) did not change it)
