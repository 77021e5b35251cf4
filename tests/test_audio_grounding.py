"""Entities grounded in sound (kge/grounded.py's audio modality, reasoning/audio_grounding.py): real
training on the bundled mini graph with a small real CLAP the tests build, clips synthesised with
soundfile and decoded by the real loaders; every fusion mode, the fusion worked out by hand, a clip
as a query, determinism, exports of the fused vectors, and bad input."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from akg_loader.ingest import ingest
from akg_loader.tsv import read_file
from kge import grounded, store

sys.path.insert(0, str(Path(__file__).parent))

RATE = 16_000
LABELS = "dog_bark\tdog barking\ncar_horn\tcar horn\nrain\train on roof\nengine_whine\tjet turbine whine\n"
TRAIN = ["--grounded", "text,audio", "--dim", "8", "--epochs", "2", "--negatives", "16", "--batch-size", "128"]


def _tone(freqs, seconds=1.0, seed=0, noise=0.0):
    t = np.arange(int(RATE * seconds)) / RATE
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    wave = wave * (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 3 * t)))  # bursts, like barks or honks
    return (0.6 * wave + noise * np.random.default_rng(seed).normal(size=len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """ESC-50 layout: audio/*.wav and meta/esc50.csv; a label file mapping the labels to mini-graph entities."""
    root = tmp_path_factory.mktemp("examples")
    (root / "audio").mkdir()
    (root / "meta").mkdir()
    made = {"dog_bark": [_tone([900, 1300], seed=1), _tone([950, 1250], seed=2)],
            "car_horn": [_tone([400, 500], seed=3), _tone([420, 520], seed=4)],
            "rain": [_tone([60], seed=5, noise=0.5)]}
    rows = []
    for label, waves in made.items():
        for i, wave in enumerate(waves):
            name = f"{label}-{i}.wav"
            sf.write(root / "audio" / name, wave, RATE)
            rows.append({"filename": name, "fold": 1, "target": 0, "category": label})
    meta = root / "meta" / "esc50.csv"
    with open(meta, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["filename", "fold", "target", "category"])
        w.writeheader()
        w.writerows(rows)
    labels = root / "labels.tsv"
    labels.write_text(LABELS)
    return {"audio": root / "audio", "meta": meta, "labels": labels, "root": root}


@pytest.fixture(scope="module")
def mini(graph, mini_dir, server_env, clap_dir):
    """The bundled mini graph in the graph (fresh), the tiny CLAP configured, the models folder emptied."""
    graph.write("MATCH (e:Entity) DETACH DELETE e")
    ingest(graph, [read_file(mini_dir / "mini_akg_pruned.tsv"), read_file(mini_dir / "mini_akg_test.tsv")])
    root = store.models_root(server_env.home)
    shutil.rmtree(root, ignore_errors=True)
    saved = os.environ.get("AKG_CLAP_MODEL")
    os.environ["AKG_CLAP_MODEL"] = str(clap_dir)
    yield graph
    if saved is None:
        os.environ.pop("AKG_CLAP_MODEL", None)
    else:
        os.environ["AKG_CLAP_MODEL"] = saved
    shutil.rmtree(root, ignore_errors=True)


def _train(run_cli, clips, name, *extra):
    r = run_cli("train", *TRAIN, "--audio-examples", str(clips["audio"]), "--meta", str(clips["meta"]),
                "--dataset", str(clips["labels"]), "--name", name, "--json", *extra)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _clip_embedding(clap_dir, path) -> np.ndarray:
    """The clip's CLAP audio embedding, computed here with transformers directly (not through akg)."""
    from scipy.signal import resample_poly
    from transformers import ClapModel, ClapProcessor

    model, proc = ClapModel.from_pretrained(clap_dir).eval(), ClapProcessor.from_pretrained(clap_dir)
    wave, rate = sf.read(path, dtype="float32")
    wave = resample_poly(wave, 48_000 // 16_000, 1).astype(np.float32)
    with torch.no_grad():
        out = model.get_audio_features(**proc(audio=[wave], sampling_rate=48_000, return_tensors="pt"))
    e = (out if hasattr(out, "shape") else out.pooler_output)[0].numpy()
    return e / np.linalg.norm(e)


@pytest.mark.parametrize("fusion", ["average", "weighted", "concat"])
def test_every_fusion_trains_and_fuses_over_the_modalities_present(mini, clips, clap_dir, run_cli, fusion):
    out = _train(run_cli, clips, f"audio-{fusion}", "--fusion", fusion, *(["--no-evaluate"] if fusion != "average" else []))
    g = out["config"]["grounding"]
    assert g["modality"] == "text,audio" and g["fusion"] == fusion and g["encoder"] == "clap"
    assert g["shared_projection"] is True and g["audio_dim"] == 16 and g["audio_encoder_id"].startswith("hf:")
    stored = store.load(Path(out["path"]))
    assert stored.config["grounding"]["entities_with_audio"] == 3
    model = stored.load_model()
    rep = grounded.representation(model)
    ids = stored.entity_to_id
    has = {n for n, i in ids.items() if rep.has_audio[i]}
    assert has == {"dog barking", "car horn", "rain on roof"}   # an entity without clips: text and structure
    # the pooled audio feature of dog barking: the mean of its two clips' embeddings, unit length
    pooled = _clip_embedding(clap_dir, clips["audio"] / "dog_bark-0.wav") + _clip_embedding(clap_dir, clips["audio"] / "dog_bark-1.wav")
    assert np.allclose(rep.audio_features[ids["dog barking"]].numpy(), pooled / np.linalg.norm(pooled), atol=1e-5)
    # the fusion, worked out from the parts: weights renormalised over the modalities each entity has
    with torch.no_grad():
        e = rep(indices=None)
        dog, cat = ids["dog barking"], ids["cat meowing"]
        s = rep.structural(indices=torch.tensor([dog, cat]))
        t = rep.project(rep.features[[dog, cat]])
        a = rep.project(rep.audio_features[[dog, cat]])  # one projection: CLAP's joint space
        if fusion == "concat":
            want = [torch.cat([s[0], (t[0] + a[0]) / 2]), torch.cat([s[1], t[1]])]
        else:
            w = torch.softmax(rep.mix, 0) if fusion == "weighted" else torch.full((3,), 1 / 3)
            want = [(w[0] * s[0] + w[1] * t[0] + w[2] * a[0]) / w.sum(), (w[0] * s[1] + w[1] * t[1]) / (w[0] + w[1])]
    assert torch.allclose(e[dog], want[0], atol=1e-5) and torch.allclose(e[cat], want[1], atol=1e-5)
    if fusion == "average":
        assert out["metrics"]["known"]["triples"] > 0 and 0 < out["metrics"]["known"]["mrr"] <= 1
        # training: an entity with text and audio whose structure is dropped keeps one of the two, never both
        rep.train()
        rep.generator = torch.Generator().manual_seed(0)
        flat = torch.tensor([dog] * 64)
        with torch.no_grad():
            s_, p_, _ = rep.parts(flat)
            alone = rep.fuse(s_, p_, torch.ones(64, dtype=torch.bool))
        text_only = torch.isclose(alone, t[0].expand_as(alone), atol=1e-6).all(1)
        audio_only = torch.isclose(alone, a[0].expand_as(alone), atol=1e-6).all(1)
        assert (text_only ^ audio_only).all() and 10 < int(audio_only.sum()) < 54


def test_a_clip_predicts_tails_from_its_audio_alone(mini, clips, clap_dir, run_cli, tmp_path):
    from kge.predict import Predictor

    mini_home = store.models_root(mini_settings().home)
    name = "audio-average"
    if not (mini_home / name).exists():
        _train(run_cli, clips, name)
    query = tmp_path / "unknown-dog.flac"   # a clip that is no entity and no example
    sf.write(query, _tone([920, 1280], seed=9), RATE)
    r = run_cli("predict", "--clip", str(query), "has parent", "--model", name, "-k", "5", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["relation"] == "has parent" and len(out["tails"]) == 5
    assert all(t["status"] == "predicted" for t in out["tails"])
    # by hand: the clip is p = P(its CLAP embedding) alone; RotatE scores -|p * r - t| for every tail
    stored = store.load(mini_home / name)
    model = stored.load_model()
    rep = grounded.representation(model)
    with torch.no_grad():
        p = rep.project(torch.from_numpy(_clip_embedding(clap_dir, query))[None])[0]
        rel = model.relation_representations[0](indices=torch.tensor([stored.relation_to_id["has parent"]]))[0]
        scores = -(p * rel - rep(indices=None)).abs().pow(2).sum(-1).sqrt()
    top = torch.topk(scores, 5)
    names = {i: n for n, i in stored.entity_to_id.items()}
    assert [t["tail"] for t in out["tails"]] == [names[i] for i in top.indices.tolist()]
    assert [t["score"] for t in out["tails"]] == pytest.approx(top.values.tolist(), abs=1e-4)
    text = run_cli("predict", "--clip", str(query), "has parent", "--model", name, "-k", "3")
    assert text.exit_code == 0 and "its CLAP audio embedding stands for one" in text.output
    # an example clip of an entity that has it alone is that entity's audio feature exactly
    predictor = Predictor(stored)
    assert predictor.audio_grounded
    only = rep.audio_features[stored.entity_to_id["rain on roof"]].numpy()
    from reasoning.audio_grounding import clip_feature

    assert np.allclose(clip_feature(stored.config["training"]["grounding"], clips["audio"] / "rain-0.wav",
                                    mini_settings()), only, atol=1e-6)
    # a name the graph does not hold: text alone, as with text grounding
    by_name = predictor.predict("a barking puppy", "has parent", k=3)
    with torch.no_grad():
        named = rep.project(torch.from_numpy(predictor.grounder.features(["a barking puppy"]).numpy()))[0]
        want = torch.topk(-(named * rel - rep(indices=None)).abs().pow(2).sum(-1).sqrt(), 3)
    assert [p.tail for p in by_name] == [names[i] for i in want.indices.tolist()]
    # the API: the same answer
    import akg

    api = akg.load_model(name).predict(clip=query, relation="has parent", k=5)
    assert [row["tail"] for row in api] == [t["tail"] for t in out["tails"]]


def mini_settings():
    from akg.config import Settings

    return Settings.from_env()


def test_audio_grounding_is_deterministic_for_a_seed(mini, clips, run_cli):
    from safetensors.torch import load_file

    a = _train(run_cli, clips, "audio-seed-a", "--no-evaluate", "--seed", "3")
    b = _train(run_cli, clips, "audio-seed-b", "--no-evaluate", "--seed", "3")
    wa, wb = load_file(Path(a["path"]) / "weights.safetensors"), load_file(Path(b["path"]) / "weights.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    c = _train(run_cli, clips, "audio-seed-c", "--no-evaluate", "--seed", "4")
    wc = load_file(Path(c["path"]) / "weights.safetensors")
    assert not torch.equal(wa["entity_representations.0.projection.weight"], wc["entity_representations.0.projection.weight"])


def test_a_non_clap_text_encoder_gets_an_audio_projection_of_its_own(mini, clips, run_cli, tmp_path):
    from safetensors.torch import load_file

    out = _train(run_cli, clips, "audio-minilm", "--encoder", "minilm", "--no-evaluate")
    g = out["config"]["grounding"]
    assert g["encoder"] == "minilm" and g["feature_dim"] == 384 and g["audio_dim"] == 16
    assert g["shared_projection"] is False
    weights = load_file(Path(out["path"]) / "weights.safetensors")
    assert weights["entity_representations.0.projection.weight"].shape == (8 * 2, 384)      # names: 384 -> 8 complex
    assert weights["entity_representations.0.audio_projection.weight"].shape == (8 * 2, 16)  # clips: 16 -> 8 complex
    query = tmp_path / "q.wav"
    sf.write(query, _tone([700], seed=3), RATE)
    r = run_cli("predict", "--clip", str(query), "has parent", "--model", "audio-minilm", "-k", "3", "--json")
    assert r.exit_code == 0 and len(json.loads(r.output)["tails"]) == 3, r.output


def test_fused_vectors_export_and_import(mini, clips, run_cli, tmp_path):
    from kge.predict import Predictor

    out = _train(run_cli, clips, "audio-export", "--no-evaluate", "--fusion", "weighted")
    r = run_cli("export-embeddings", "audio-export", "--out", str(tmp_path / "emb"), "--json")
    assert r.exit_code == 0, r.output
    stored = store.load(Path(out["path"]))
    rep = grounded.representation(stored.load_model())
    with torch.no_grad():
        fused = rep(indices=None).numpy()
    array = np.load(tmp_path / "emb" / "entity_embeddings.npy")
    assert array.shape == (len(stored.entity_to_id), 8, 2)
    assert np.allclose(array[..., 0], fused.real, atol=1e-6) and np.allclose(array[..., 1], fused.imag, atol=1e-6)
    r = run_cli("models", "import", str(tmp_path / "emb"), "--name", "audio-imported")
    assert r.exit_code == 0, r.output
    original, imported = Predictor(stored), Predictor(store.load(store.models_root(mini_settings().home) / "audio-imported"))
    assert not imported.grounded  # a plain model: it scores the exported entities, grounds nothing new
    a, b = original.predict("dog barking", "has parent", k=10), imported.predict("dog barking", "has parent", k=10)
    assert [p.tail for p in a] == [p.tail for p in b]
    assert [p.score for p in a] == pytest.approx([p.score for p in b], abs=1e-5)


def test_bad_input_one_line_errors(mini, clips, run_cli, tmp_path):
    def one_line(result, *needles):
        assert result.exit_code == 1, result.output
        lines = [l for l in result.output.splitlines() if l.strip()]
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        for n in needles:
            assert n in lines[0], lines[0]

    base = ["train", *TRAIN, "--audio-examples", str(clips["audio"]), "--dataset", str(clips["labels"])]
    # a clip that is no audio: the error names the file
    bad_dir = tmp_path / "bad"
    shutil.copytree(clips["audio"], bad_dir)
    (bad_dir / "car_horn-1.wav").write_bytes(b"RIFF....not audio at all")
    one_line(run_cli("train", *TRAIN, "--audio-examples", str(bad_dir), "--meta", str(clips["meta"]),
                     "--dataset", str(clips["labels"])), str(bad_dir / "car_horn-1.wav"), "not an audio file")
    # a label whose entity the graph does not hold, and a label the label set does not have
    meta = tmp_path / "esc50.csv"
    meta.write_text(clips["meta"].read_text() + "rain-0.wav,1,0,engine_whine\n")
    one_line(run_cli(*base, "--meta", str(meta)), "1 label(s) have no AKG entity", "'engine_whine'", str(meta))
    meta.write_text(clips["meta"].read_text() + "rain-0.wav,1,0,sneezing\n")
    one_line(run_cli(*base, "--meta", str(meta)), "1 label(s) not in the label set", "'sneezing'")
    # options that do not go together
    one_line(run_cli("train", *TRAIN), "needs example clips: give --audio-examples DIR and --meta CSV")
    one_line(run_cli("train", "--grounded", "text", "--audio-examples", str(clips["audio"]), "--meta", str(clips["meta"])),
             "only apply to a model grounded in audio")
    # a text-only model cannot take a clip; a missing clip names the file
    r = run_cli("train", "--grounded", "text", "--encoder", "clap", "--dim", "8", "--epochs", "1", "--negatives", "8",
                "--no-evaluate", "--name", "text-only")
    assert r.exit_code == 0, r.output
    one_line(run_cli("predict", "--clip", str(clips["audio"] / "rain-0.wav"), "has parent", "--model", "text-only"),
             "is not grounded in audio")
    _train(run_cli, clips, "audio-bad-input", "--no-evaluate")
    one_line(run_cli("predict", "--clip", str(tmp_path / "nothing.wav"), "has parent", "--model", "audio-bad-input"),
             str(tmp_path / "nothing.wav"), "no such file")
