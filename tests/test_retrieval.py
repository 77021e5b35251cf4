"""Knowledge-enhanced retrieval end to end: a small real CLAP model, clips synthesised as WAV files,
the real graph server holding a few facts, FAISS indexes under AKG_HOME, local worker processes
and a local Ray runtime. Expected scores are worked out apart from the code under test: embeddings
straight from transformers' CLAP, fusion written out by hand, metrics from constructed rankings."""

from __future__ import annotations

import json
import math
import re
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from tiny_clap import build_tiny_clap  # noqa: E402

SR = 48000
N_CLIPS = 8
FACTS = [("dog", "has parent", "domestic animal"), ("dog", "occurs in", "park"), ("rain", "has parent", "weather"),
         ("car horn", "occurs in", "street")]
ENTITIES = sorted({x for h, _, t in FACTS for x in (h, t)})


def tone(freq: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("collection")
    for i in range(N_CLIPS):
        sf.write(folder / f"c{i:02d}.wav", tone(200 + 97 * i), SR)
    (folder / "bad.wav").write_bytes(b"RIFF\x00\x00junk")
    (folder / "notes.txt").write_text("not audio, not looked at")
    return folder


@pytest.fixture(scope="module")
def small_graph(graph, server_env, tmp_path_factory):
    """The session's graph holding FACTS only (accepted), and no KGE model (known facts only)."""
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file
    from helpers import wipe

    tsv = tmp_path_factory.mktemp("facts") / "pruned.tsv"
    tsv.write_text("label_name\thead\trelation\ttail\tresponse\n" + "".join(f"{h}\t{h}\t{r}\t{t}\tYes.\n" for h, r, t in FACTS))
    wipe(graph)
    ingest(graph, [read_file(tsv)])
    return graph


class Clap:
    """Embeddings straight from transformers' CLAP (no project code): the independent reference."""

    def __init__(self, folder: Path):
        import torch
        from transformers import ClapModel, ClapProcessor

        self.torch, self.model, self.processor = torch, ClapModel.from_pretrained(folder).eval(), ClapProcessor.from_pretrained(folder)

    @staticmethod
    def _unit(x) -> np.ndarray:
        x = (x if hasattr(x, "shape") else x.pooler_output).numpy()
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def text(self, texts: list[str]) -> np.ndarray:
        with self.torch.no_grad():
            return self._unit(self.model.get_text_features(**self.processor(text=texts, return_tensors="pt", padding=True,
                                                                              truncation=True)))

    def audio(self, waves: list[np.ndarray]) -> np.ndarray:
        with self.torch.no_grad():
            return self._unit(self.model.get_audio_features(**self.processor(audio=waves, sampling_rate=SR, return_tensors="pt")))


@pytest.fixture(scope="module")
def ref(clap_dir) -> Clap:
    return Clap(clap_dir)


def read(path: Path) -> np.ndarray:
    """A clip as written to disk (16-bit PCM), decoded by soundfile."""
    return sf.read(path, dtype="float32")[0]


def lme(scores, weights, tau=0.05) -> float:
    """tau * log(sum w e^(s/tau) / sum w), written out."""
    return tau * math.log(sum(w * math.exp(s / tau) for s, w in zip(scores, weights)) / sum(weights))


def load_vectors(home: Path, name: str) -> tuple[list[str], np.ndarray]:
    gen = (home / "indexes" / name / (home / "indexes" / name / "CURRENT").read_text().strip())
    manifest = json.loads((gen / "manifest.json").read_text())
    return [f["path"] for f in manifest["files"]], np.load(gen / "vectors.npy")


def one_line_error(res) -> str:
    assert res.exit_code == 1, res.output
    lines = [l for l in res.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


@pytest.fixture(scope="module")
def indexed(collection, clap_dir, server_env):
    """The collection indexed once, single process, in the session's AKG_HOME, in batches of 3 (the
    worker and Ray runs compared with it use the same batches: a batch's make-up can move the last bit)."""
    from click.testing import CliRunner

    from akg.cli import cli

    res = CliRunner().invoke(cli, ["index", str(collection), "--name", "tones", "--model", str(clap_dir), "--batch", "3",
                                   "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_index_matches_clap_and_reports_bad_audio(indexed, collection, ref, server_env):
    assert indexed["clips"] == N_CLIPS and indexed["embedded"] == N_CLIPS and indexed["kind"] == "flat"
    assert len(indexed["errors"]) == 1 and "bad.wav" in indexed["errors"][0] and "\n" not in indexed["errors"][0]
    paths, vectors = load_vectors(server_env.home, "tones")
    assert paths == [f"c{i:02d}.wav" for i in range(N_CLIPS)]  # notes.txt is not audio: not looked at
    expected = ref.audio([read(collection / f"c{i:02d}.wav") for i in range(N_CLIPS)])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_workers_give_identical_vectors_and_runs_are_incremental(collection, clap_dir, tmp_path, indexed, server_env):
    from akg.encoders import EncoderSpec, load_encoder
    from retrieval.store import build_index

    spec = EncoderSpec(model=str(clap_dir))
    encoder = load_encoder(spec)
    two = build_index(tmp_path / "home2", "tones", collection, encoder, spec, workers=2, batch=3)
    assert two.embedded == N_CLIPS and len(two.errors) == 1
    _, single = load_vectors(server_env.home, "tones")
    assert np.array_equal(load_vectors(tmp_path / "home2", "tones")[1], single)

    # A run that dies after its first batch keeps that batch (in the audio cache); the next run resumes.
    home = tmp_path / "home3"

    def crash(_n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(home, "tones", collection, encoder, spec, batch=3, progress=crash)
    assert not (home / "indexes" / "tones" / "CURRENT").exists()  # nothing half-written
    again = build_index(home, "tones", collection, encoder, spec, batch=3)
    # files sort as bad.wav, c00.wav, ...: the first batch of 3 held bad.wav and two good clips
    assert (again.cached, again.embedded) == (2, N_CLIPS - 2)

    # Incremental: one file changed, one removed, one added; the rest keep their rows without being read.
    changed = tmp_path / "changed"
    shutil.copytree(collection, changed)
    sf.write(changed / "c01.wav", tone(5000), SR)
    (changed / "c02.wav").unlink()
    sf.write(changed / "new.wav", tone(7000), SR)
    first = build_index(home, "changing", changed, encoder, spec)
    shutil.copy(changed / "c03.wav", changed / "c03-copy.wav")  # same content: its vector is reused, not embedded
    (changed / "c04.wav").unlink()
    sf.write(changed / "c05.wav", tone(6000), SR)
    second = build_index(home, "changing", changed, encoder, spec)
    assert (first.clips, second.clips) == (N_CLIPS, N_CLIPS)
    assert (second.embedded, second.removed, second.reused) == (1, 1, N_CLIPS - 1)
    paths, vectors = load_vectors(home, "changing")
    row = {p: i for i, p in enumerate(paths)}
    np.testing.assert_array_equal(vectors[row["c03-copy.wav"]], vectors[row["c03.wav"]])
    np.testing.assert_array_equal(vectors[row["c00.wav"]], single[0])


@pytest.mark.timeout(240)  # 20-35 s on two shared cores: Ray's local runtime and two actors loading torch
def test_ray_gives_identical_vectors(collection, clap_dir, tmp_path, indexed, server_env):
    from akg.encoders import EncoderSpec, load_encoder
    from retrieval.store import build_index

    spec = EncoderSpec(model=str(clap_dir))
    report = build_index(tmp_path, "tones", collection, load_encoder(spec), spec, workers=2, ray="auto", batch=3)
    assert report.embedded == N_CLIPS and len(report.errors) == 1 and "bad.wav" in report.errors[0]
    assert np.array_equal(load_vectors(tmp_path, "tones")[1], load_vectors(server_env.home, "tones")[1])


def test_a_known_fact_lifts_a_clip(small_graph, indexed, collection, clap_dir, ref, run_cli):
    res = run_cli("search", "dog", "--index", "tones", "--model", str(clap_dir), "--no-kge", "--nearest", "0",
                  "-k", str(N_CLIPS), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["links"] == [{"entity": "dog", "how": "named", "score": 1.0}]
    variants = ["dog, domestic animal", "dog, occurs in park"]  # parent granularity, then relation+tail
    assert sorted(v["text"] for v in out["variants"]) == sorted(variants)
    # By hand: reliability weights cos(variant, query)^2 x 1 (known) x (1 + agreement)/2, and with 8 clips
    # every variant's top 10 is the query's (agreement 1); then the weighted log-mean-exp per clip.
    q = ref.text(["dog"])[0]
    v = ref.text(variants)
    w = [float(q @ x) ** 2 for x in v]
    clips = ref.audio([read(collection / f"c{i:02d}.wav") for i in range(N_CLIPS)])
    base = clips @ q
    fused = [lme([base[i], *(v @ clips[i])], [1.0, *w]) for i in range(N_CLIPS)]
    expected = sorted(range(N_CLIPS), key=lambda i: -fused[i])
    got = [int(Path(h["clip"]).stem[1:]) for h in out["hits"]]
    assert got == expected
    np.testing.assert_allclose([h["score"] for h in out["hits"]], [fused[i] for i in expected], atol=1e-5)
    baseline = sorted(range(N_CLIPS), key=lambda i: -base[i])
    assert [int(Path(h["clip"]).stem[1:]) for h in out["baseline"]] == baseline
    lifted = [h for h in out["hits"] if h["baseline_rank"] > h["rank"]]
    assert lifted, "the facts about dog lift no clip: the hand-worked case no longer holds"
    why = lifted[0]["moved_by"][0]
    assert why["entity"] == "dog" and why["kind"] == "known" and why["effect"] > 0 and why["text"] in variants


def test_audio_to_text_over_captions(small_graph, collection, clap_dir, ref, run_cli, tmp_path):
    caps = ["dog barking", "rain on a roof", "a car horn", "music playing"]
    csv = tmp_path / "captions.csv"
    csv.write_text("caption\n" + "\n".join(caps) + "\n")
    res = run_cli("search", "--clip", str(collection / "c03.wav"), "--captions", str(csv), "--model", str(clap_dir),
                  "--no-kge", "--nearest", "0", "--fusion", "lse", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    a = ref.audio([read(collection / "c03.wav")])[0]
    base = ref.text(caps) @ a
    assert [h["caption"] for h in out["baseline"]] == [caps[i] for i in np.argsort(-base, kind="stable")]
    # lse: every variant weighs 1; "dog barking" has dog's two facts, "rain on a roof" rain's one.
    extra = {"dog barking": ["dog barking, domestic animal", "dog barking, occurs in park"],
             "rain on a roof": ["rain on a roof, weather"], "a car horn": ["a car horn, occurs in street"]}
    for h in out["hits"]:
        texts = extra.get(h["caption"], [])
        s = [float(ref.text([h["caption"]])[0] @ a), *(ref.text(texts) @ a if texts else [])]
        assert h["score"] == pytest.approx(lme(s, [1.0] * len(s)), abs=1e-5)


def test_tags_with_what_the_graph_knows(small_graph, collection, clap_dir, ref, run_cli):
    res = run_cli("tag", str(collection / "c00.wav"), str(collection / "bad.wav"), "--model", str(clap_dir),
                  "--no-kge", "-k", "3", "--json")
    assert res.exit_code == 0, res.output
    good, bad = json.loads(res.stdout)
    assert "error" in bad and "bad.wav" in bad["error"]
    a = ref.audio([read(collection / "c00.wav")])[0]
    names = ENTITIES
    base = ref.text(names) @ a
    facts = {n: [t for h, _, t in FACTS if h == n] for n in names}
    fused = {}
    for n, b in zip(names, base):
        prompts = [f"{n}, {t}" for t in facts[n]]
        if prompts:
            e, p = ref.text([n])[0], ref.text(prompts)
            fused[n] = lme([b, *(p @ a)], [1.0, *[float(e @ x) ** 2 for x in p]])
        else:
            fused[n] = float(b)
    top = sorted(names, key=lambda n: -fused[n])[:3]
    assert [t["entity"] for t in good["tags"]] == top
    np.testing.assert_allclose([t["score"] for t in good["tags"]], [fused[n] for n in top], atol=1e-5)
    for t in good["tags"]:
        assert t["parents"] == sorted(tl for h, r, tl in FACTS if h == t["entity"] and r == "has parent")
        assert t["occurs_in"] == sorted(tl for h, r, tl in FACTS if h == t["entity"] and r == "occurs in")


def ranked(n_items: int, places: dict[int, int]) -> np.ndarray:
    """Scores over n_items putting item i at (1-based) rank places[i]; the other items fill the rest in order."""
    order = [None] * n_items
    for item, rank in places.items():
        order[rank - 1] = item
    rest = iter(i for i in range(n_items) if i not in places)
    order = [o if o is not None else next(rest) for o in order]
    scores = np.zeros(n_items)
    for pos, item in enumerate(order):
        scores[item] = n_items - pos
    return scores


def test_metrics_on_a_constructed_ranking():
    from retrieval.metrics import audio_to_text, text_to_audio

    # Text to audio: 4 queries over 12 clips, their clips at ranks 1, 3, 12 and 2.
    rel = [0, 5, 7, 11]
    s = np.stack([ranked(12, {c: r}) for c, r in zip(rel, (1, 3, 12, 2))])
    assert text_to_audio(s, rel) == pytest.approx({"R@1": 1 / 4, "R@5": 3 / 4, "R@10": 3 / 4,
                                                   "mAP@10": (1 + 1 / 3 + 0 + 1 / 2) / 4})
    # Audio to text: 3 clips over 12 captions, two captions each, at ranks (2, 5), (1, 11), (11, 12).
    caps = [[0, 1], [2, 3], [4, 5]]
    s = np.stack([ranked(12, {caps[0][0]: 5, caps[0][1]: 2}), ranked(12, {caps[1][0]: 1, caps[1][1]: 11}),
                  ranked(12, {caps[2][0]: 12, caps[2][1]: 11})])
    dcase, laion = audio_to_text(s, caps, "dcase"), audio_to_text(s, caps, "laion")
    recall = {"R@1": 1 / 3, "R@5": 2 / 3, "R@10": 2 / 3}
    assert dcase == pytest.approx({**recall, "mAP@10": (1 / 2 + 1 + 0) / 3})
    assert laion == pytest.approx({**recall, "mAP@10": ((1 / 2 + 2 / 5) / 2 + (1 / 1) / 2 + 0) / 3})
    # Ties go to the earlier item.
    assert text_to_audio(np.zeros((2, 3)), [0, 2])["R@1"] == 0.5


def test_retrieval_eval_on_a_clotho_layout(small_graph, collection, clap_dir, ref, run_cli, tmp_path):
    from retrieval.metrics import ranks_of

    captions = {f"c0{i}.wav": [f"{w} {i}" for w in ("dog barking", "rain", "a car horn", "dog in the park", "street")]
                for i in range(4)}
    meta = tmp_path / "clotho_captions.csv"
    meta.write_text("file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
                    + "".join(f"{f},{','.join(c)}\n" for f, c in captions.items()))
    out_dir = tmp_path / "eval"
    res = run_cli("retrieval-eval", "--audio-dir", str(collection), "--meta", str(meta), "--model", str(clap_dir),
                  "--no-kge", "--out", str(out_dir), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert {Path(p).name for p in report["files"].values()} == {"results.csv", "report.md", "retrieval.png"}
    assert all(Path(p).stat().st_size > 0 for p in report["files"].values())
    configs = {r["config"] for r in report["results"]}
    assert {"baseline", "enhanced", "only entity", "only relation", "only parent", "weighting lse"} <= configs
    # The baseline from transformers' embeddings and a plain argsort: 20 captions, 4 clips.
    texts = [t for c in captions.values() for t in c]
    s = ref.text(texts) @ ref.audio([read(collection / f"c0{i}.wav") for i in range(4)]).T
    clip_of = [i for i in range(4) for _ in range(5)]
    ranks = [int(np.where(np.argsort(-row, kind="stable") == c)[0][0]) + 1 for row, c in zip(s, clip_of)]
    base = next(r for r in report["results"] if r["config"] == "baseline" and r["direction"] == "text-to-audio")
    assert base["R@1"] == pytest.approx(np.mean([r <= 1 for r in ranks]))
    assert base["mAP@10"] == pytest.approx(np.mean([1 / r for r in ranks]))
    assert list(ranks_of(s, clip_of)) == ranks


def test_one_line_errors(collection, clap_dir, tmp_path, indexed, run_cli, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no audio")
    assert "no audio files" in one_line_error(run_cli("index", str(empty), "--model", str(clap_dir)))
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(collection / "bad.wav", broken / "bad.wav")
    assert "none of the 1 audio files could be read" in one_line_error(run_cli("index", str(broken), "--model", str(clap_dir)))
    assert "no such folder" in one_line_error(run_cli("index", str(tmp_path / "nope"), "--model", str(clap_dir)))
    assert "no index named 'nope'" in one_line_error(run_cli("search", "dog", "--index", "nope", "--model", str(clap_dir)))
    assert "needs an index" in one_line_error(run_cli("search", "dog", "--model", str(clap_dir)))
    # what the user typed is checked before a CLAP model is needed: with none configured, the same words
    monkeypatch.delenv("AKG_CLAP_MODEL", raising=False)
    monkeypatch.delenv("AKG_CLAP_CHECKPOINT", raising=False)
    assert "no such folder" in one_line_error(run_cli("index", str(tmp_path / "nope")))
    assert "index name '../x'" in one_line_error(run_cli("index", str(collection), "--name", "../x"))
    assert "no index named 'nope'" in one_line_error(run_cli("search", "dog", "--index", "nope"))
    for limit in ("inf", "nan", "0", "3601"):  # inf decoded any clip whole, however long; nan failed in every clip
        assert "--max-seconds" in one_line_error(run_cli("index", str(collection), "--max-seconds", limit))
    assert "unrecognised columns" in one_line_error(run_cli("search", "--clip", str(collection / "c00.wav"), "--captions",
                                                            str(collection / "notes.txt"), "--model", str(clap_dir)))
    captions = tmp_path / "captions.csv"
    captions.write_text("caption\ndog barking\n")
    assert "bad.wav" in one_line_error(run_cli("search", "--clip", str(collection / "bad.wav"), "--captions",
                                               str(captions), "--model", str(clap_dir)))
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # its content hash (the audio cache's key) used to wait forever for a writer
    assert f"{fifo}: is not a regular file" in one_line_error(run_cli("search", "--clip", str(fifo), "--captions",
                                                                      str(captions), "--model", str(clap_dir)))
    other = build_tiny_clap(tmp_path / "other-clap", seed=1)
    assert "was built with the encoder" in one_line_error(run_cli("search", "dog", "--index", "tones", "--model", str(other)))
    assert "--rebuild" in one_line_error(run_cli("index", str(collection), "--name", "tones", "--model", str(other)))
    assert "index name" in one_line_error(run_cli("index", str(collection), "--name", "../x", "--model", str(clap_dir)))


def test_the_api_gives_the_commands_answers(small_graph, indexed, collection, clap_dir, server_env, run_cli, tmp_path):
    import akg

    with akg.open(settings=server_env) as kg:
        api = akg.search(kg, "dog", index="tones", clap=clap_dir, use_kge=False, k=3).to_dict()
        tags = akg.tag(kg, collection / "c00.wav", clap=clap_dir, use_kge=False, k=2)
    cli = json.loads(run_cli("search", "dog", "--index", "tones", "--model", str(clap_dir), "--no-kge", "-k", "3",
                             "--json").stdout)
    assert api == cli
    assert [t["entity"] for t in tags] == [t["entity"] for t in json.loads(run_cli(
        "tag", str(collection / "c00.wav"), "--model", str(clap_dir), "--no-kge", "-k", "2", "--json").stdout)[0]["tags"]]
    again = akg.index(collection, name="tones", clap=clap_dir, settings=server_env, batch=3)
    assert again["embedded"] == 0 and again["reused"] == N_CLIPS and again.to_df().shape[0] == 1  # the bad file


def test_the_explorer_page_searches_and_tags(small_graph, indexed, collection, clap_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AKG_CLAP_MODEL", str(clap_dir))
    at = AppTest.from_file(str(Path(__file__).parents[1] / "ui" / "views" / "retrieval.py"), default_timeout=120).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    at.checkbox[0].uncheck().run()
    at.selectbox[1].select("tones").run()
    at.text_input[0].input("dog").run()
    assert not at.exception and not at.error, (at.exception, at.error)
    shown = "\n".join(str(m.value) for m in at.markdown)
    assert shown.count(".wav**") == N_CLIPS  # every clip of the 8, ranked, each playable
    assert "linked to dog (named)" in "\n".join(str(c.value) for c in at.caption)
    at.file_uploader[0].set_value(("c00.wav", (collection / "c00.wav").read_bytes(), "audio/wav")).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    table = at.dataframe[-1].value
    assert len(table) == len(ENTITIES) and set(table["entity"]) == set(ENTITIES)
    assert table.set_index("entity").loc["dog", "parents"] == "domestic animal"


def test_one_enricher_shared_by_threads(small_graph, clap_dir, server_env):
    """The explorer keeps one enricher for all its sessions, and the service's threads share the kept
    one: texts expanded from several threads at once, with caches small enough to evict all the time,
    give what one thread alone gets (a KeyError or a mixed-up expansion otherwise)."""
    import threading

    from akg.encoders import EncoderSpec, load_encoder
    from retrieval.session import open_enricher

    encoder = load_encoder(EncoderSpec(model=str(clap_dir)))
    texts = [f"{w} {n}" for w in ("dog", "rain", "car horn", "park", "weather", "street") for n in range(6)]
    alone = open_enricher(small_graph, server_env, encoder, use_kge=False)
    expected = {t: alone.expand(t) for t in texts}
    shared = open_enricher(small_graph, server_env, encoder, use_kge=False)
    shared._text_cache = 12  # an LRU of 12 texts and 1 expansion: nearly every call evicts
    start, failures = threading.Barrier(4), []

    def work(offset: int) -> None:
        start.wait()
        try:
            for i in range(3 * len(texts)):
                t = texts[(offset * 7 + i) % len(texts)]
                got = shared.expand(t)
                want = expected[t]
                assert got.text == t and [v.text for v in got.variants] == [v.text for v in want.variants]
                np.testing.assert_allclose(got.variant_emb, want.variant_emb, atol=1e-5)
                np.testing.assert_allclose(got.emb, want.emb, atol=1e-5)
        except BaseException as e:  # noqa: BLE001 -- reported by the main thread
            failures.append(repr(e))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_vectorised_leave_one_out_equals_classify_s():
    from reasoning.fusion import FusionSettings, leave_one_out
    from retrieval.search import loo_effects

    rng = np.random.default_rng(0)
    for fusion in (FusionSettings(), FusionSettings(method="reliability", temperature=0.2, base_weight=0.0)):
        for n in (1, 2, 7):
            scores, weights = rng.uniform(-1, 1, n), rng.uniform(0, 2, n)
            weights[0] = 0.0  # a variant that weighs nothing changes nothing
            np.testing.assert_allclose(loo_effects(0.3, scores, weights, fusion),
                                       leave_one_out(0.3, scores, weights, fusion), atol=1e-12)


def test_caption_files_of_both_layouts(tmp_path):
    from akg.errors import InputError
    from retrieval.captions import read_caption_file

    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("abc_30.wav", "Ydef.flac"):
        sf.write(audio / name, tone(300, 0.1), SR)
    caps = tmp_path / "audiocaps_test.csv"
    caps.write_text("audiocap_id,youtube_id,start_time,caption\n1,abc,30,a dog barks\n2,def,0,rain falls\n"
                    "3,abc,30,a dog barks twice\n4,gone,10,never downloaded\n")
    f = read_caption_file(caps, audio)
    assert f.layout == "audiocaps" and [p.name for p in f.clips] == ["abc_30.wav", "Ydef.flac"]
    assert [(c.text, c.clip) for c in f.captions] == [("a dog barks", 0), ("rain falls", 1), ("a dog barks twice", 0)]
    assert f.missing == ["gone_10"]
    clotho = tmp_path / "clotho.csv"
    clotho.write_text("file_name,caption_1,caption_2,caption_3,caption_4,caption_5\nabc_30.wav,one,two,,four,five\n")
    f = read_caption_file(clotho, audio)
    assert f.layout == "clotho" and [c.text for c in f.captions] == ["one", "two", "four", "five"]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,text\nx,y\n")
    with pytest.raises(InputError, match=r"bad.csv, line 1: unrecognised columns"):
        read_caption_file(bad, audio)


CLOTHO_HEADER = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
AUDIOCAPS_HEADER = "audiocap_id,youtube_id,start_time,caption\n"


@pytest.mark.parametrize("content,line,words", [
    ((CLOTHO_HEADER + "c00.wav,a dog,b,c,d,e\nc01.wav,caf\xe9 noise,b,c,d,e\n").encode("latin-1"), 3, "not UTF-8"),
    ((CLOTHO_HEADER + 'c00.wav,"a dog barks,b,c,d,e\nc01.wav,x,y,z,w,v\n').encode(), 2, "never closed"),
    ((CLOTHO_HEADER + "c00.wav,a,b,c,d,e\nc01.wav,,,,,\n").encode(), 3, "no caption for clip 'c01.wav'"),
    ((CLOTHO_HEADER + "c00.wav,a,b,c,d,e\nc01.wav,f,g,h,i,j\nc00.wav,k,l,m,n,o\n").encode(), 4,
     "clip 'c00.wav' again (first on line 2)"),
    ((CLOTHO_HEADER + "c00.wav,a dog, barking,c,d,e,f\n").encode(), 2, "7 fields where the header has 6"),
    ((AUDIOCAPS_HEADER + "1,abc,30,a dog\n2,abc,30,a dog again\n1,def,0,rain\n").encode(), 4,
     "audiocap_id '1' again (first on line 2)"),
])
def test_caption_files_are_read_strictly(tmp_path, collection, clap_dir, run_cli, content, line, words):
    """Each of these used to be read on: replacement characters, the rest of the file as one caption, a
    clip without captions, two rows merged into one clip, captions shifted by a comma."""
    from akg.errors import InputError
    from retrieval.captions import read_caption_file

    meta = tmp_path / "captions.csv"
    meta.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_caption_file(meta, collection)
    assert str(err.value).startswith(f"{meta}, line {line}: ") and words in str(err.value)
    out = run_cli("retrieval-eval", "--audio-dir", str(collection), "--meta", str(meta), "--model", str(clap_dir),
                  "--no-kge", "--out", str(tmp_path / "eval"))
    assert one_line_error(out) == f"Error: {err.value}"
    assert not (tmp_path / "eval" / "results.csv").exists()


def test_a_plain_caption_column_is_read_as_strictly(tmp_path):
    """An unquoted comma in a one-column caption file cut the caption short ('a dog'), without a word."""
    from akg.errors import InputError
    from retrieval.captions import read_caption_file

    meta = tmp_path / "captions.csv"
    meta.write_text("caption\na dog, barking\nrain\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"captions\.csv, line 2: 2 fields where the header has 1"):
        read_caption_file(meta)
    meta.write_text('caption\n"a dog, barking"\nrain\n', encoding="utf-8")
    assert [c.text for c in read_caption_file(meta).captions] == ["a dog, barking", "rain"]


def test_two_runs_on_one_index_name_do_not_mix(collection, clap_dir, tmp_path, run_cli, monkeypatch):
    """Two runs on one name picked the same new generation folder and removed each other's files (one
    failed with 'cannot write the index', or CURRENT was left naming a removed folder): now the second is
    refused at once. A reader whose generation is replaced under it reads the new one."""
    import subprocess

    from akg.encoders import EncoderSpec, load_encoder
    from akg.errors import ConflictError, InputError
    from retrieval import store

    home = tmp_path / "home"
    spec = EncoderSpec(model=str(clap_dir))
    encoder = load_encoder(spec)
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from retrieval.store import index_lock\n"
                               f"with index_lock({str(home)!r}, 'tones'):\n print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConflictError, match=rf"index 'tones' is being built by another run \(process {holder.pid}\)"):
            store.build_index(home, "tones", collection, encoder, spec, batch=3)
        monkeypatch.setenv("AKG_HOME", str(home))
        assert f"(process {holder.pid})" in one_line_error(run_cli("index", str(collection), "--name", "tones",
                                                                   "--model", str(clap_dir)))
        assert not (home / "indexes" / "tones" / "CURRENT").exists()
    finally:
        holder.communicate("")  # the holder ends: its lock goes with it
    assert store.build_index(home, "tones", collection, encoder, spec, batch=3).clips == N_CLIPS

    # load_index reads CURRENT (gen-000001); before it opens that folder, a run finishes: gen-000002 in place.
    changed = tmp_path / "changed"
    shutil.copytree(collection, changed)
    store.build_index(home, "moving", changed, encoder, spec, batch=3)
    sf.write(changed / "new.wav", tone(7000), SR)
    opened, original = [], store._open_generation

    def a_run_finishes_first(gen):
        if not opened:
            opened.append(gen.name)
            store.build_index(home, "moving", changed, encoder, spec, batch=3)  # switches CURRENT, removes gen
        return original(gen)

    monkeypatch.setattr(store, "_open_generation", a_run_finishes_first)
    index = store.load_index(home, "moving")
    assert opened == ["gen-000001"] and len(index) == N_CLIPS + 1 and "new.wav" in index.paths

    # CURRENT names a generation folder beside it, never a path elsewhere (a damaged or planted file).
    (home / "indexes" / "moving" / "CURRENT").write_text("../tones/gen-000001\n")
    with pytest.raises(InputError, match="damaged .CURRENT names '../tones/gen-000001', not a generation."):
        store.load_index(home, "moving")


def _workers_of(pid: int) -> set[int]:
    """The spawned worker processes whose parent is `pid` (from /proc; not the resource tracker)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                found.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists() or len(os.sched_getaffinity(0)) < 2,
                    reason="watches two worker processes in /proc (Linux, two cores)")
def _ignores_sigint(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def test_ctrl_c_during_an_index_with_workers_is_one_line(collection, clap_dir, tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: every spawned worker printed a
    KeyboardInterrupt traceback (and the pool's thread an InvalidStateError). Now the workers ignore
    it, the command stops them and says how to resume; the same command then finishes the index."""
    import signal
    import subprocess

    env = {**os.environ, "AKG_HOME": str(tmp_path / "home"), "AKG_CLAP_MODEL": str(clap_dir)}
    argv = [str(Path(sys.executable).parent / "akg"), "index", str(collection), "--name", "tones", "--batch", "1"]
    proc = subprocess.Popen([*argv, "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    workers, deadline = set(), time.monotonic() + 300
    # Both workers spawned (they then load torch for seconds), and the command listening for Ctrl-C again:
    # it ignores SIGINT while it spawns them (its SigIgn mask in /proc has SIGINT's bit, 0x2, set).
    while proc.poll() is None and (len(workers) < 2 or _ignores_sigint(proc.pid)) and time.monotonic() < deadline:
        workers = _workers_of(proc.pid)
        time.sleep(0.01)
    while proc.poll() is None and time.monotonic() < deadline:  # Ctrl-C, as a terminal sends it to the group
        os.killpg(proc.pid, signal.SIGINT)
        try:  # again only if it was missed (one sent while the workers spawn is ignored): a rare retry
            proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    assert workers and proc.returncode == 1, (proc.returncode, err)
    assert err.startswith("Error: interrupted") and len(err.splitlines()) == 1, err
    assert "run the same command again" in err
    assert not [p for p in workers if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text()
                .rsplit(")", 1)[1].split()[0]], "a worker outlived the command"
    assert not (tmp_path / "home" / "indexes" / "tones" / "CURRENT").exists()
    again = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["clips"] == N_CLIPS


def test_more_workers_than_cores_is_capped_with_a_note(indexed, collection, clap_dir, run_cli):
    from retrieval.embedding import local_workers

    cores = len(os.sched_getaffinity(0))
    assert local_workers(cores) == (cores, None)
    n, note = local_workers(cores + 1)
    assert n == cores and f"--workers {cores + 1}: this machine has {cores} core(s)" in note
    from akg.errors import InputError

    from retrieval.embedding import check_workers

    for bad in (0, "2", True, 1.5):  # the library's callers: one clear error, not a TypeError from a comparison
        with pytest.raises(InputError, match="--workers must be a whole number"):
            local_workers(bad)
        with pytest.raises(InputError, match="--workers must be a whole number"):
            check_workers(bad)  # what a --ray run checks, where the core count caps nothing
    # Through the command (every clip known already, so nothing is spawned): a warning, never an error.
    res = run_cli("index", str(collection), "--name", "tones", "--model", str(clap_dir), "--batch", "3",
                  "--workers", "1000", "--json")
    assert res.exit_code == 0, res.output
    assert f"warning: --workers 1000: this machine has {cores} core(s) for it; using {cores}" in res.stderr
    assert json.loads(res.stdout)["reused"] == N_CLIPS


def test_the_api_names_a_caption_or_query_that_is_not_a_string(small_graph, indexed, collection, clap_dir, server_env):
    """akg.search(..., captions=["dog", None]) raised AttributeError ('NoneType' has no attribute 'strip')."""
    import akg

    clip = collection / "c00.wav"
    with akg.open(settings=server_env) as kg:
        for captions, words in ((["a dog barks", None], "captions[1] is NoneType (None), not a string"),
                                (["rain", 3], "captions[1] is int (3), not a string"),
                                ([b"rain"], "captions[0] is bytes"),
                                (7, "captions must be a list of strings"),
                                (["", "  "], "the caption set is empty")):
            with pytest.raises(akg.InputError, match=re.escape(words)):
                akg.search(kg, clip=clip, captions=captions, clap=clap_dir, use_kge=False)
        with pytest.raises(akg.InputError, match="the query must be a string, not int"):
            akg.search(kg, 42, index="tones", clap=clap_dir, use_kge=False)
        with pytest.raises(akg.InputError, match="k .results. must be a whole number"):
            akg.search(kg, "dog", index="tones", clap=clap_dir, use_kge=False, k="3")
        # the good ones still answer: duplicates and blanks left out, as before
        hits = akg.search(kg, clip=clip, captions=("a dog barks", "rain", "rain", " "), clap=clap_dir, use_kge=False)
    assert hits["captions"] == 2 and sorted(h["caption"] for h in hits["hits"]) == ["a dog barks", "rain"]
