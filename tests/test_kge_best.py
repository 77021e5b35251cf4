"""Issue 16, part 1: the 1-vs-all training regimes (reciprocal relations, N3, label smoothing, other
backbones), the `best` preset, and per-relation metrics, checked against hand computations."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from pykeen.models import ComplEx, DistMult
from pykeen.triples import KGInfo

from akg.errors import InputError
from akg_loader.ingest import ingest
from akg_loader.tsv import read_file
from kge import store
from kge.data import from_graph, training_factory
from kge.evaluate import evaluate, per_relation_rows
from kge.onevsall import _loss
from kge.predict import Predictor
from kge.presets import PRESETS, TrainConfig, configure
from kge.scoring import score_all
from kge.train import train
from kge.workflows import evaluate_on, train_from_graph

ONE_VS_ALL = TrainConfig(model="ComplEx", embedding_dim=8, learning_rate=0.05, batch_size=256, epochs=2,
                         training_loop="1vsall", inverse_triples=True, regularizer="n3", regularizer_weight=0.01,
                         label_smoothing=0.1, seed=3)


@pytest.fixture(scope="module")
def mini_graph(graph, mini_dir):
    """The bundled mini graph, ingested once for this module (its tests only read it)."""
    from helpers import wipe

    wipe(graph)
    ingest(graph, [read_file(mini_dir / "mini_akg_pruned.tsv"), read_file(mini_dir / "mini_akg_test.tsv")])
    yield graph
    wipe(graph)


@pytest.fixture
def models_home(server_env):
    root = store.models_root(server_env.home)
    shutil.rmtree(root, ignore_errors=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


# -- per-relation metrics against ranks worked out by hand ----------------------------------------


def _hand_rank(scores: list[float], answer: int, others_true: set[int]) -> float:
    """Realistic filtered rank: other true answers left out, ties counted half."""
    true = scores[answer]
    rivals = [s for i, s in enumerate(scores) if i != answer and i not in others_true]
    return 1 + sum(s > true for s in rivals) + 0.5 * sum(s == true for s in rivals)


def test_per_relation_mrr_equals_a_hand_computation():
    # DistMult on 5 entities, 2 relations, with embeddings set by hand: score(h, r, t) = sum h*r*t
    model = DistMult(triples_factory=KGInfo(num_entities=5, num_relations=2, create_inverse_triples=False),
                     embedding_dim=2, random_seed=0)
    ent = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0], [-1.0, 0.5]]
    rel = [[1.0, 2.0], [0.5, -1.0]]
    with torch.no_grad():
        model.entity_representations[0]._embeddings.weight.copy_(torch.tensor(ent))
        model.relation_representations[0]._embeddings.weight.copy_(torch.tensor(rel))
    train_triples = [(0, 0, 1), (2, 1, 3)]
    test = [(0, 0, 2), (1, 0, 3), (2, 1, 4), (0, 1, 3)]
    names = {0: "has part", 1: "occurs in"}

    def score(h, r, t):
        return sum(a * b * c for a, b, c in zip(ent[h], rel[r], ent[t]))

    everything = set(train_triples) | set(test)
    expected: dict[str, list[float]] = {}
    for h, r, t in test:
        tails = [score(h, r, e) for e in range(5)]
        heads = [score(e, r, t) for e in range(5)]
        rt = _hand_rank(tails, t, {x for (a, b, x) in everything if (a, b) == (h, r) and x != t})
        rh = _hand_rank(heads, h, {x for (x, b, c) in everything if (b, c) == (r, t) and x != h})
        expected.setdefault(names[r], []).extend([1 / rt, 1 / rh])
    mapped = torch.tensor(test)
    got = evaluate(model, mapped, torch.tensor(train_triples + test), unknown=1,
                   relations=[names[r] for _, r, _ in test], unknown_relations=["has part"])
    table = got["per_relation"]
    assert set(table) == {"has part", "occurs in"}
    for name, rrs in expected.items():
        assert table[name]["known"]["mrr"] == pytest.approx(sum(rrs) / len(rrs), abs=1e-9)
        assert table[name]["known"]["triples"] == len(rrs) // 2
    # 'all' counts the one unscored "has part" triple as a miss on both sides
    has_part = expected["has part"]
    assert table["has part"]["all"]["mrr"] == pytest.approx(sum(has_part) / (len(has_part) + 2), abs=1e-9)
    assert table["has part"]["all"]["triples"] == 3 and table["occurs in"]["all"]["triples"] == 2
    # and the rows the CLI and the explorer show: the weakest relation first
    rows = per_relation_rows(table)
    assert [r["MRR known"] for r in rows] == sorted(r["MRR known"] for r in rows)


# -- reciprocal models answer heads through the inverse relation, tails through the forward one ---


def test_reciprocal_scores_use_the_forward_and_inverse_relation_rows():
    model = ComplEx(triples_factory=KGInfo(num_entities=6, num_relations=2, create_inverse_triples=True),
                    embedding_dim=3, random_seed=1)
    ent = model.entity_representations[0](indices=None).detach()
    rel = model.relation_representations[0](indices=None).detach()
    assert rel.shape[0] == 4  # two rows per relation: 2r forward, 2r+1 inverse
    batch = torch.tensor([[0, 1, 4], [5, 0, 2]])
    tails, heads = score_all(model, batch, "tail"), score_all(model, batch, "head")
    for i, (h, r, t) in enumerate(batch.tolist()):
        for e in range(6):  # ComplEx: Re(sum a * rel * conj(b)), by hand
            assert tails[i, e] == pytest.approx(float((ent[h] * rel[2 * r] * ent[e].conj()).sum().real), abs=1e-5)
            assert heads[i, e] == pytest.approx(float((ent[t] * rel[2 * r + 1] * ent[e].conj()).sum().real), abs=1e-5)
    # PyKEEN's own prediction agrees
    assert torch.allclose(heads, model.predict(batch, target="head").detach(), atol=1e-5)


def test_cross_entropy_with_label_smoothing_is_pykeens():
    from pykeen.losses import CrossEntropyLoss

    torch.manual_seed(0)
    scores, answer = torch.randn(4, 7), torch.tensor([0, 3, 6, 2])
    labels = torch.nn.functional.one_hot(answer, 7).float()
    for eps in (0.0, 0.1):
        theirs = CrossEntropyLoss().process_lcwa_scores(scores, labels, label_smoothing=eps or None, num_entities=7)
        assert float(_loss(CrossEntropyLoss(), scores, answer, eps, 7)) == pytest.approx(float(theirs), abs=1e-6)


# -- the new options train, save, load, predict and evaluate on the bundled mini graph -----------


@pytest.mark.parametrize("config", [
    ONE_VS_ALL,
    PRESETS["best"].with_overrides(embedding_dim=8, epochs=1),  # with its model settings (xavier initialisers)
    TrainConfig(model="DistMult", embedding_dim=8, learning_rate=0.05, batch_size=256, epochs=1, training_loop="1vsall",
                regularizer="none", seed=3),
    TrainConfig(model="RotatE", embedding_dim=8, learning_rate=0.05, batch_size=256, epochs=1, training_loop="1vsall",
                inverse_triples=True, seed=3),
    TrainConfig(model="TuckER", embedding_dim=8, learning_rate=0.05, batch_size=256, epochs=1, training_loop="1vsall",
                inverse_triples=True, seed=3),
    TrainConfig(model="ComplEx", embedding_dim=8, learning_rate=0.05, batch_size=256, epochs=1, training_loop="lcwa",
                loss="crossentropy", inverse_triples=True, regularizer="n3", regularizer_weight=0.01, label_smoothing=0.1,
                seed=3),
], ids=lambda c: f"{c.preset}-{c.model}-{c.training_loop}-{'recip' if c.inverse_triples else 'plain'}")
def test_new_options_train_store_and_predict(mini_graph, models_home, config):
    trained = train_from_graph(mini_graph, config, models_root=models_home, name="m")
    stored = store.load(trained.path)
    assert stored.train_config == config  # every setting kept in the model card
    assert stored.metrics["per_relation"]  # and the per-relation metrics with them
    model = stored.load_model()
    data = from_graph(mini_graph)
    again = evaluate_on(model, stored.entity_to_id, stored.relation_to_id, data)
    assert again["known"]["mrr"] == pytest.approx(trained.metrics["known"]["mrr"], abs=1e-6)
    # a prediction's tail scores are the model's scores of (h, r, ?) through the forward relation
    head, relation = data.train.triples[0][:2]
    predictions = Predictor(stored).predict(head, relation, k=3)
    h, r = stored.entity_to_id[head], stored.relation_to_id[relation]
    forward = torch.tensor([[h, 2 * r if config.inverse_triples else r]])
    with torch.no_grad():
        by_pykeen = model.score_t(forward)[0]
    assert [p.tail for p in predictions] == [stored_name(stored, i) for i in torch.topk(by_pykeen, 3).indices.tolist()]


def stored_name(stored, i: int) -> str:
    return {v: k for k, v in stored.entity_to_id.items()}[i]


def test_one_vs_all_is_repeatable_for_a_seed(mini_graph):
    factory = training_factory(from_graph(mini_graph).train.triples, inverse=True)
    a, b = train(ONE_VS_ALL, factory), train(ONE_VS_ALL, factory)
    assert a.losses == b.losses and len(a.losses) == 2
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_best_preset_and_the_others_keep_their_meaning():
    best = PRESETS["best"]
    assert (best.training_loop, best.inverse_triples, best.regularizer) == ("1vsall", True, "n3")
    assert PRESETS["fast"].training_loop == "lean" and PRESETS["paper"].training_loop == "slcwa"
    assert configure(preset_name="best", model="DistMult").model_kwargs == {}  # the backbone's settings go with it


# -- bad values: one line each --------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "says"), [
    ({"regularizer": "l7"}, "regularizer must be one of default, none, n3"),
    ({"regularizer": "n3", "regularizer_weight": -1.0}, "regularizer weight must be a finite number > 0"),
    ({"regularizer_weight": 0.5}, "applies to the n3 regularizer only"),
    ({"label_smoothing": 1.0}, "label smoothing must be a number in [0, 1)"),
    ({"label_smoothing": 0.1, "training_loop": "slcwa"}, "label smoothing applies to the 1vsall and lcwa loops"),
    ({"training_loop": "lean", "inverse_triples": True}, "the lean loop trains without inverse triples"),
    ({"training_loop": "1-vs-all"}, "training loop must be one of lean, slcwa, lcwa, 1vsall"),
    ({"model_kwargs": {"embedding_dim": 3}}, "set by the training configuration itself"),
])
def test_bad_settings_are_one_line_errors(settings, says):
    with pytest.raises(InputError) as e:
        TrainConfig(**settings)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_settings_pykeen_refuses_are_one_line_errors(mini_graph):
    factory = training_factory(from_graph(mini_graph).train.triples)
    bad = [TrainConfig(model="TuckER", embedding_dim=8, epochs=1, regularizer="n3", regularizer_weight=0.1),
           TrainConfig(model="ComplEx", embedding_dim=8, epochs=1, training_loop="1vsall", model_kwargs={"colour": 1}),
           TrainConfig(model="ComplEx", embedding_dim=8, epochs=1, training_loop="lcwa", label_smoothing=0.1)]
    for config, says in zip(bad, ["takes no regularizer", "with model settings", "label smoothing needs the crossentropy"]):
        with pytest.raises(InputError) as e:
            train(config, factory)
        assert says in str(e.value) and "\n" not in str(e.value)


def test_cli_per_relation_and_bad_options(mini_graph, models_home, run_cli):
    res = run_cli("train", "--loop", "1vsall", "--model", "DistMult", "--dim", "8", "--epochs", "1", "--reciprocal",
                  "--regularizer", "n3", "--regularizer-weight", "0.01", "--label-smoothing", "0.1", "--name", "d", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["config"]["inverse_triples"] is True and out["config"]["label_smoothing"] == 0.1
    ev = json.loads(run_cli("evaluate", "d", "--per-relation", "--json").stdout)
    table = ev["metrics"]["per_relation"]
    relations = {r for _, r, _ in from_graph(mini_graph).test.triples}
    assert set(table) == relations
    for m in table.values():
        assert set(m) == {"known", "all"} and {"mrr", "hits@10", "triples"} <= set(m["known"])
    assert sum(m["all"]["triples"] for m in table.values()) == ev["metrics"]["all"]["triples"]
    assert "per_relation" not in json.loads(run_cli("evaluate", "d", "--json").stdout)["metrics"]
    text = run_cli("evaluate", "d", "--per-relation").stdout
    assert "per relation (weakest first)" in text and all(r in text for r in relations)
    res = run_cli("train", "--label-smoothing", "2", "--loop", "1vsall")
    assert res.exit_code != 0 and "label smoothing must be a number in [0, 1)" in res.output
    assert "Traceback" not in res.output
