"""KGE against the real graph: training from graph triples, the evaluator against PyKEEN's, model
storage (round trip, the committed fixture, corrupt and foreign files), prediction, bad input."""

from __future__ import annotations

import json
import pickle
import shutil
import threading
from pathlib import Path

import pytest
import torch

from akg.errors import AkgError, InputError
from akg_loader.ingest import ingest
from akg_loader.tsv import read_file
from kge import store
from kge.data import from_graph, map_test, training_factory
from kge.evaluate import evaluate
from kge.predict import Predictor
from kge.presets import TrainConfig, preset
from kge.train import train


FIXTURE = Path(__file__).parent / "fixtures" / "kge_model_v1"
HEADER = "label_name\thead\trelation\ttail\tresponse\n"


@pytest.fixture(scope="module")
def slice_files(mini_dir, tmp_path_factory) -> tuple[Path, Path]:
    """The bundled small graph (tests/data) as training file, and its test file plus three test triples
    about entities the training triples never name (to be scored as misses, or from their names)."""
    folder = tmp_path_factory.mktemp("slice")
    test = folder / "slice_test.tsv"
    unseen = "".join(f"{h}\t{h}\thas parent\t{t}\tYes.\n" for h, t in
                     [("puppy yelping", "dog"), ("kitten purring", "cat"), ("hailstorm", "weather")])
    test.write_text((mini_dir / "mini_akg_test.tsv").read_text(encoding="utf-8") + unseen, encoding="utf-8")
    return mini_dir / "mini_akg_pruned.tsv", test


@pytest.fixture
def slice_graph(empty_graph, slice_files, tmp_path):
    rejected = tmp_path / "slice_raw.tsv"  # a rejected fact, which training must never see
    rejected.write_text(HEADER + "dog\tdog\thas parent\tteapot\tNo.\n", encoding="utf-8")
    ingest(empty_graph, [read_file(p) for p in (*slice_files, rejected)])
    return empty_graph


@pytest.fixture
def models_home(server_env, tmp_path, monkeypatch):
    """Models under a fresh folder: AKG_HOME's models/ is where the CLI looks."""
    root = store.models_root(server_env.home)
    shutil.rmtree(root, ignore_errors=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


SMALL = TrainConfig(model="RotatE", embedding_dim=16, learning_rate=0.02, batch_size=256, epochs=8,
                    training_loop="lean", negatives=64, loss="nssa", loss_kwargs={"margin": 6.0}, seed=7)


def test_training_uses_graph_triples_and_is_repeatable(slice_graph):
    data = from_graph(slice_graph)
    assert data.train.triples and data.test.triples
    assert all(len(t) == 3 for t in data.train.triples)
    # only accepted train-split facts: nothing from the test file leaks into training, nothing rejected
    assert not set(data.train.triples) & set(data.test.triples)
    assert ("dog", "has parent", "teapot") not in data.train.triples
    assert slice_graph.read("MATCH (:Entity {name: 'dog'})-[r:HAS_PARENT]->(:Entity {name: 'teapot'}) RETURN r.status AS s")[0]["s"] == "rejected"
    factory = training_factory(data.train.triples)
    a = train(SMALL, factory)
    b = train(SMALL, factory)
    assert len(a.losses) == SMALL.epochs and a.losses[-1] < a.losses[0]
    assert a.losses == b.losses  # a seed makes runs repeatable
    assert torch.equal(a.model.state_dict()["entity_representations.0._embeddings.weight"],
                       b.model.state_dict()["entity_representations.0._embeddings.weight"])


@pytest.mark.parametrize("config", [
    SMALL,
    TrainConfig(model="TransE", embedding_dim=16, learning_rate=0.02, batch_size=256, epochs=3, training_loop="slcwa", negatives=4),
    TrainConfig(model="ComplEx", embedding_dim=16, learning_rate=0.02, batch_size=256, epochs=3, training_loop="slcwa", negatives=4),
    TrainConfig(model="DistMult", embedding_dim=16, learning_rate=0.02, batch_size=256, epochs=3, training_loop="slcwa", negatives=4),
], ids=lambda c: f"{c.model}-{c.training_loop}")
def test_evaluator_equals_pykeen(slice_graph, config):
    from pykeen.evaluation import RankBasedEvaluator

    data = from_graph(slice_graph)
    factory = training_factory(data.train.triples)
    model = train(config, factory).model
    test = map_test(data.test.triples, factory.entity_to_id, factory.relation_to_id)
    assert len(test.known) > 50 and test.unknown, "the slice should have both kinds of test triples"
    ours = evaluate(model, test.mapped, torch.cat([factory.mapped_triples, test.mapped]), unknown=len(test.unknown))
    theirs = RankBasedEvaluator().evaluate(model, test.mapped, additional_filter_triples=[factory.mapped_triples],
                                           use_tqdm=False, batch_size=256)
    assert abs(ours["known"]["mrr"] - theirs.get_metric("both.realistic.inverse_harmonic_mean_rank")) < 1e-6
    for k in (1, 3, 5, 10):
        assert abs(ours["known"][f"hits@{k}"] - theirs.get_metric(f"both.realistic.hits_at_{k}")) < 1e-6
    # 'all' counts unseen-entity triples as misses on both sides
    n_known, n_all = len(test.known), test.total
    assert ours["all"]["triples"] == n_all
    assert abs(ours["all"]["mrr"] - ours["known"]["mrr"] * n_known / n_all) < 1e-9


def test_cli_train_models_evaluate_predict(slice_graph, run_cli, models_home, tmp_path):
    res = run_cli("train", "--epochs", "6", "--dim", "16", "--batch-size", "256", "--negatives", "64",
                  "--name", "slice-model", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model"] == "slice-model" and out["train_seconds"] > 0
    for part in ("known", "all"):
        assert 0 < out["metrics"][part]["mrr"] <= 1
        assert set(out["metrics"][part]) >= {"mrr", "hits@1", "hits@3", "hits@5", "hits@10"}
    folder = models_home / "slice-model"
    for name in ("config.json", "entities.json", "relations.json", "weights.safetensors", "metrics.json", "loss.csv", "loss.png"):
        assert (folder / name).is_file(), name
    assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((folder / "loss.csv").read_text().splitlines()) == 7

    listed = json.loads(run_cli("models", "--json").stdout)
    assert [m["name"] for m in listed] == ["slice-model"] and listed[0]["stale"] is False

    ev = json.loads(run_cli("evaluate", "--json").stdout)
    assert abs(ev["metrics"]["known"]["mrr"] - out["metrics"]["known"]["mrr"]) < 1e-9

    # known tails come from the graph, the rest are predictions
    top = slice_graph.read("MATCH (h:Entity)-[r]->(:Entity) WHERE r.status = 'accepted' AND r.split = 'train' "
                           "RETURN h.name AS h, r.relation AS rel, count(r) AS n ORDER BY n DESC, h, rel LIMIT 1")[0]
    head, rel = top["h"], top["rel"]
    known = {r["t"] for r in slice_graph.read(
        "MATCH (:Entity {name: $h})-[r]->(t) WHERE r.status = 'accepted' AND r.relation = $rel RETURN t.name AS t",
        {"h": head, "rel": rel})}
    pred = json.loads(run_cli("predict", head, rel, "-k", "50", "--json").stdout)
    tails = pred["tails"]
    assert len(tails) == 50 and [t["score"] for t in tails] == sorted((t["score"] for t in tails), reverse=True)
    assert {t["tail"] for t in tails if t["status"] == "known"} == known & {t["tail"] for t in tails}
    assert len(known) >= 2

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{head}\t{rel}\n{head.upper().replace(' ', '_')}\t{rel.replace(' ', '_')}\n", encoding="utf-8")
    batch = json.loads(run_cli("predict", "--batch", str(pairs), "-k", "50", "--json").stdout)
    assert len(batch["results"]) == 2 and batch["errors"] == [] and batch["model"] == "slice-model"
    for entry in batch["results"]:  # the same answers (scores to float32 precision: batch shapes differ)
        assert [(t["tail"], t["status"]) for t in entry["tails"]] == [(t["tail"], t["status"]) for t in tails]
        assert [t["score"] for t in entry["tails"]] == pytest.approx([t["score"] for t in tails], abs=1e-4)

    # a changed graph makes the model stale: commands warn
    extra = tmp_path / "extra_pruned.tsv"
    extra.write_text(HEADER + f"{head}\t{head}\t{rel}\tpet\tYes.\n", encoding="utf-8")
    assert run_cli("ingest", str(extra)).exit_code == 0
    res = run_cli("predict", head, rel)
    assert res.exit_code == 0 and "graph has changed" in res.stderr
    assert json.loads(run_cli("models", "--json").stdout)[0]["stale"] is True


def test_unknown_names_are_clear_errors_with_suggestions(slice_graph, models_home, run_cli):
    data = from_graph(slice_graph)
    factory = training_factory(data.train.triples)
    result = train(SMALL.with_overrides(epochs=1), factory)
    path = store.save(result.model, SMALL, factory.entity_to_id, factory.relation_to_id, root=models_home, name="m")
    predictor = Predictor(store.load(path))
    with pytest.raises(InputError, match="unknown entity 'dgo'.*'dog'"):
        predictor.predict("dgo", "has parent")
    with pytest.raises(InputError, match="did you mean 'has parent'"):
        predictor.predict("dog", "has parnt")
    res = run_cli("predict", "dgo", "has parent")
    assert res.exit_code == 1 and "'dog'" in res.output and "Traceback" not in res.output
    res = run_cli("train", "--model", "RotatEE")
    assert res.exit_code == 1 and "unknown model 'RotatEE'" in res.output and "rotate" in res.output.lower()
    res = run_cli("evaluate", "no-such-model")
    assert res.exit_code == 1 and "no model named" in res.output


def test_empty_graph_and_missing_test_split(empty_graph, run_cli, models_home, tmp_path):
    res = run_cli("train", "--epochs", "1")
    assert res.exit_code == 1 and "no accepted training triples" in res.output
    only_train = tmp_path / "mini_pruned.tsv"
    only_train.write_text(HEADER + "dog\tdog\thas parent\tanimal\tYes.\ncat\tcat\thas parent\tanimal\tYes.\n", encoding="utf-8")
    assert run_cli("ingest", str(only_train)).exit_code == 0
    res = run_cli("train", "--epochs", "1", "--dim", "8", "--name", "tiny")
    assert res.exit_code == 0 and "no test split" in res.stderr
    res = run_cli("evaluate", "tiny")
    assert res.exit_code == 1 and "no test split" in res.output


def test_round_trip_and_protection_against_bad_files(slice_graph, models_home, tmp_path):
    data = from_graph(slice_graph)
    factory = training_factory(data.train.triples)
    result = train(SMALL, factory)
    path = store.save(result.model, SMALL, factory.entity_to_id, factory.relation_to_id, root=models_home,
                      name="rt", losses=result.losses)
    loaded = store.load(path).load_model()
    batch = factory.mapped_triples[:20]
    for side in ("head", "tail"):
        assert torch.allclose(loaded.predict(hrt_batch=batch, target=side), result.model.predict(hrt_batch=batch, target=side))
    with pytest.raises(InputError, match="exists already"):
        store.save(result.model, SMALL, factory.entity_to_id, factory.relation_to_id, root=models_home, name="rt")

    # Two users saving one new name at once (two `akg train --name` or `akg models import` runs): one
    # model is kept whole, every other save is the same one-line refusal, nothing half-written stays.
    start, outcomes = threading.Barrier(6), []

    def save_race():
        start.wait()
        try:
            outcomes.append(store.save(result.model, SMALL, factory.entity_to_id, factory.relation_to_id,
                                       root=models_home, name="race", losses=result.losses))
        except Exception as e:  # noqa: BLE001 -- the test sorts what each save ended with
            outcomes.append(e)

    threads = [threading.Thread(target=save_race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    saved = [o for o in outcomes if isinstance(o, Path)]
    refused = [o for o in outcomes if not isinstance(o, Path)]
    assert saved == [models_home / "race"]
    assert len(refused) == 5 and all(isinstance(e, InputError) and "exists already" in str(e) for e in refused), refused
    assert sorted(p.name for p in models_home.iterdir()) == ["race", "rt"]
    assert torch.allclose(store.load(saved[0]).load_model().predict(hrt_batch=batch, target="tail"),
                          result.model.predict(hrt_batch=batch, target="tail"))

    # corrupt weights
    bad = tmp_path / "corrupt"
    shutil.copytree(path, bad)
    (bad / "weights.safetensors").write_bytes(b"\x00\x01 not a tensor file")
    with pytest.raises(InputError, match="safetensors"):
        store.load(bad).load_model()
    # a pickle in place of the weights is never unpickled
    trap = tmp_path / "pickled"
    shutil.copytree(path, trap)
    marker = tmp_path / "unpickled.txt"
    (trap / "weights.safetensors").write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(InputError):
        store.load(trap).load_model()
    assert not marker.exists()
    # weights that do not fit the config
    other = tmp_path / "mismatch"
    shutil.copytree(path, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["training"]["embedding_dim"] = 32
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="do not fit"):
        store.load(other).load_model()
    # a foreign directory
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"model": "something else"}')
    with pytest.raises(InputError, match="not an akg model"):
        store.load(foreign)
    (foreign / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        store.load(foreign)


class _Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path(self.path).write_text, ("unpickled!",))


def test_committed_fixture_still_loads_and_predicts():
    """A model saved by an earlier version of this code must keep loading with the same results."""
    stored = store.load(FIXTURE)
    expected = json.loads((FIXTURE / "expected.json").read_text())
    predictor = Predictor(stored)
    for case in expected["predictions"]:
        got = predictor.predict(case["head"], case["relation"], k=len(case["tails"]))
        assert [p.tail for p in got] == case["tails"]
        assert [round(p.score, 4) for p in got] == pytest.approx(case["scores"], abs=1e-4)


def test_presets():
    p = preset("paper")
    assert (p.model, p.embedding_dim, p.learning_rate, p.batch_size, p.epochs, p.seed) == ("RotatE", 256, 0.001, 4096, 1000, 42)
    assert preset("fast").training_loop == "lean"
    with pytest.raises(AkgError, match="unknown preset"):
        preset("turbo")


@pytest.mark.slow
def test_fast_preset_reaches_paper_quality_on_the_full_akg(empty_graph, akg_dir, run_cli, models_home):
    """The default preset on the whole AKG: filtered MRR >= 0.55 on the 1,771 known test triples."""
    for f in ("AKG_pruned.tsv", "AKG_test.tsv"):
        assert run_cli("ingest", str(akg_dir / f)).exit_code == 0
    res = run_cli("train", "--json")
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)["metrics"]
    assert metrics["known"]["triples"] == 1771 and metrics["all"]["triples"] == 2039
    assert metrics["known"]["mrr"] >= 0.55
