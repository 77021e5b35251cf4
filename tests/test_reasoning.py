"""The CLAP-KG pipeline end to end: real audio files, a small real CLAP model saved and loaded
through transformers, the real graph server and a real trained KGE; caches and their
invalidation; bad audio; the laion-clap adapter with stand-ins for what cannot exist here."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from akg.config import Settings
from akg.errors import ConfigError
from akg_loader.ingest import ingest
from akg_loader.tsv import read_file

sys.path.insert(0, str(Path(__file__).parent))

SR = 48000


def clap_scores(clap_dir: Path, wave: np.ndarray, sr: int, texts: list[str]) -> np.ndarray:
    """Cosine similarity of each text with the clip, straight from transformers' CLAP (no project code)."""
    import torch
    from transformers import ClapModel, ClapProcessor

    model, processor = ClapModel.from_pretrained(clap_dir).eval(), ClapProcessor.from_pretrained(clap_dir)
    features = lambda out: out if hasattr(out, "shape") else out.pooler_output  # noqa: E731 (transformers 4 / 5)
    with torch.no_grad():
        audio = features(model.get_audio_features(**processor(audio=[wave], sampling_rate=sr, return_tensors="pt")))
        text = features(model.get_text_features(**processor(text=texts, return_tensors="pt", padding=True,
                                                                truncation=True)))
    audio, text = audio / audio.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
    return (text @ audio[0]).numpy()


@pytest.fixture(scope="module")
def label_env(shared_dir):
    import os

    old = os.environ.get("AKG_LABEL_SETS_DIR")
    os.environ["AKG_LABEL_SETS_DIR"] = str(shared_dir / "label_sets")
    yield
    if old is None:
        os.environ.pop("AKG_LABEL_SETS_DIR", None)
    else:
        os.environ["AKG_LABEL_SETS_DIR"] = old


@pytest.fixture(scope="module")
def akg_graph(graph, akg_dir, server_env, label_env):
    """The AKG (pruned + test) in the graph and a small RotatE trained on it, as the latest model."""
    import shutil

    from helpers import load_akg_with_small_kge

    root = load_akg_with_small_kge(graph, akg_dir, server_env.home, name="reasoning-kge", evaluate_after=False)
    yield graph
    shutil.rmtree(root, ignore_errors=True)


def tone(freq: float, seconds: float, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([wave, wave * 0.5], axis=1) if channels == 2 else wave


@pytest.fixture
def clips(tmp_path) -> dict[str, Path]:
    files = {}
    for name, data, sr, fmt in [("a.wav", tone(440, 3, 44100, 2), 44100, "WAV"), ("b.flac", tone(880, 2, 22050), 22050, "FLAC"),
                                ("c.ogg", tone(300, 2, 48000), 48000, "OGG"), ("d.mp3", tone(1200, 2, 44100), 44100, "MP3"),
                                ("long.wav", tone(660, 25, 16000), 16000, "WAV")]:
        files[name] = tmp_path / name
        sf.write(files[name], data, sr, format=fmt)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 4)
    (tmp_path / "notes.txt").write_text("not audio")
    sf.write(tmp_path / "too_long.wav", tone(100, 40, 8000), 8000)
    for bad in ("empty.wav", "corrupt.flac", "notes.txt", "too_long.wav"):
        files[bad] = tmp_path / bad
    return files


def test_classify_end_to_end(akg_graph, clap_dir, clips, run_cli):
    good = ["a.wav", "b.flac", "c.ogg", "d.mp3", "long.wav"]
    bad = ["empty.wav", "corrupt.flac", "notes.txt", "too_long.wav"]
    args = ["classify", *(str(clips[n]) for n in good + bad), "--model", str(clap_dir), "--labels", "esc50",
            "--top-k", "5", "--max-seconds", "30", "--json"]
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    settings = out["settings"]
    assert settings["labels"] == "esc50" and settings["coverage"]["labels"] == 50
    assert settings["kge_model"] == "reasoning-kge" and settings["prompts"] > 100
    assert settings["prompt_bank_cached"] is False
    by_clip = {Path(c["clip"]).name: c for c in out["clips"]}
    for name in good:
        c = by_clip[name]
        assert len(c["baseline"]) == 5 and len(c["refined"]) == 5 and len({x["label"] for x in c["refined"]}) == 5
    # Worked out apart from the pipeline, for c.ogg (48 kHz mono, 2 s: one window, no resampling): the
    # 50 ESC-50 labels from SALT's file, the clip decoded by soundfile, both through transformers' CLAP.
    mapping = Path(os.environ["AKG_LABEL_SETS_DIR"]) / "salt_event_mapping.tsv"
    esc = sorted({row.split("\t")[1].replace("_", " ") for row in mapping.read_text().splitlines()[1:]
                  if row.split("\t")[2] == "Esc50"})
    assert len(esc) == 50
    wave, sr = sf.read(clips["c.ogg"], dtype="float32")
    c = by_clip["c.ogg"]
    texts_of = lambda e: [p["prompt"] for p in e["prompts"]]  # noqa: E731
    prompts = sorted({t for e in c["explanation"].values() for t in texts_of(e)})
    label_scores, prompt_scores = clap_scores(clap_dir, wave, sr, esc), clap_scores(clap_dir, wave, sr, prompts)
    base = dict(zip(esc, label_scores))
    expected_top = sorted(esc, key=lambda t: -base[t])[:5]
    assert [x["label"] for x in c["baseline"]] == expected_top
    for x in c["baseline"]:
        assert x["score"] == pytest.approx(base[x["label"]], abs=2e-4)
    by_prompt = dict(zip(prompts, prompt_scores))
    for label, e in c["explanation"].items():
        assert e["base"] == pytest.approx(base[label], abs=2e-4)
        for p in e["prompts"]:  # each prompt's score is CLAP's cosine of its text with the clip
            assert p["prompt"].startswith(label + ", ") and p["kind"] in ("known", "predicted")
            assert p["score"] == pytest.approx(by_prompt[p["prompt"]], abs=2e-4)
        if e["prompts_used"] == len(e["prompts"]):  # every prompt shown: the fused score from them (lse, tau 0.05)
            s = np.array([base[label]] + [by_prompt[t] for t in texts_of(e)])
            assert e["fused"] == pytest.approx(0.05 * np.log(np.mean(np.exp(s / 0.05))), abs=5e-4)
    # the refined list: the 5 best labels by refined score, where a label outside the baseline's top 5 keeps
    # its base score, each with its rank among all 50 by base score
    refined_of = {label: e["fused"] for label, e in c["explanation"].items()}
    overall = {t: refined_of.get(t, base[t]) for t in esc}
    assert [x["label"] for x in c["refined"]] == sorted(esc, key=lambda t: -overall[t])[:5]
    rank = {t: n for n, t in enumerate(sorted(esc, key=lambda t: -base[t]), 1)}
    assert [x["baseline_rank"] for x in c["refined"]] == [rank[x["label"]] for x in c["refined"]]
    kinds = {p["kind"] for c in out["clips"] if "explanation" in c for e in c["explanation"].values() for p in e["prompts"]}
    assert kinds == {"known", "predicted"}
    problems = {"empty.wav": "empty", "corrupt.flac": "corrupt", "notes.txt": "unsupported", "too_long.wav": "limit"}
    for name, word in problems.items():
        assert name in by_clip[name]["error"] and word in by_clip[name]["error"].lower(), by_clip[name]["error"]
    # the second run takes the prompt bank from the cache and gives the same answer
    again = json.loads(run_cli(*args).stdout)
    assert again["settings"]["prompt_bank_cached"] is True
    assert again["clips"] == out["clips"]
    # human output and the other fusion
    res = run_cli("classify", str(clips["a.wav"]), "--model", str(clap_dir), "--labels", "esc50", "--fusion", "reliability")
    assert res.exit_code == 0 and "baseline #" in res.stdout


def test_caches_and_their_invalidation(akg_graph, clap_dir, clips, tmp_path):
    from akg.encoders import EncoderSpec, load_encoder
    from reasoning.prompts import EnrichSettings
    from reasoning.refine import embed_clips
    from reasoning.workflows import open_session

    settings = Settings.from_env()
    spec = EncoderSpec(model=str(clap_dir))
    encoder = load_encoder(spec)
    calls = {"audio": 0}
    real = encoder.embed_audio

    def counting(clips_):
        calls["audio"] += len(clips_)
        return real(clips_)

    encoder.embed_audio = counting
    labels = tmp_path / "labels.txt"
    labels.write_text("dog bark\tdog barking\nrain\nteapot whistle\n")
    enrich = EnrichSettings(relations=("has parent", "occurs in"), top_m=2)
    first = open_session(akg_graph, settings, labels=str(labels), encoder_spec=spec, enrich=enrich, encoder=encoder)
    assert not first.bank_from_cache
    assert [l.entity for l in first.label_set.labels] == ["dog barking", "rain", None]  # still classified, not enriched
    assert first.bank.of(2).stop == first.bank.of(2).start
    second = open_session(akg_graph, settings, labels=str(labels), encoder_spec=spec, enrich=enrich, encoder=encoder)
    assert second.bank_from_cache and second.bank.prompts == first.bank.prompts
    assert np.allclose(second.bank.prompt_emb, first.bank.prompt_emb)

    # audio: encoded once, then read from the cache by content (tones no other test uses)
    paths = [tmp_path / "u1.wav", tmp_path / "u2.flac"]
    sf.write(paths[0], tone(1234, 1.5), SR)
    sf.write(paths[1], tone(2345, 1.0, 22050), 22050, format="FLAC")
    out1 = embed_clips(encoder, paths, first.audio_cache, max_seconds=60)
    assert calls["audio"] == 2 and not any(o.cached for o in out1)
    copy = tmp_path / "same-content.wav"
    copy.write_bytes(paths[0].read_bytes())
    out2 = embed_clips(encoder, paths + [copy], first.audio_cache, max_seconds=60)
    assert calls["audio"] == 2 and all(o.cached for o in out2)
    assert np.allclose(out2[2].embedding, out1[0].embedding)

    # a changed graph invalidates the prompts: a new accepted fact appears as a prompt
    fact = tmp_path / "new_pruned.tsv"
    fact.write_text("label_name\thead\trelation\ttail\tresponse\nrain\train\toccurs in\tcathedral square\tYes.\n")
    ingest(akg_graph, [read_file(fact)])
    third = open_session(akg_graph, settings, labels=str(labels), encoder_spec=spec, enrich=enrich, encoder=encoder)
    assert not third.bank_from_cache
    assert "rain, cathedral square" in third.bank.prompts and "rain, cathedral square" not in first.bank.prompts
    # other settings, and no KGE, are other banks too
    fourth = open_session(akg_graph, settings, labels=str(labels), encoder_spec=spec, enrich=enrich, encoder=encoder, use_kge=False)
    assert not fourth.bank_from_cache and all(f.kind == "known" for f in fourth.bank.facts)


def test_no_model_configured_says_how_to_provide_one(akg_graph, clips, run_cli, monkeypatch):
    monkeypatch.delenv("AKG_CLAP_MODEL", raising=False)
    monkeypatch.delenv("AKG_CLAP_CHECKPOINT", raising=False)
    import socket

    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(clips["a.wav"].parent / "empty-hf-cache"))

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    import urllib3.util.connection

    # the HTTP clients' ways out (httpx/httpcore and requests/urllib3); Bolt to 127.0.0.1 is untouched
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_network)
    res = run_cli("classify", str(clips["a.wav"]), "--labels", "esc50")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "provide a CLAP model" in res.output and "--allow-download" in res.output
    res = run_cli("classify", str(clips["a.wav"]), "--model", "./no/such/dir")
    assert res.exit_code == 1 and "no CLAP model directory" in res.output


def test_zeroshot_eval_single_and_multi_label(akg_graph, clap_dir, tmp_path, run_cli):
    from reasoning import labels

    names = [l.name for l in labels.load("esc50").labels][:4]
    audio = tmp_path / "ESC-50" / "audio"
    audio.mkdir(parents=True)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for i in range(8):
        fname = f"1-{i}-A-0.wav"
        sf.write(audio / fname, tone(200 + 150 * i, 2), SR)
        rows.append(f"{fname},1,{i % 4},{names[i % 4]},False,{i},A")
    sf.write(audio / "1-broken-A-0.wav", tone(1, 0.001), SR)
    (audio / "1-broken-A-0.wav").write_bytes(b"RIFF0000broken")
    rows.append(f"1-broken-A-0.wav,1,0,{names[0]},False,9,A")
    meta = tmp_path / "ESC-50" / "esc50.csv"
    meta.write_text("\n".join(rows) + "\n")
    out_dir = tmp_path / "report"
    res = run_cli("zeroshot-eval", "--audio-dir", str(audio), "--meta", str(meta), "--model", str(clap_dir),
                  "--ablate-k", "1,3", "--ablate-relations", "has parent", "--out", str(out_dir), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["metric"] == "accuracy" and out["dataset"] == "esc50" and out["failed"] == 1
    assert [(r["relations"].count(",") >= 1, r["top_k"]) for r in out["results"]] == [(True, 1), (True, 3), (False, 1), (False, 3)]
    for r in out["results"]:
        assert 0 <= r["baseline"] <= 1 and 0 <= r["refined"] <= 1 and r["delta"] == pytest.approx(r["refined"] - r["baseline"])
    assert len({r["baseline"] for r in out["results"]}) == 1  # one baseline, whatever the refinement settings
    for f in ("results.csv", "per_class.csv", "report.md", "ablation.png"):
        assert (out_dir / f).stat().st_size > 0
    assert (out_dir / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert "Baseline CLAP" in (out_dir / "report.md").read_text()
    assert "1-broken-A-0.wav" in res.stderr

    # FSD50K layout: multi-label, scored by mAP
    fsd = [l.name for l in labels.load("fsd50k").labels][:3]
    fsd_audio = tmp_path / "FSD50K.eval_audio"
    fsd_audio.mkdir()
    lines = ["fname,labels,mids"]
    for i in range(5):
        sf.write(fsd_audio / f"{100 + i}.wav", tone(300 + 200 * i, 1.5), SR)
        lines.append(f'{100 + i},"{fsd[i % 3]},{fsd[(i + 1) % 3]}",/m/x')
    (tmp_path / "eval.csv").write_text("\n".join(lines) + "\n")
    res = run_cli("zeroshot-eval", "--audio-dir", str(fsd_audio), "--meta", str(tmp_path / "eval.csv"), "--model", str(clap_dir),
                  "--ablate-k", "5", "--out", str(tmp_path / "fsd"), "--json")
    assert res.exit_code == 0, res.output
    fsd_out = json.loads(res.stdout)
    assert fsd_out["metric"] == "mAP" and fsd_out["dataset"] == "fsd50k" and 0 < fsd_out["results"][0]["baseline"] <= 1


def test_unknown_metadata_layout_is_a_clear_error(tmp_path, run_cli, akg_graph):
    meta = tmp_path / "m.csv"
    meta.write_text("a,b\n1,2\n")
    res = run_cli("zeroshot-eval", "--audio-dir", str(tmp_path), "--meta", str(meta))
    assert res.exit_code == 1 and "unrecognised metadata columns" in res.output and "m.csv" in res.output


class _FakeClapModule:
    """Stands in for laion_clap.CLAP_Module (whose import needs CUDA torchvision, and which
    downloads roberta-base): records how the adapter drives it and returns fixed embeddings."""

    instances: list = []

    def __init__(self, enable_fusion=False, amodel="HTSAT-tiny", device=None):
        self.args = dict(enable_fusion=enable_fusion, amodel=amodel, device=device)
        self.loaded, self.audio_batches = None, []
        _FakeClapModule.instances.append(self)

    def load_ckpt(self, ckpt):
        self.loaded = ckpt

    def get_text_embedding(self, texts, use_tensor=False):
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    def get_audio_embedding_from_data(self, x, use_tensor=False):
        self.audio_batches.append(np.asarray(x).shape)
        return np.tile(np.array([0.0, 3.0, 4.0], dtype=np.float32), (len(x), 1))


def test_laion_clap_adapter_with_stand_ins(tmp_path, monkeypatch):
    from akg.encoders import EncoderSpec, LaionClapEncoder, load_encoder

    checkpoint = tmp_path / "630k-audioset-best.pt"
    checkpoint.write_bytes(b"weights")
    monkeypatch.setitem(sys.modules, "laion_clap", types.SimpleNamespace(CLAP_Module=_FakeClapModule))
    seen = {}

    class _Recording(_FakeClapModule):
        def __init__(self, **kw):
            import os

            seen["offline"] = os.environ.get("HF_HUB_OFFLINE")  # what laion_clap sees while it loads
            super().__init__(**kw)

    monkeypatch.setitem(sys.modules, "laion_clap", types.SimpleNamespace(CLAP_Module=_Recording))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    enc = load_encoder(EncoderSpec(backend="laion-clap", checkpoint=str(checkpoint), fusion=True, audio_model="HTSAT-base"))
    assert isinstance(enc, LaionClapEncoder)
    module = _FakeClapModule.instances[-1]
    assert module.args["enable_fusion"] is True and module.args["amodel"] == "HTSAT-base"
    assert module.loaded == str(checkpoint)
    import os

    assert seen["offline"] == "1"                   # no hub access unless allowed, while loading
    assert os.environ.get("HF_HUB_OFFLINE") == "0"  # and the environment is given back afterwards
    text = enc.embed_text(["dog", "rain"])
    assert np.allclose(np.linalg.norm(text, axis=1), 1.0)
    audio = enc.embed_audio([np.zeros(25 * 48000, np.float32), np.zeros(3 * 48000, np.float32)])
    assert module.audio_batches == [(4, 480000)]  # 25 s -> 3 windows, 3 s -> 1 padded to the window
    assert np.allclose(audio, [[0, 0.6, 0.8], [0, 0.6, 0.8]])
    assert "fusion" in enc.identity and "HTSAT-base" in enc.identity
    with pytest.raises(ConfigError, match="checkpoint"):
        load_encoder(EncoderSpec(backend="laion-clap", checkpoint=str(tmp_path / "missing.pt")))
    monkeypatch.setitem(sys.modules, "laion_clap", None)  # what an import failure looks like
    with pytest.raises(ConfigError, match="laion"):
        load_encoder(EncoderSpec(backend="laion-clap", checkpoint=str(checkpoint)))
