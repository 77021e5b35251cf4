"""Grounded KGE (kge/grounded.py, kge/features.py) against the real graph: real PyKEEN training on a
slice of the AKG with real all-MiniLM-L6-v2 features, storage round trip, inductive prediction for
names the graph does not hold (CLI included), evaluation with new entities, the feature cache,
every fusion mode, CLAP text features, the reasoning pipeline's labels without an entity, bad input."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from akg.errors import ConfigError, InputError
from akg_loader.ingest import ingest
from akg_loader.tsv import read_file
from kge import features, grounded, store
from kge.data import from_graph, training_factory
from kge.presets import TrainConfig
from kge.train import train

from helpers import slice_by_heads

sys.path.insert(0, str(Path(__file__).parent))

HEADER = "label_name\thead\trelation\ttail\tresponse\n"
GROUNDING = {"modality": "text", "encoder": "minilm", "fusion": "average", "projection": "linear", "modality_dropout": 0.25}
SMALL = TrainConfig(model="RotatE", embedding_dim=32, learning_rate=0.02, batch_size=256, epochs=12,
                    training_loop="lean", negatives=64, loss="nssa", loss_kwargs={"margin": 6.0}, seed=7,
                    preset="test", grounding=GROUNDING)


@pytest.fixture(scope="module")
def slice_files(akg_dir, tmp_path_factory) -> tuple[Path, Path]:
    """The pruned and test triples of 150 heads of the test file (dog, dog barking and puppy among them)."""
    folder = tmp_path_factory.mktemp("grounded-slice")
    test_heads = sorted({l.split("\t")[1] for l in (akg_dir / "AKG_test.tsv").read_text(encoding="utf-8").splitlines()[1:]})
    heads = set(test_heads[:120]) | {"dog", "dog_barking", "puppy", "bark", "cat", "meow"}
    return (slice_by_heads(akg_dir / "AKG_pruned.tsv", folder / "slice_pruned.tsv", heads),
            slice_by_heads(akg_dir / "AKG_test.tsv", folder / "slice_test.tsv", heads))


@pytest.fixture(scope="module")
def minilm():
    return features.MiniLMEncoder()


@pytest.fixture(scope="module")
def sliced(graph, slice_files, server_env):
    """The slice in the graph (fresh), and the models folder emptied before and after."""
    graph.write("MATCH (e:Entity) DETACH DELETE e")
    ingest(graph, [read_file(p) for p in slice_files])
    root = store.models_root(server_env.home)
    shutil.rmtree(root, ignore_errors=True)
    yield graph
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def trained(sliced, server_env):
    """One grounded RotatE (average fusion) and one plain RotatE, trained and stored like `akg train` does."""
    from kge.workflows import train_from_graph

    root = store.models_root(server_env.home)
    g = train_from_graph(sliced, SMALL, models_root=root, name="g-average")
    p = train_from_graph(sliced, dataclasses.replace(SMALL, grounding=None), models_root=root, name="p-plain")
    return g, p


def _names(factory) -> list[str]:
    return sorted(factory.entity_to_id, key=factory.entity_to_id.get)


# --- the feature cache -------------------------------------------------------------------------

class CountingEncoder:
    """A stand-in encoder with the real interface: deterministic features, calls counted."""

    kind = "minilm"
    dim = 8

    def __init__(self, id_: str = "stand-in:1"):
        self.id = id_
        self.calls: list[list[str]] = []

    def encode(self, names):
        self.calls.append(list(names))
        rows = [np.random.default_rng(abs(hash((self.id, n))) % 2**32).normal(size=self.dim) for n in names]
        return features._normalise(np.asarray(rows))


def test_feature_cache_hits_keys_and_damage(tmp_path, minilm):
    cache = tmp_path / "features"
    enc = CountingEncoder()
    a, hit = features.features_for(["rain", "dog", "rain"], enc, cache)
    assert not hit and enc.calls == [["dog", "rain"]]             # each name once, in sorted order
    assert a.shape == (3, 8) and a.dtype == np.float32 and np.allclose(a[0], a[2])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    b, hit = features.features_for(["dog", "rain"], enc, cache)   # the same set in another order: a hit
    assert hit and len(enc.calls) == 1 and np.allclose(b, a[[1, 0]])
    files = sorted(cache.glob("*.safetensors"))
    assert len(files) == 1 and not list(cache.glob(".*"))          # written atomically: no temporary left
    # another entity set, another encoder: new keys
    _, hit = features.features_for(["dog", "rain", "cat"], enc, cache)
    assert not hit and len(list(cache.glob("*.safetensors"))) == 2
    other = CountingEncoder("stand-in:2")
    c, hit = features.features_for(["dog", "rain"], other, cache)
    assert not hit and other.calls and not np.allclose(c, b)
    assert len(list(cache.glob("*.safetensors"))) == 3
    # a damaged file is a miss, recomputed and rewritten
    files[0].write_bytes(files[0].read_bytes()[:40])
    d, hit = features.features_for(["dog", "rain"], enc, cache)
    assert not hit and len(enc.calls) == 3 and np.allclose(d, b)
    _, hit = features.features_for(["dog", "rain"], enc, cache)
    assert hit
    files[0].write_bytes(b"not safetensors at all")
    assert not features.features_for(["dog", "rain"], enc, cache)[1]
    # the real encoder: its id names the model and its files; unit-length rows; a paraphrase is close
    assert minilm.id.startswith("minilm:all-MiniLM-L6-v2:") and minilm.dim == 384
    f, hit = features.features_for(["puppy yelping", "dog yelping", "car horn"], minilm, cache)
    assert not hit and f.shape == (3, 384)
    assert f[0] @ f[1] > 0.8 > 0.4 > f[0] @ f[2]
    assert features.features_for(["car horn", "dog yelping", "puppy yelping"], minilm, cache)[1]


def test_encoder_choice(monkeypatch):
    monkeypatch.delenv("AKG_CLAP_MODEL", raising=False)
    monkeypatch.delenv("AKG_CLAP_CHECKPOINT", raising=False)
    assert features.resolve_kind("auto") == "minilm"
    monkeypatch.setenv("AKG_CLAP_MODEL", "/some/clap")
    assert features.resolve_kind("auto") == "clap" and features.resolve_kind("minilm") == "minilm"
    with pytest.raises(InputError, match="unknown encoder 'bert'"):
        features.resolve_kind("bert")


# --- training, storage, evaluation ---------------------------------------------------------------

def test_grounded_training_store_and_evaluation(trained, sliced, server_env):
    g, p = trained
    grounding = g.config.grounding
    assert grounding["encoder"] == "minilm" and grounding["encoder_id"].startswith("minilm:") and grounding["feature_dim"] == 384
    stored = store.load(g.path)
    assert stored.config["training"]["grounding"] == grounding
    # the features of the training entities travel with the weights: known entities need no encoder
    from safetensors.torch import load_file

    weights = load_file(g.path / "weights.safetensors")
    assert weights["entity_representations.0.features"].shape == (len(stored.entity_to_id), 384)
    assert not [k for k in weights if "extra" in k]
    # evaluation: every test triple is ranked, new entities among the candidates; plain misses them
    t = g.metrics["test_triples"]
    assert t["unseen_entities"] > 0 and t["scored"] == t["total"] == t["known"] + t["unseen_entities"]
    assert g.metrics["new"]["triples"] == t["unseen_entities"] and g.metrics["new"]["mrr"] > 0
    assert p.metrics["new"]["mrr"] == 0.0 and p.metrics["test_triples"]["scored"] == p.metrics["known"]["triples"]
    assert p.metrics["known"]["triples"] == g.metrics["known"]["triples"]
    for part in ("known", "new", "all"):
        assert set(g.metrics[part]) == {"mrr", "hits@1", "hits@3", "hits@5", "hits@10", "triples"}
    # round trip: the loaded model scores exactly as the trained one, new entities included
    from kge.workflows import evaluate_on

    data = from_graph(sliced)
    again = evaluate_on(stored.load_model(), stored.entity_to_id, stored.relation_to_id, data,
                        feature_cache=features.default_cache_dir(server_env.home))
    for part in ("known", "new", "all"):
        assert again[part] == pytest.approx(g.metrics[part], abs=1e-9)


def test_training_is_repeatable_and_every_fusion_trains(sliced, tmp_path):
    data = from_graph(sliced)
    factory = training_factory(data.train.triples)
    encoder = CountingEncoder()  # stand-in features: this is about the training machinery
    results = {}
    for fusion in ("average", "concat", "weighted"):
        config = dataclasses.replace(SMALL, epochs=4, grounding={**GROUNDING, "fusion": fusion})
        config, feats = grounded.prepare(config, _names(factory), tmp_path / "f", encoder=encoder)
        a = train(config, factory, features=feats)
        results[fusion] = a
        assert len(a.losses) == 4 and a.losses[-1] < a.losses[0]
        rep = grounded.representation(a.model)
        assert rep.fusion == fusion and rep(indices=None).shape == (factory.num_entities, 32)
        assert rep(indices=None).is_complex()
    b = train(config, factory, features=feats)
    assert b.losses == results["weighted"].losses  # the seed fixes dropout too
    w = grounded.representation(results["weighted"].model).weights()
    assert abs(sum(w) - 1) < 1e-6 and w != (0.5, 0.5)  # learnt modality weights
    cat = grounded.representation(results["concat"].model)
    assert cat.structural_dim == 16 and cat.projected_dim == 16
    # a complex backbone through PyKEEN's own sLCWA loop, and a real-valued one
    for model_name in ("ComplEx", "DistMult"):
        config = dataclasses.replace(SMALL, model=model_name, training_loop="slcwa", negatives=4, epochs=3, loss=None,
                                     loss_kwargs={}, grounding={**GROUNDING, "encoder_id": encoder.id, "feature_dim": 8})
        r = train(config, factory, features=feats)
        assert len(r.losses) == 3 and grounded.is_grounded(r.model)
        assert grounded.representation(r.model)(indices=None).is_complex() == (model_name == "ComplEx")


def test_unseen_entities_features_alone(trained, minilm):
    g, _ = trained
    model = store.load(g.path).load_model()
    rep = grounded.representation(model)
    feats = torch.from_numpy(minilm.encode(["puppy yelping"]))
    with grounded.extended(model, feats) as first:
        assert first == rep.num_known and model.num_entities == rep.num_known + 1
        e = rep(indices=torch.tensor([first]))
        assert torch.allclose(e, rep.project(feats))  # average fusion: features alone for a new entity
    assert model.num_entities == rep.num_known and rep.max_id == rep.num_known


# --- prediction ------------------------------------------------------------------------------------

def test_predict_unseen_name_cli(trained, run_cli, sliced):
    result = run_cli("predict", "puppy yelping", "has parent", "--model", "g-average", "-k", "5")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("puppy yelping —has parent→"), result.output
    assert lines[0].startswith("puppy yelping —has parent→")
    assert "'puppy yelping' is not in the graph: grounded by its name" in result.output
    assert sum(1 for l in lines if re.match(r"^\s+\d+\. ", l)) == 5
    out = json.loads(run_cli("predict", "Puppy_Yelping", "has parent", "--model", "g-average", "--json").output)
    assert out["head"] == "puppy yelping" and out["grounded_by_name"] and not out["head_in_graph"]
    assert len(out["tails"]) == 10 and all(t["status"] == "predicted" for t in out["tails"])
    # a known head is unchanged: known tails marked, no grounding note
    known = run_cli("predict", "dog", "has parent", "--model", "g-average")
    assert known.exit_code == 0 and "grounded by its name" not in known.output
    # a plain model still answers an unknown name with suggestions
    plain = run_cli("predict", "puppy yelping", "has parent", "--model", "p-plain")
    assert plain.exit_code == 1 and "unknown entity 'puppy yelping'" in plain.output


def test_paraphrase_scores_close_to_its_entity(trained, server_env):
    from kge.predict import Predictor

    g, _ = trained
    predictor = Predictor(store.load(g.path), feature_cache=features.default_cache_dir(server_env.home))
    n = len(predictor.entity_to_id)
    pairs = [("dog barking", "has parent"), ("the sound of a dog barking", "has parent"), ("teapot whistling", "has parent")]
    preds = predictor.predict_batch(pairs, k=n)
    scores = [np.array([p.score for p in sorted(ps, key=lambda p: p.tail)]) for ps in preds]
    near = np.corrcoef(scores[0], scores[1])[0, 1]
    far = np.corrcoef(scores[0], scores[2])[0, 1]
    assert predictor.grounded_by_name("the sound of a dog barking") and not predictor.grounded_by_name("dog barking")
    assert near > 0.8 and near > far + 0.2, (near, far)
    top = {p.tail for p in preds[0][:20]}
    assert len(top & {p.tail for p in preds[1][:20]}) >= 5


def test_evaluate_side_by_side_cli(trained, run_cli):
    out = json.loads(run_cli("evaluate", "g-average", "--against", "p-plain", "--json").output)
    assert out["model"] == "g-average" and out["grounded"]
    assert set(out["metrics"]) >= {"known", "new", "all", "test_triples"}
    other = out["against"][0]
    assert other["model"] == "p-plain" and not other["grounded"] and other["metrics"]["new"]["mrr"] == 0
    assert other["delta"]["new"]["mrr"] == pytest.approx(out["metrics"]["new"]["mrr"], abs=1e-6)
    text = run_cli("evaluate", "g-average", "--against", "p-plain").output
    assert "MRR known" in text and "MRR new" in text and "MRR all" in text and "Δ p-plain" in text


# --- CLI training and bad input -------------------------------------------------------------------

def test_cli_train_grounded_and_bad_input(sliced, run_cli):
    r = run_cli("train", "--grounded", "text", "--encoder", "minilm", "--fusion", "concat", "--epochs", "2", "--dim", "16",
                "--negatives", "16", "--name", "g-cli", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["config"]["preset"] == "grounded" and out["config"]["grounding"]["fusion"] == "concat"
    assert out["metrics"]["new"]["triples"] > 0
    listed = {m["name"]: m for m in json.loads(run_cli("models", "--json").output)}
    assert "g-cli" in listed
    bad = run_cli("train", "--grounded", "text", "--encoder", "bert")
    assert bad.exit_code == 2 and "'bert' is not one of" in bad.output
    bad = run_cli("train", "--grounded", "text", "--fusion", "product")
    assert bad.exit_code == 2 and "'product' is not one of" in bad.output
    bad = run_cli("train", "--fusion", "concat")
    assert bad.exit_code == 1 and "fusion only apply to a grounded model: ground it in text" in bad.output
    bad = run_cli("train", "--grounded", "text", "--modality-dropout", "1.5")
    assert bad.exit_code == 1 and "modality dropout must be a number in [0, 1), got 1.5" in bad.output
    with pytest.raises(InputError, match="unknown fusion 'sum'"):
        grounded.Grounding(fusion="sum")


def test_older_model_directories_still_load():
    stored = store.load(Path(__file__).parent / "fixtures" / "kge_model_v1")
    assert stored.train_config.grounding is None and not grounded.is_grounded(stored.load_model())


# --- CLAP text features and the reasoning pipeline ---------------------------------------------------

def test_clap_grounding_and_labels_without_entity(trained, sliced, clap_dir, server_env, monkeypatch, tmp_path):
    from akg.config import Settings
    from kge.workflows import train_from_graph
    from akg.encoders import EncoderSpec, load_encoder
    from reasoning.prompts import EnrichSettings
    from reasoning.workflows import open_session

    monkeypatch.setenv("AKG_CLAP_MODEL", str(clap_dir))
    root = store.models_root(server_env.home)
    config = dataclasses.replace(SMALL, epochs=2, grounding={**GROUNDING, "encoder": "auto"})
    g = train_from_graph(sliced, config, models_root=root, name="g-clap", evaluate_after=False)
    assert g.config.grounding["encoder"] == "clap" and g.config.grounding["feature_dim"] == 16
    assert g.config.grounding["clap"]["model"] == str(clap_dir)

    settings = Settings.from_env()
    spec = EncoderSpec(model=str(clap_dir))
    encoder = load_encoder(spec)
    labels = tmp_path / "labels.txt"
    labels.write_text("dog bark\tdog barking\npuppy yelping\n")
    enrich = EnrichSettings(relations=("has parent",), top_m=2)
    plain = open_session(sliced, settings, labels=str(labels), encoder_spec=spec, enrich=enrich, encoder=encoder,
                         kge_model="p-plain")
    assert [l.entity for l in plain.label_set.labels] == ["dog barking", None]
    assert plain.bank.of(1).stop == plain.bank.of(1).start  # no entity, plain model: base prompt only
    for name in ("g-clap", "g-average"):
        session = open_session(sliced, settings, labels=str(labels), encoder_spec=spec, enrich=enrich, encoder=encoder,
                               kge_model=name)
        assert session.predictor.grounded
        mine = [session.bank.facts[i] for i in range(session.bank.of(1).start, session.bank.of(1).stop)]
        assert len(mine) == 2 and all(f.kind == "predicted" and f.relation == "has parent" for f in mine)
        assert all(p.startswith("puppy yelping, ") for p in session.bank.prompts[session.bank.of(1)])
    shared = open_session(sliced, settings, labels=str(labels), encoder_spec=spec, enrich=enrich,
                                    encoder=encoder, kge_model="g-clap")
    assert shared.predictor.grounder._encoder is not None and shared.predictor.grounder._encoder.clap is encoder


def test_a_changed_encoder_cannot_ground_new_names(trained, server_env, tmp_path):
    from kge.predict import Predictor

    g, _ = trained
    stored = store.load(g.path)
    stored.config["training"]["grounding"]["encoder_id"] = "minilm:some-other-build"
    predictor = Predictor(stored, feature_cache=tmp_path / "empty-cache")
    assert predictor.predict("dog", "has parent", k=3)  # known entities need no encoder
    with pytest.raises(ConfigError, match="grounded with the encoder minilm:some-other-build"):
        predictor.predict("puppy yelping", "has parent", k=3)
