"""Broken inputs: every one is a single `Error: ...` line naming the thing and the problem, exit status 1.

The corpus damages real files (a stored KGE model copied from the committed fixture, a small real
CLAP model built by tests/tiny_clap.py, report folders, batch files) and runs the real CLI. Each
case's expected words are what the damage implies (the file that was damaged, the value that was
typed), not text copied from the implementation. Targeted tests follow for what a message alone
cannot show: broken models listed and skipped, model names against paths, training memory that does
not grow with name lengths, batch prediction that answers the good lines, and caches that treat a
bad entry as a miss.
"""

from __future__ import annotations

import json
import shutil
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from akg.errors import InputError
from kge import store

sys.path.insert(0, str(Path(__file__).parent))

FIXTURE = Path(__file__).parent / "fixtures" / "kge_model_v1"   # RotatE, dim 8, 20 entities, 6 relations


@pytest.fixture
def models(server_env):
    """AKG_HOME/models, empty before and after the test."""
    root = store.models_root(server_env.home)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Env:
    tmp: Path
    models: Path
    clap: Path

    def model(self, name: str = "fx") -> Path:
        """A copy of the committed fixture model, stored under AKG_HOME/models/NAME."""
        return Path(shutil.copytree(FIXTURE, self.models / name))

    def clap_copy(self) -> Path:
        return Path(shutil.copytree(self.clap, self.tmp / "clap-copy"))


def _edit_json(path: Path, change) -> None:
    """`change` edits the JSON in place."""
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _rewrite_json(path: Path, make) -> None:
    """The JSON replaced by `make(old)`."""
    path.write_text(json.dumps(make(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


def _truncate(path: Path, keep: int | None = None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if keep is None else keep])


def _damaged_model(damage, *argv_tail):
    """A corpus setup: the fixture stored as `fx`, damaged, then `akg predict dog "has parent" --model fx`."""
    def setup(env: Env) -> list[str]:
        damage(env.model("fx"))
        return list(argv_tail) or ["predict", "dog", "has parent", "--model", "fx"]
    return setup


def _training(**values):
    """The stored fixture with these training settings in its config.json."""
    return _damaged_model(lambda d: _edit_json(d / "config.json", lambda c: c["training"].update(values)))


def _id_map(name: str, make):
    """The stored fixture with entities.json or relations.json replaced by make(old map)."""
    return _damaged_model(lambda d: _rewrite_json(d / name, make))


def _entities_without_last(folder: Path) -> None:
    _rewrite_json(folder / "entities.json", lambda ids: {k: v for k, v in ids.items() if v != len(ids) - 1})


def _clap(damage):
    """A corpus setup: a damaged copy of the tiny CLAP model, then `akg classify clip.wav --model DIR`."""
    def setup(env: Env) -> list[str]:
        folder = env.clap_copy()
        damage(folder)
        clip = env.tmp / "clip.wav"
        sf.write(clip, np.zeros(4800, dtype=np.float32), 48000)
        return ["classify", str(clip), "--model", str(folder), "--labels", "esc50", "--no-kge"]
    return setup


def _batch(text: str | None):
    """`akg predict --batch FILE --model fx`, FILE holding `text` (None: no such file)."""
    def setup(env: Env) -> list[str]:
        env.model("fx")
        path = env.tmp / ("pairs.tsv" if text is not None else "absent.tsv")
        if text is not None:
            path.write_text(text, encoding="utf-8")
        return ["predict", "--batch", str(path), "--model", "fx"]
    return setup


def _out_dir(make):
    """`akg zeroshot-eval --out DIR` where DIR cannot be written (made by `make`)."""
    def setup(env: Env) -> list[str]:
        out = make(env.tmp)
        (env.tmp / "meta.csv").write_text("filename,category\nx.wav,dog\n", encoding="utf-8")
        return ["zeroshot-eval", "--audio-dir", str(env.tmp), "--meta", str(env.tmp / "meta.csv"), "--out", str(out)]
    return setup


def _under_a_file(tmp: Path) -> Path:
    (tmp / "plain.txt").write_text("a file, not a folder")
    return tmp / "plain.txt" / "report"


def _a_file(tmp: Path) -> Path:
    (tmp / "taken.md").write_text("a file, not a folder")
    return tmp / "taken.md"


def _fixed(*argv):
    return lambda env: list(argv)


# (name, setup(env) -> argv, words the one error line must contain)
CORPUS = [
    # 1. damaged model folders under AKG_HOME/models
    ("training-unknown-key", _training(colour="blue"), ["config.json", "colour"]),
    ("training-a-list", _damaged_model(lambda d: _edit_json(d / "config.json", lambda c: c.update(training=[8, 0.05]))),
     ["config.json", "training", "list"]),
    ("training-dim-a-string", _training(embedding_dim="8"), ["config.json", "embedding dimension", "'8'"]),
    ("training-dim-huge", _training(embedding_dim=10**9), ["config.json", "embedding dimension", "1000000000"]),
    ("training-dim-not-the-weights", _training(embedding_dim=16), ["weights.safetensors", "config.json", "16"]),
    ("training-lr-negative", _training(learning_rate=-0.5), ["config.json", "learning rate", "-0.5"]),
    ("weights-truncated", _damaged_model(lambda d: _truncate(d / "weights.safetensors")),
     ["weights.safetensors", "truncated"]),
    ("weights-empty", _damaged_model(lambda d: _truncate(d / "weights.safetensors", 0)),
     ["weights.safetensors", "empty"]),
    ("weights-missing", _damaged_model(lambda d: (d / "weights.safetensors").unlink()),
     ["weights.safetensors", "missing"]),
    ("entities-a-list", _damaged_model(lambda d: (d / "entities.json").write_text('["dog", "cat"]')),
     ["entities.json", "map"]),
    ("entities-ids-as-text", _id_map("entities.json", lambda m: {k: str(v) for k, v in m.items()}),
     ["entities.json", "ids"]),
    ("relations-ids-repeated", _id_map("relations.json", lambda m: {k: 0 for k in m}), ["relations.json", "ids"]),
    ("entities-one-fewer-than-config", _damaged_model(_entities_without_last),
     ["entities.json", "19", "20"]),
    ("entities-one-fewer-than-weights",
     _damaged_model(lambda d: (_entities_without_last(d),
                               _edit_json(d / "config.json", lambda c: c.pop("num_entities")))),
     ["weights.safetensors", "entities.json", "19"]),
    ("evaluate-damaged-model", _damaged_model(lambda d: _truncate(d / "weights.safetensors"), "evaluate", "fx"),
     ["weights.safetensors", "truncated"]),
    # 4. training settings, refused by the library
    ("train-lr-negative", _fixed("train", "--lr", "-1"), ["learning rate", "-1"]),
    ("train-lr-nan", _fixed("train", "--lr", "nan"), ["learning rate", "nan"]),
    ("train-lr-inf", _fixed("train", "--lr", "inf"), ["learning rate", "inf"]),
    ("train-dim-zero", _fixed("train", "--dim", "0"), ["embedding dimension", "0"]),
    ("train-dim-huge", _fixed("train", "--dim", "1000000000"), ["embedding dimension", "1000000000"]),
    ("train-epochs-negative", _fixed("train", "--epochs", "-3"), ["epochs", "-3"]),
    ("train-batch-zero", _fixed("train", "--batch-size", "0"), ["batch size", "0"]),
    ("train-batch-huge", _fixed("train", "--batch-size", "100000000"), ["batch size", "100000000"]),
    ("train-negatives-zero", _fixed("train", "--negatives", "0"), ["negatives", "0"]),
    ("train-seed-negative", _fixed("train", "--seed", "-1"), ["seed", "-1"]),
    ("train-modality-dropout", _fixed("train", "--grounded", "text", "--modality-dropout", "1.5"),
     ["modality dropout", "1.5"]),
    # 6. a batch none of whose lines can be answered
    ("batch-no-good-line", _batch("nosuchthing\thas parent\njust one field\n"),
     ["pairs.tsv", "line 1", "nosuchthing", "line 2"]),
    ("batch-empty", _batch("# nothing but a comment\n\n"), ["pairs.tsv", "no"]),
    ("batch-missing", _batch(None), ["absent.tsv", "no such file"]),
    # 7. damaged CLAP model directories
    ("clap-weights-truncated", _clap(lambda d: _truncate(d / "model.safetensors")),
     ["clap-copy", "model.safetensors", "truncated"]),
    ("clap-weights-missing", _clap(lambda d: (d / "model.safetensors").unlink()), ["clap-copy", "model.safetensors"]),
    ("clap-config-missing", _clap(lambda d: (d / "config.json").unlink()), ["clap-copy", "config.json", "missing"]),
    ("clap-config-truncated", _clap(lambda d: _truncate(d / "config.json")), ["clap-copy", "config.json"]),
    ("clap-config-not-the-weights",
     _clap(lambda d: _edit_json(d / "config.json", lambda c: c["text_config"].update(hidden_size=64))),
     ["clap-copy", "model.safetensors", "config.json"]),
    ("clap-tokenizer-missing", _clap(lambda d: (d / "tokenizer.json").unlink()), ["clap-copy", "tokenizer"]),
    ("clap-tokenizer-truncated", _clap(lambda d: _truncate(d / "tokenizer.json")), ["clap-copy", "tokenizer.json"]),
    ("clap-processor-missing", _clap(lambda d: (d / "processor_config.json").unlink()),
     ["clap-copy", "processor_config.json"]),
    # 9. a report folder that cannot be written
    ("zeroshot-out-under-a-file", _out_dir(_under_a_file), ["plain.txt", "report", "file"]),
    ("zeroshot-out-is-a-file", _out_dir(_a_file), ["taken.md", "not a folder"]),
    # 10. a listening address that is none
    ("ui-bad-host", _fixed("ui", "--host", "bad host", "--no-browser"), ["--host", "bad host"]),
]


@pytest.mark.parametrize("setup, words", [pytest.param(s, w, id=n) for n, s, w in CORPUS])
def test_one_line_error(setup, words, run_cli, models, clap_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AKG_LABEL_SETS_DIR", str(tmp_path / "no-label-sets"))  # never reached: the error comes first
    env = Env(tmp_path, models, clap_dir)
    argv = setup(env)
    res = run_cli(*argv)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "unexpected" not in lines[0]  # a handled error, not the group's safety net for unforeseen ones
    for word in words:
        assert word in lines[0], (word, lines[0])


# --- 2. broken models are listed as broken, and the latest skips them ----------------------------

def _stored_at(folder: Path, created_at: str) -> None:
    _edit_json(folder / "config.json", lambda c: c.update(created_at=created_at))


def test_models_marks_broken_ones_and_latest_skips_them(run_cli, models, empty_graph):
    healthy = Path(shutil.copytree(FIXTURE, models / "older-good"))
    _stored_at(healthy, "2030-01-01T00:00:00+00:00")
    broken = Path(shutil.copytree(FIXTURE, models / "newer-broken"))
    _stored_at(broken, "2030-06-01T00:00:00+00:00")
    _truncate(broken / "weights.safetensors")
    (models / "not-a-model").mkdir()  # neither config nor weights: no model at all

    listed = json.loads(run_cli("models", "--json").stdout)
    assert [(m["name"], m["broken"]) for m in listed] == [("older-good", False), ("newer-broken", True)]
    assert "weights.safetensors" in listed[1]["problem"] and "truncated" in listed[1]["problem"]
    assert listed[0]["problem"] is None and listed[0]["model"] == "RotatE"
    text = run_cli("models")
    assert text.exit_code == 0
    line = next(l for l in text.stdout.splitlines() if l.startswith("newer-broken"))
    assert "BROKEN" in line and "weights.safetensors" in line

    # plain `akg predict` uses the latest usable model, and says it skipped the newest
    res = run_cli("predict", "dog", "has parent", "-k", "3", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"] == "older-good"
    assert "newer-broken" in res.stderr and "skipped" in res.stderr
    assert store.resolve(None, models).name == "older-good"

    # only broken models: a clear error, not "no model"
    shutil.rmtree(healthy)
    with pytest.raises(InputError, match="newer-broken.*broken"):
        store.resolve(None, models)


def test_listing_reads_headers_only(models, monkeypatch):
    """`akg models` checks each model's weights from the header: no tensor is loaded."""
    Path(shutil.copytree(FIXTURE, models / "fx"))

    def no_loading(*args, **kwargs):
        raise AssertionError("weights loaded while listing")

    monkeypatch.setattr(store, "load_file", no_loading)
    assert [m.name for m in store.scan(models)] == ["fx"]


# --- 3. a model argument is a stored model's name unless it is a path ----------------------------

def test_a_model_name_is_not_shadowed_by_a_folder_here(models, tmp_path, monkeypatch):
    stored = Path(shutil.copytree(FIXTURE, models / "fx"))
    local = Path(shutil.copytree(FIXTURE, tmp_path / "fx"))
    _truncate(local / "weights.safetensors")  # the folder here is broken, the stored model is not
    monkeypatch.chdir(tmp_path)
    assert store.resolve("fx", models).path == stored
    for as_path in ("./fx", "fx/", str(local)):
        with pytest.raises(InputError, match="weights.safetensors"):
            store.resolve(as_path, models)
    with pytest.raises(InputError, match="no model named 'fy'"):
        store.resolve("fy", models)


# --- 4. the library refuses bad settings, whoever calls it ---------------------------------------

@pytest.mark.parametrize("setting, value, words", [
    ("learning_rate", -1.0, "learning rate"), ("learning_rate", float("nan"), "learning rate"),
    ("embedding_dim", 0, "embedding dimension"), ("epochs", -3, "epochs"), ("batch_size", 10**8, "batch size"),
    ("negatives", 0, "negatives"), ("embedding_dim", "16", "embedding dimension"), ("training_loop", "fast", "loop"),
])
def test_train_config_refuses_bad_values(setting, value, words):
    from kge.presets import TrainConfig, preset

    with pytest.raises(InputError, match=words):
        preset("fast").with_overrides(**{setting: value})
    with pytest.raises(InputError, match=words):
        TrainConfig(**{setting: value})


def test_a_model_that_cannot_fit_is_refused_before_anything_is_allocated():
    from pykeen.triples import KGInfo

    from kge.presets import preset
    from kge.train import check_fits

    config = preset("fast").with_overrides(embedding_dim=16_384)  # within bounds, but over ten million entities
    with pytest.raises(InputError, match="embedding dimension 16384 .* GiB"):
        check_fits(config, KGInfo(num_entities=10**7, num_relations=47, create_inverse_triples=False))


# --- 5. training memory does not grow with name lengths ------------------------------------------

def test_a_long_entity_name_does_not_scale_training_memory():
    import kge.lean  # noqa: F401 - imported before measuring: module imports are not training's memory
    from kge.data import training_factory
    from kge.presets import TrainConfig
    from kge.train import train

    long_name = "x" * 100_000
    names = [long_name] + [f"entity {i}" for i in range(39)]
    relations = ["has parent", "occurs in"]
    triples = [(names[i % 40], relations[i % 2], names[(7 * i + 3) % 40]) for i in range(300)]
    string_array_bytes = len(long_name) * 4 * 3 * len(triples)  # what np.asarray(triples, dtype=str) would take
    tracemalloc.start()
    try:
        factory = training_factory(triples)
        train(TrainConfig(embedding_dim=8, learning_rate=0.05, batch_size=64, epochs=1, training_loop="lean",
                          negatives=8, loss="nssa", seed=1), factory)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < string_array_bytes / 20, (peak, string_array_bytes)
    # the maps PyKEEN's from_labeled_triples makes: sorted unique names; the triples mapped through them
    assert list(factory.entity_to_id) == sorted(set(names)) and list(factory.entity_to_id.values()) == list(range(40))
    assert factory.relation_to_id == {"has parent": 0, "occurs in": 1}
    ordered = sorted(set(names))
    back = [(ordered[h], relations[r], ordered[t]) for h, r, t in factory.mapped_triples.tolist()]
    assert sorted(back) == sorted(set(triples))


def test_factory_equals_pykeens_own():
    import torch
    from pykeen.triples import TriplesFactory

    from kge.data import training_factory

    names = ["dog", "Dog", "café", "cafe", "ä b", "日本", "z"]
    relations = ["has parent", "occurs in", "co-occurs with"]
    triples = [(names[i % 7], relations[i % 3], names[(5 * i + 1) % 7]) for i in range(60)] * 2  # with repeats
    for inverse in (False, True):
        ours = training_factory(triples, inverse=inverse)
        theirs = TriplesFactory.from_labeled_triples(np.asarray(triples, dtype=str), create_inverse_triples=inverse)
        assert ours.entity_to_id == theirs.entity_to_id and ours.relation_to_id == theirs.relation_to_id
        assert torch.equal(ours.mapped_triples, theirs.mapped_triples)
        assert ours.num_relations == theirs.num_relations


# --- 6. batch prediction answers every good line and lists the bad ones ---------------------------

def test_batch_answers_good_lines_and_reports_bad_ones(run_cli, models, tmp_path, empty_graph):
    Path(shutil.copytree(FIXTURE, models / "fx"))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("dog\thas parent\n"
                     "nosuchthing\thas parent\n"
                     "# a comment\n"
                     "cat\tno such relation\n"
                     "only one field\n"
                     "siren\twarns about\n", encoding="utf-8")
    res = run_cli("predict", "--batch", str(pairs), "--model", "fx", "-k", "2", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    answered = [(r["line"], r["head"], r["relation"]) for r in out["results"]]
    assert answered == [(1, "dog", "has parent"), (6, "siren", "warns about")]
    assert all(len(r["tails"]) == 2 for r in out["results"])
    assert [e["line"] for e in out["errors"]] == [2, 4, 5]
    assert "nosuchthing" in out["errors"][0]["problem"] and "no such relation" in out["errors"][1]["problem"]
    warnings = [l for l in res.stderr.splitlines() if l.startswith("warning: ")]
    assert [w.split(":")[1].strip() for w in warnings] == [f"{pairs}, line {n}" for n in (2, 4, 5)]
    text = run_cli("predict", "--batch", str(pairs), "--model", "fx", "-k", "2")
    assert text.exit_code == 0 and "dog —has parent→" in text.stdout and "siren —warns about→" in text.stdout


# --- 8. caches: a bad entry is a miss, recomputed and rewritten ------------------------------------

class _CountingEncoder:
    identity = "test:counting"
    sample_rate = 16000
    window_seconds = 10.0

    def __init__(self):
        self.calls = 0

    def embed_audio(self, clips):
        self.calls += len(clips)
        rows = np.stack([np.array([len(c), 1.0, 2.0, 3.0], dtype=np.float32) for c in clips])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def embed_text(self, texts):
        rows = np.stack([np.array([len(t), 1.0, 0.5, 0.25], dtype=np.float32) for t in texts])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _bad_entries(path: Path):
    """Ways a cached embedding can be wrong: shape, dtype, values, format, truncation, pickle."""
    good = np.load(path)
    yield "shape", lambda: np.save(path, good[:3])
    yield "2-d", lambda: np.save(path, good[None, :])
    yield "dtype", lambda: np.save(path, good.astype(np.float64))
    yield "not finite", lambda: np.save(path, np.full_like(good, np.nan))
    yield "not unit length", lambda: np.save(path, good * 3)
    yield "truncated", lambda: path.write_bytes(path.read_bytes()[:60])
    yield "empty", lambda: path.write_bytes(b"")
    yield "an npz", lambda: np.savez(str(path)[:-4], a=good) or path.with_suffix(".npz").replace(path)
    yield "a pickle", lambda: np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)


def test_audio_cache_treats_bad_entries_as_misses(tmp_path):
    from akg.audio import file_sha256
    from reasoning.refine import AudioEmbeddingCache, embed_clips

    clip = tmp_path / "tone.wav"
    sf.write(clip, 0.3 * np.sin(np.arange(8000) / 5.0), 16000)
    encoder = _CountingEncoder()
    cache = AudioEmbeddingCache(tmp_path / "cache", encoder.identity, dim=4)
    first = embed_clips(encoder, [clip], cache, max_seconds=60)[0]
    assert encoder.calls == 1 and not first.cached
    entry = cache.dir / f"{file_sha256(clip)}.npy"
    for what, damage in list(_bad_entries(entry)):
        damage()
        assert cache.get(file_sha256(clip)) is None, what
        calls = encoder.calls
        again = embed_clips(encoder, [clip], cache, max_seconds=60)[0]
        assert encoder.calls == calls + 1 and not again.cached, what  # recomputed ...
        assert np.array_equal(again.embedding, first.embedding), what
        assert np.array_equal(np.load(entry), first.embedding), what  # ... and rewritten
        hit = embed_clips(encoder, [clip], cache, max_seconds=60)[0]
        assert hit.cached and encoder.calls == calls + 1, what


def test_prompt_bank_cache_treats_bad_files_as_misses(tmp_path):
    from reasoning.prompts import EnrichSettings, build_bank

    labels = SimpleNamespace(labels=[SimpleNamespace(text=t, entity=None) for t in ("dog bark", "rain", "siren")],
                             identity=lambda: "test:labels")
    encoder = _CountingEncoder()
    kwargs = dict(settings=EnrichSettings(), graph_version="v", cache_dir=tmp_path / "prompts")
    bank, hit = build_bank(labels, encoder, None, **kwargs)
    assert not hit
    (cached,) = (tmp_path / "prompts").glob("*.npz")
    good = cached.read_bytes()

    def rewrite(**changes):
        z = dict(np.load(cached, allow_pickle=False))
        z.update(changes)
        with open(cached, "wb") as f:
            np.savez(f, **z)

    damages = {
        "truncated": lambda: cached.write_bytes(good[: len(good) // 2]),
        "empty": lambda: cached.write_bytes(b""),
        "base of the wrong shape": lambda: rewrite(base_emb=np.zeros((2, 4), np.float32)),
        "base of the wrong dtype": lambda: rewrite(base_emb=bank.base_emb.astype(np.float64)),
        "offsets past the prompts": lambda: rewrite(offsets=np.array([0, 0, 0, 5])),
        "meta not JSON": lambda: rewrite(meta=np.frombuffer(b"{not json", dtype=np.uint8)),
        "facts of another shape": lambda: rewrite(meta=np.frombuffer(json.dumps(
            {"key": bank.key, "label_texts": bank.label_texts, "base_prompts": bank.base_prompts,
             "prompts": ["x"], "facts": [{"colour": "red"}]}).encode(), dtype=np.uint8)),
    }
    for what, damage in damages.items():
        cached.write_bytes(good)
        damage()
        again, hit = build_bank(labels, encoder, None, **kwargs)
        assert not hit, what
        assert again.label_texts == bank.label_texts and np.array_equal(again.base_emb, bank.base_emb), what
        assert build_bank(labels, encoder, None, **kwargs)[1], what  # rewritten: the next run hits
