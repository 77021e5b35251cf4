"""`akg serve` against a real service process and the session's real graph server.

The service is started here as users start it (`akg serve --port N`, a subprocess with the session's
AKG_HOME/AKG_URI), on a free loopback port. Each endpoint's answer is compared with what the public
Python API (akg.api) gives for the same input at the same moment; writes need a token and are
recorded under its name; the Cypher gate refuses what `akg query` refuses, in the same words;
uploads over the limit or of the wrong type are refused; a schemathesis run fuzzes every endpoint
from /openapi.json (no 5xx, every response as the schema says).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf

import akg
from akg.errors import AkgError

sys.path.insert(0, str(Path(__file__).parent))
from helpers import free_port, start_service, stop_service  # noqa: E402
from test_api import TEST, TRAIN, tone, write_akg  # noqa: E402

AKG = str(Path(sys.executable).parent / "akg")
ATTACKS = json.loads((Path(__file__).parent / "corpus" / "console_attacks.json").read_text(encoding="utf-8"))
MODEL = "serve-small"


@pytest.fixture(scope="module")
def kg(server_env, graph, tmp_path_factory):
    """The small graph of test_api, a small trained model, and the library's view of them."""
    from helpers import wipe

    wipe(graph)
    d = tmp_path_factory.mktemp("serve-data")
    with akg.open() as kg:
        kg.ingest([write_akg(d / "small_pruned.tsv", TRAIN), write_akg(d / "small_test.tsv", TEST)])
        model = akg.train(kg, preset="fast", epochs=3, embedding_dim=8, batch_size=8, negatives=4, name=MODEL,
                          evaluate=False)
        yield kg
        shutil.rmtree(model.path, ignore_errors=True)


@pytest.fixture(scope="module")
def token(server_env):
    from service import tokens

    path = tokens.tokens_path(server_env.home)
    path.unlink(missing_ok=True)
    yield tokens.add(server_env.home, "alice")
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def service(kg, token, clap_dir):
    env = {**os.environ, "AKG_CLAP_MODEL": str(clap_dir)}
    proc, url = start_service(env)
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client
    stop_service(proc)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response, status: int) -> str:
    """The error's one line, after checking the status and that the body is {"error": ...} alone."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- reads equal the library's ---------------------------------------------------------------------

def test_health_ready_and_the_contract(service):
    assert ok(service.get("/health"))["status"] == "ok"
    ready = ok(service.get("/ready"))
    assert ready["ready"] and ready["graph"]["reachable"] and ready["problems"] == []
    schema = ok(service.get("/openapi.json"))
    assert {"/predict", "/query", "/curation/accept", "/classify"} <= set(schema["paths"])
    docs = service.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # no CORS unless configured: a cross-site request gets no allow-origin header
    r = service.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_reads_equal_the_library(service, kg):
    assert ok(service.get("/stats")) == json.loads(json.dumps(kg.stats().to_dict()))
    assert ok(service.get("/entities", params={"q": "dog", "limit": 5})) == kg.search("dog", limit=5).to_dict()
    assert ok(service.get("/entities/dog/facts")) == kg.facts("dog").to_dict()
    assert ok(service.get("/entities/Dog Barking/facts", params={"limit": 3})) == \
        kg.facts("Dog Barking", limit=3).to_dict()
    # AKG names may hold a '/' ("video game/tv"): sent encoded, it stays part of the name
    assert ok(service.get("/entities/video game%2Ftv/facts")) == kg.facts("video game/tv").to_dict()
    assert ok(service.get("/entities/video game/tv/neighbourhood")) == kg.neighbourhood("video game/tv").to_dict()
    hood = ok(service.get("/entities/dog/neighbourhood", params={"depth": 2, "relation": ["has parent"]}))
    assert hood == kg.neighbourhood("dog", depth=2, relations=["has parent"]).to_dict()
    assert ok(service.get("/versions")) == kg.versions().to_dict()
    assert ok(service.get("/curation/queue", params={"status": "any", "limit": 5})) == \
        kg.curate.queue(status=None, limit=5).to_dict()
    assert ok(service.get("/curation/changes")) == kg.curate.changes().to_dict()
    first = kg.versions()[0]["version"]
    assert ok(service.get("/diff", params={"old": first[:12]})) == kg.diff(first[:12]).to_dict()
    assert ok(service.get("/models")) == akg.models().to_dict()
    try:
        expected = kg.label_sets().to_dict()
    except AkgError as e:  # no SALT mapping here: the same error, as a 400, naming the folder by its setting
        from service.app import hide_paths, server_paths

        message = refused(service.get("/labels"), 400)
        assert message == hide_paths(str(e), server_paths(kg.settings)) and str(kg.settings.home) not in message
    else:
        assert ok(service.get("/labels")) == expected


def test_query_equals_the_library_and_the_gate_refuses_the_same(service, kg):
    text = "MATCH (:Entity {name: $n})-[r]->(t) RETURN t.name AS tail ORDER BY tail LIMIT $limit"
    got = ok(service.post("/query", json={"cypher": text, "params": {"n": "dog", "limit": 2}}))
    assert got == kg.query(text, params={"n": "dog", "limit": 2}).to_dict()
    assert len(got["rows"]) == 2
    got = ok(service.post("/query", json={"cypher": "MATCH (e:Entity) RETURN e.name AS n ORDER BY n", "limit": 3}))
    assert got["truncated"] is True and len(got["rows"]) == 3
    for attack in ATTACKS[::11]:  # a spread of the console's attack corpus
        with pytest.raises(AkgError) as library:
            kg.query(attack["query"])
        status = 504 if type(library.value).__name__ == "QueryTimeout" else 400
        assert refused(service.post("/query", json={"cypher": attack["query"]}), status) == \
            "; ".join(x.strip() for x in str(library.value).splitlines() if x.strip()), attack["why"]
    assert kg.query("MATCH (e:Evil) RETURN count(e) AS n")[0]["n"] == 0
    refused(service.post("/query", json={"cypher": "MATCH (n) RETURN n", "limit": 0}), 422)


def test_query_when_every_console_slot_is_busy_is_a_429(service, server_env):
    """The machine runs at most MAX_RUNNING console queries (akg.readonly); one more is told to retry."""
    import fcntl

    from akg.readonly import MAX_RUNNING

    folder = server_env.home / "console"
    folder.mkdir(exist_ok=True)
    held = [open(folder / f"slot-{i}.lock", "a+") for i in range(MAX_RUNNING)]  # noqa: SIM115
    try:
        for f in held:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert "already running" in refused(service.post("/query", json={"cypher": "RETURN 1 AS x"}), 429)
    finally:
        for f in held:
            f.close()
    assert ok(service.post("/query", json={"cypher": "RETURN 1 AS x"}))["rows"] == [{"x": 1}]


def test_predictions_equal_the_library_and_follow_curation(service, kg, token):
    model = akg.load_model(MODEL)
    got = ok(service.post("/predict", json={"head": "dog", "relation": "occurs in", "k": 5, "model": MODEL}))
    expected = model.predict("dog", "occurs in", k=5, kg=kg).to_dict()
    assert {k: v for k, v in got.items() if k != "stale"} == expected
    known = sorted(r["tail"] for r in got["rows"] if r["status"] == "known")
    assert known == sorted(t for _, h, r, t in TRAIN if (h, r) == ("dog", "occurs in"))

    pairs = [{"head": "dog", "relation": "has parent"}, {"head": "no such thing", "relation": "has parent"},
             {"head": "cat", "relation": "occurs in"}]
    batch = ok(service.post("/predict/batch", json={"pairs": pairs, "k": 3, "model": MODEL}))
    expected = model.predict_many([(p["head"], p["relation"]) for p in pairs], k=3, kg=kg).to_dict()
    assert {k: v for k, v in batch.items() if k != "stale"} == expected
    assert [r["error"] is None for r in batch["rows"]] == [True, False, True]

    # a decision through the API shows in the next prediction's marks (the cached known tails are dropped)
    ok(service.post("/curation/reject", headers=auth(token),
                    json={"triples": [{"head": "dog", "relation": "occurs in", "tail": "park"}]}))
    try:
        again = ok(service.post("/predict", json={"head": "dog", "relation": "occurs in", "k": 5, "model": MODEL}))
        assert "park" not in [r["tail"] for r in again["rows"] if r["status"] == "known"]
        assert again["stale"]  # the model saw a graph that has changed since
        # ... and so does one made with the CLI (another process)
        done = subprocess.run([AKG, "curate", "accept", "dog|occurs in|park", "--by", "bob"], capture_output=True,
                              text=True, env=os.environ)
        assert done.returncode == 0, done.stderr
        third = ok(service.post("/predict", json={"head": "dog", "relation": "occurs in", "k": 5, "model": MODEL}))
        assert "park" in [r["tail"] for r in third["rows"] if r["status"] == "known"]
    finally:
        kg.curate.accept(("dog", "occurs in", "park"), by="test")

    card = ok(service.get(f"/models/{MODEL}"))
    assert card["name"] == MODEL and card["config"] == model.config
    assert refused(service.get("/models/no-such-model"), 404).startswith("no model named")
    refused(service.post("/predict", json={"head": "dog", "relation": "x", "model": "../etc"}), 422)
    refused(service.post("/predict/batch", json={"pairs": pairs * 100}), 422)  # over the batch limit


# --- writes ----------------------------------------------------------------------------------------

def test_writes_need_a_token_and_are_recorded_under_its_name(service, kg, token):
    body = {"head": "cat", "relation": "occurs in", "tail": "garden", "note": "from the API"}
    assert "Bearer" in refused(service.post("/curation/add", json=body), 401)
    refused(service.post("/curation/add", json=body, headers=auth("not-a-token")), 401)
    refused(service.post("/curation/add", json=body, headers={"Authorization": "Basic YWxpY2U6eA=="}), 401)
    assert kg.facts("cat").to_dict()["rows"] == ok(service.get("/entities/cat/facts"))["rows"]
    assert "garden" not in [r["other"] for r in kg.facts("cat")]

    done = ok(service.post("/curation/add", json=body, headers=auth(token)))
    change = done["change"] if "change" in done else done
    last = kg.curate.changes(limit=1)[0]
    assert last["by"] == "alice" and "garden" in [r["other"] for r in kg.facts("cat")]
    assert json.dumps(change)  # the change as the library reports it

    undone = ok(service.post("/curation/revert", json={"change_id": last["id"]}, headers=auth(token)))
    assert undone and kg.curate.changes(limit=1)[0]["by"] == "alice"
    assert "garden" not in [r["other"] for r in kg.facts("cat") if r["status"] == "accepted"]
    refused(service.post("/curation/revert", json={"change_id": "no-such-change"}, headers=auth(token)), 400)


def test_tokens_are_stored_hashed_and_owner_only(server_env, token, run_cli):
    from service import tokens

    path = tokens.tokens_path(server_env.home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text() and tokens.digest(token) in path.read_text()
    res = run_cli("tokens", "add", "bob")
    assert res.exit_code == 0
    bob = res.stdout.strip()
    assert tokens.TokenStore(server_env.home).who(bob) == "bob"
    assert json.loads(run_cli("tokens", "list", "--json").stdout)[1]["name"] == "bob"
    assert run_cli("tokens", "remove", "bob").exit_code == 0
    assert tokens.TokenStore(server_env.home).who(bob) is None


def _add_token_at_once(home: str, name: str, start, out) -> None:
    from service import tokens

    start.wait()
    out.put((name, tokens.add(Path(home), name)))


def test_tokens_added_at_once_are_all_kept(tmp_path):
    """Eight curators run `akg tokens add` at the same moment: every token shown must work (a lost
    update would show a token that the file no longer holds: its writes would be refused, 401)."""
    import multiprocessing

    from service import tokens

    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_add_token_at_once, args=(str(tmp_path), f"curator{i}", start, out)) for i in range(8)]
    for p in procs:
        p.start()
    shown = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * 8
    store = tokens.TokenStore(tmp_path)
    assert {name: store.who(token) for name, token in shown.items()} == {f"curator{i}": f"curator{i}" for i in range(8)}


def test_binding_beyond_loopback_needs_a_token_or_consent(tmp_path, monkeypatch, run_cli):
    from service.cli import check_binding, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    monkeypatch.setenv("AKG_HOME", str(tmp_path))  # no tokens here
    res = run_cli("serve", "--host", "0.0.0.0")
    assert res.exit_code == 1 and "akg tokens add" in res.output and "--allow-public-reads" in res.output
    assert "reads only" in check_binding("0.0.0.0", False, True)
    assert check_binding("127.0.0.1", False, False) is None


def test_an_address_that_cannot_be_listened_on_is_one_line_before_anything_starts(tmp_path):
    """A port in use (another service), a host that is not this machine: `akg serve` says so in one
    line and exits 1 at once, without loading models or starting the embedded graph server."""
    import socket

    env = {**os.environ, "AKG_HOME": str(tmp_path)}
    akg_bin = str(Path(sys.executable).with_name("akg"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run([akg_bin, "serve", "--port", str(port)], env=env, capture_output=True, text=True,
                             timeout=120)
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1 and f"port {port}" in res.stderr and "in use" in res.stderr, res.stderr
    assert not list(tmp_path.iterdir()), "nothing may start (no embedded server, no caches) before the refusal"
    env_tokens = {**env, "AKG_HOME": str(tmp_path / "with-token")}
    subprocess.run([akg_bin, "tokens", "add", "ops"], env=env_tokens, capture_output=True, check=True, timeout=60)
    res = subprocess.run([akg_bin, "serve", "--host", "no-such-host.invalid"], env=env_tokens, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no-such-host.invalid" in res.stderr, res.stderr


# --- uploads and limits ----------------------------------------------------------------------------

def test_uploads_and_bodies_over_the_limits_or_of_the_wrong_type_are_refused(service, tmp_path):
    from ui.uploads import MAX_UPLOAD_BYTES

    big = b"RIFF" + b"\0" * (MAX_UPLOAD_BYTES + 70 * 1024)
    assert "limit" in refused(service.post("/classify", files={"clip": ("big.wav", big, "audio/wav")}), 413)
    assert "unsupported file type" in refused(
        service.post("/classify", files={"clip": ("notes.txt", b"hello", "text/plain")}), 400)
    assert "not an audio file" in refused(
        service.post("/classify", files={"clip": ("fake.wav", b"RIFF1234WAVEjunk" * 10, "audio/wav")}), 400)
    assert "empty" in refused(service.post("/classify", files={"clip": ("e.wav", b"", "audio/wav")}), 400)
    refused(service.post("/classify", data={"labels": "x"}), 422)  # no clip
    refused(service.post("/query", content=b'{"cypher": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                         headers={"Content-Type": "application/json"}), 413)
    refused(service.post("/query", content=b"{not json", headers={"Content-Type": "application/json"}), 422)

    def chunks():  # no Content-Length: the limit is enforced by counting what arrives
        yield b'{"cypher": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    refused(service.post("/query", content=chunks(), headers={"Content-Type": "application/json"}), 413)


def test_cors_only_for_the_configured_origins(server_env):
    from fastapi.testclient import TestClient

    from akg.config import Settings
    from akg.errors import ConfigError
    from service.app import create_app

    app = create_app(Settings.from_env(overrides={"AKG_CORS_ORIGINS": "https://ok.example, http://localhost:3000"}))
    client = TestClient(app)  # no lifespan: /health needs no graph
    assert client.get("/health", headers={"Origin": "https://ok.example"}).headers[
        "access-control-allow-origin"] == "https://ok.example"
    assert "access-control-allow-origin" not in client.get("/health", headers={"Origin": "https://evil.example"}).headers
    with pytest.raises(ConfigError, match="AKG_CORS_ORIGINS"):
        Settings.from_env(overrides={"AKG_CORS_ORIGINS": "ok.example/path"})


def test_classify_equals_the_library(service, kg, clap_dir, tmp_path):
    clip = tmp_path / "a.wav"
    sf.write(clip, tone(440, 2), 48000)
    labels = "dog barking\nrain\ncar horn\nsiren\ncat\n"
    got = ok(service.post("/classify", files={"clip": ("a.wav", clip.read_bytes(), "audio/wav")},
                          data={"label_list": labels, "top_k": "3", "use_kge": "false"}))
    (tmp_path / "labels.txt").write_text(labels)
    expected = akg.classify(kg, [clip], labels=str(tmp_path / "labels.txt"), clap=clap_dir, top_k=3,
                            use_kge=False).to_dict()
    def same(clips):  # the clip's path differs: the service staged the upload under its own name
        return [{k: v for k, v in c.items() if k != "clip"} for c in clips]

    assert same(got["clips"]) == same(json.loads(json.dumps(expected["clips"], default=str)))
    assert got["clips"][0]["refined"] and got["clips"][0]["clip"] == "a.wav"
    # a bad label list is named as the caller sent it, with its line; never the service's temporary files
    bad = refused(service.post("/classify", files={"clip": ("a.wav", clip.read_bytes(), "audio/wav")},
                               data={"label_list": "rain\ndog\tx\ty\n"}), 400)
    assert bad.startswith("label_list, line 2: expected 'label' or 'label<TAB>entity'"), bad
    assert "akg-serve-" not in bad and "/tmp" not in bad
    # the CLAP encoder is loaded once per process: a second classification reuses it
    from akg import api

    loaded = dict(api._ENCODERS)  # (other tests of this process may have loaded other encoders)
    again = akg.classify(kg, [clip], labels=str(tmp_path / "labels.txt"), clap=clap_dir, top_k=3, use_kge=False)
    assert api._ENCODERS == loaded and any(str(clap_dir) in str(key) for key in loaded)
    assert same(json.loads(json.dumps(again.to_dict()["clips"], default=str))) == same(got["clips"])


def _float_wav(samples) -> bytes:
    import io

    import numpy as np

    out = io.BytesIO()
    sf.write(out, np.asarray(samples, np.float32), 48000, format="WAV", subtype="FLOAT")
    return out.getvalue()


def test_errors_name_what_the_client_sent_never_the_servers_files(service, kg, server_env, clap_dir, tmp_path):
    home = str(server_env.home)

    def private(message: str) -> bool:
        return any(p in message for p in (home, "akg-serve-", "/tmp", str(clap_dir)))

    # a clip whose header is fine but whose samples are not numbers: it cannot be used, so the request fails
    # (400, it used to be a 200 with the error inside), named as the client named it
    nan = {"clip": ("my clip.wav", _float_wav([float("nan")] * 4800), "audio/wav")}
    for path, form in (("/tag", {"k": "3"}), ("/search/clip", {"captions": "a dog\nrain"}),
                       ("/classify", {"label_list": "dog\ncat"})):
        message = refused(service.post(path, files=nan, data=form), 400)
        assert message == "my clip.wav: contains NaN or infinite samples", (path, message)
    # a folder in the upload's name is not the server's business either
    message = refused(service.post("/tag", files={"clip": ("../../etc/x.wav", nan["clip"][1], "audio/wav")}), 400)
    assert message == "x.wav: contains NaN or infinite samples"
    # an unknown index: named, with the indexes there are, under AKG_HOME rather than the folder itself
    message = refused(service.post("/search", json={"text": "dog", "index": "nope"}), 404)
    assert message.startswith("no index named 'nope' under AKG_HOME/indexes") and not private(message), message
    # a broken model's problem on /ready says what is wrong, not where the server keeps it
    broken = Path(home) / "models" / "broken-one"
    broken.mkdir(parents=True)
    try:
        (broken / "config.json").write_text("{not json")
        r = service.get("/ready")
        assert r.status_code == 503
        problems = r.json()["problems"]
        assert any(p.startswith("model broken-one: ") for p in problems), problems
        assert not any(private(p) for p in problems), problems
    finally:
        shutil.rmtree(broken)
    assert ok(service.get("/ready"))["ready"]


def test_the_servers_folders_are_named_by_their_settings(tmp_path):
    from akg.config import Settings
    from service.app import hide_paths, server_paths

    home, clap = tmp_path / "home", tmp_path / "home" / "clap"
    settings = Settings.from_env(overrides={"AKG_HOME": str(home), "AKG_CLAP_MODEL": str(clap), "AKG_PASSWORD": "x"})
    paths = server_paths(settings)
    assert hide_paths(f"{clap}/config.json: bad; '{home}/indexes/x' ({home}) {home}2/y {home}", paths) == \
        f"AKG_CLAP_MODEL/config.json: bad; 'AKG_HOME/indexes/x' (AKG_HOME) {home}2/y AKG_HOME"
    # a folder that ends a sentence is hidden; one inside a longer path, or a longer name, is another folder
    assert hide_paths(f"no index under {home}. cannot read /mnt{home}/x.wav or {home}.bak/y", paths) == \
        f"no index under AKG_HOME. cannot read /mnt{home}/x.wav or {home}.bak/y"
    # relative values are words of a message too: only their absolute (resolved) forms are the server's
    settings = Settings.from_env(overrides={"AKG_HOME": str(home), "AKG_LABEL_SETS_DIR": "labels",
                                            "AKG_AUDIO_DIR": "audio", "AKG_CLAP_MODEL": "laion/clap-htsat-unfused",
                                            "AKG_CLAP_CHECKPOINT": "~/ckpt/clap.pt", "AKG_PASSWORD": "x"})
    paths = server_paths(settings)
    for message in ("give labels (a label set key) or label_list, not both", "x.wav: corrupt or not an audio file",
                    "cannot load laion/clap-htsat-unfused from the hub"):
        assert hide_paths(message, paths) == message
    assert hide_paths(f"{Path.cwd()}/labels/x.txt: empty", paths) == "AKG_LABEL_SETS_DIR/x.txt: empty"
    assert hide_paths("no checkpoint at ~/ckpt/clap.pt", paths) == "no checkpoint at AKG_CLAP_CHECKPOINT"  # as given


def test_an_unforeseen_error_about_an_upload_names_the_clip_as_sent(tmp_path, monkeypatch):
    """Not an AkgError (a decoder's ValueError naming the staged file): still a 500, with the caller's name."""
    from fastapi.testclient import TestClient

    from akg.config import Settings
    from service.app import create_app

    app = create_app(Settings.from_env(overrides={"AKG_HOME": str(tmp_path), "AKG_PASSWORD": "x"}))
    staged = []

    def tag(kg, clips, **kwargs):
        staged.append(str(clips[0]))
        raise ValueError(f"cannot decode {clips[0]} (in {clips[0].parent})")

    monkeypatch.setattr(app.state.service, "kg", lambda: None)  # no graph needed: the library fails first
    monkeypatch.setattr(akg, "tag", tag)
    client = TestClient(app, raise_server_exceptions=False)  # no lifespan
    clip = {"clip": ("my clip.wav", _float_wav([0.1] * 4800), "audio/wav")}
    message = refused(client.post("/tag", files=clip), 500)
    assert message.startswith("unexpected ValueError: cannot decode my clip.wav (in upload)"), message
    assert staged and Path(staged[0]).parent.name not in message


# --- faults ----------------------------------------------------------------------------------------

def test_an_unreachable_graph_is_a_quick_503_that_says_what_to_check(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKG_")}
    env.update(AKG_HOME=str(tmp_path), AKG_URI=f"bolt://127.0.0.1:{free_port()}", AKG_PASSWORD="x")
    proc, url = start_service(env)
    try:
        assert httpx.get(url + "/health").status_code == 200  # the process itself is fine
        for path in ("/stats", "/entities/dog/facts", "/versions"):
            started = time.monotonic()
            r = httpx.get(url + path, timeout=10)
            assert time.monotonic() - started < 1.0
            assert "not reachable" in refused(r, 503) and "AKG_URI" in r.json()["error"]
        r = httpx.get(url + "/ready", timeout=10)
        assert r.status_code == 503 and not r.json()["ready"] and r.json()["problems"]
    finally:
        stop_service(proc)


def children(pid: int) -> set[int]:
    """The worker processes of a uvicorn supervisor (multiprocessing's spawned children, not its resource tracker)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.add(int(child))
    return found


def test_a_worker_that_dies_is_replaced(kg, token):
    """`--workers 2`: uvicorn's supervisor starts a new worker when one is killed; the service answers throughout."""
    proc, url = start_service(dict(os.environ), "--workers", "2", wait=120)
    try:
        deadline = time.monotonic() + 60
        while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        workers = children(proc.pid)
        assert len(workers) == 2
        victim = sorted(workers)[0]
        os.kill(victim, 9)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = children(proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.3)
        assert len(children(proc.pid)) == 2 and victim not in children(proc.pid)
        for _ in range(10):
            assert ok(httpx.get(url + "/stats", timeout=60)) == json.loads(json.dumps(kg.stats().to_dict()))
    finally:
        stop_service(proc)


@pytest.mark.embedded_only
def test_the_service_recovers_by_itself_when_its_embedded_server_is_killed(tmp_path):
    """A service with an embedded server of its own (started by the service's first connection): the
    server is killed; the next request is a quick 503 naming what happened; then the service opens a
    new connection (starting the server again, as every command does) and answers again by itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKG_")}
    env.update(AKG_HOME=str(tmp_path / "home"), AKG_BOLT_PORT="0", AKG_HTTP_PORT="0", AKG_SERVER_HEAP="256m")
    proc, url = start_service(env, wait=120)
    try:
        assert httpx.get(url + "/stats", timeout=60).status_code == 200
        status = subprocess.run([AKG, "db", "status", "--json"], env=env, capture_output=True, text=True)
        os.kill(json.loads(status.stdout)["pid"], 9)
        time.sleep(0.5)
        started = time.monotonic()
        r = httpx.get(url + "/stats", timeout=10)
        assert time.monotonic() - started < 1.0
        assert "stopped" in refused(r, 503)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            r = httpx.get(url + "/stats", timeout=90)
            if r.status_code == 200:
                break
            refused(r, 503)  # meanwhile: quick 503s, never a 500
            time.sleep(0.5)
        assert r.status_code == 200, r.text
    finally:
        stop_service(proc)
        subprocess.run([AKG, "db", "stop"], env=env, capture_output=True, timeout=60)


# --- the schema-driven fuzz run --------------------------------------------------------------------

def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(service):
    """Every operation of /openapi.json with generated requests: no 5xx, every response as documented.
    Writes go without a token (401s): the fuzzer does not curate the session's graph."""
    import schemathesis
    from hypothesis import HealthCheck, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    schema = schemathesis.openapi.from_url(f"{service.base_url}/openapi.json")
    failures, calls, operations = [], [], []
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/classify":
            continue  # multipart: covered by the upload tests above (each call would load CLAP)
        operations.append(operation.path)

        @settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), derandomize=True)
        @schemathesis_given(operation)
        def run(case):
            calls.append(case.path)
            case.call_and_validate(base_url=str(service.base_url), timeout=30,
                                   checks=[not_a_server_error, response_schema_conformance, status_code_conformance])

        try:
            run()
        except Exception as e:  # noqa: BLE001 - collected to report every operation that fails
            failures.append(f"{operation.method.upper()} {operation.path}: {str(e)[:600]}")
    assert not failures, "\n".join(failures)
    assert len(operations) >= 20 and set(calls) == set(operations) and len(calls) >= 3 * len(operations)
    assert time.monotonic() - started < 120


def schemathesis_given(operation):
    from hypothesis import given

    return given(case=operation.as_strategy())


def test_search_and_tag_equal_the_library(service, kg, clap_dir, server_env, tmp_path):
    folder = tmp_path / "collection"
    folder.mkdir()
    for i, freq in enumerate((300, 700, 1500)):
        sf.write(folder / f"t{i}.wav", tone(freq, 2), 48000)
    akg.index(folder, name="served", clap=clap_dir, settings=server_env)
    got = ok(service.post("/search", json={"text": "dog barking", "index": "served", "k": 2, "use_kge": False}))
    expected = akg.search(kg, "dog barking", index="served", clap=clap_dir, k=2, use_kge=False).to_dict()
    # the same up to the last digits: text embeddings may come from batches made up otherwise (padding)
    assert same_up_to(got, json.loads(json.dumps(expected, default=str))) and len(got["hits"]) == 2
    assert "no index named 'nope'" in refused(service.post("/search", json={"text": "dog", "index": "nope"}), 404)
    upload = {"clip": ("t1.wav", (folder / "t1.wav").read_bytes(), "audio/wav")}
    tags = ok(service.post("/tag", files=upload, data={"k": "3", "use_kge": "false"}))
    library = akg.tag(kg, folder / "t1.wav", clap=clap_dir, k=3, use_kge=False).to_dict()
    assert [r["entity"] for r in tags["rows"]] == [r["entity"] for r in library["rows"]]
    assert {r["clip"] for r in tags["rows"]} == {"t1.wav"}
    captions = "dog barking\nrain on a roof\na car horn\n"
    found = ok(service.post("/search/clip", files=upload, data={"captions": captions, "k": "2", "use_kge": "false"}))
    direct = akg.search(kg, clip=folder / "t1.wav", captions=captions.split("\n")[:3], clap=clap_dir, k=2, use_kge=False)
    assert same_up_to(found["hits"], json.loads(json.dumps(direct.to_dict()["hits"]))) and found["clip"] == "t1.wav"


def test_search_keeps_its_index_and_enricher_until_the_index_changes(service, kg, clap_dir, server_env, tmp_path):
    from akg import api

    folder = tmp_path / "collection"
    folder.mkdir()
    for i, freq in enumerate((300, 700)):
        sf.write(folder / f"t{i}.wav", tone(freq, 2), 48000)
    akg.index(folder, name="warm", clap=clap_dir, settings=server_env)
    key = (str(server_env.home), "warm")

    def hits(text: str) -> list[str]:  # through the service: its own process, its own caches
        return [h["clip"] for h in ok(service.post("/search", json={"text": text, "index": "warm", "k": 10}))["hits"]]

    assert sorted(hits("dog barking")) == sorted(str(folder / f"t{i}.wav") for i in range(2))
    # in this process, the library's: the second search loads neither the index nor the enricher again
    def enrichers() -> list:
        return list(kg._enrichers._answers.values())

    before = enrichers()  # (earlier tests' searches, with other settings)
    first = akg.search(kg, "dog barking", index="warm", clap=clap_dir, k=10)
    index, kept = api._INDEXES[key][1], enrichers()
    made = [e for e in kept if all(e is not b for b in before)]
    assert len(made) == 1 and made[0].predictor is not None  # with the KGE model
    second = akg.search(kg, "rain on a roof", index="warm", clap=clap_dir, k=10)
    assert api._INDEXES[key][1] is index and all(a is b for a, b in zip(enrichers(), kept, strict=True))
    assert first["clips"] == second["clips"] == 2
    # `akg index` again with a new clip: the very next search sees it, in the service and here
    sf.write(folder / "t2.wav", tone(1500, 2), 48000)
    akg.index(folder, name="warm", clap=clap_dir, settings=server_env)
    assert str(folder / "t2.wav") in hits("dog barking")
    third = akg.search(kg, "dog barking", index="warm", clap=clap_dir, k=10)
    assert third["clips"] == 3 and str(folder / "t2.wav") in [h["clip"] for h in third["hits"]]
    assert api._INDEXES[key][1] is not index and any(e is made[0] for e in enrichers())  # the graph is the same


def same_up_to(a, b, tol: float = 1e-5) -> bool:
    """Equal JSON, numbers within tol."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_up_to(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_up_to(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol
    return a == b
