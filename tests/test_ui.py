"""The explorer (`akg ui`): every page run by Streamlit's AppTest against the real embedded server,
with the AKG (pruned + test) ingested, a small trained KGE model and a tiny real CLAP model."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from akg_loader.ingest import ingest
from akg_loader.stats import graph_stats
from akg_loader.tsv import read_file

streamlit = pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
UI = REPO / "ui"
TIMEOUT = 120  # seconds per script run: the first run of a page imports torch, pykeen and transformers


def page(name: str) -> AppTest:
    return AppTest.from_file(str(UI / "views" / f"{name}.py"), default_timeout=TIMEOUT)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def component_args(at: AppTest) -> list[dict]:
    """The JSON arguments of the page's graph components (what the browser would draw)."""
    return [json.loads(c.proto.json_args) for c in at.get("component_instance")]


def tone(freq: float, seconds: float, sr: int = 48000) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return 0.3 * np.sin(2 * np.pi * freq * t)


def wav_bytes(freq: float = 440.0, seconds: float = 1.5, sr: int = 48000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(freq, seconds, sr), sr, format="WAV")
    return buf.getvalue()


@pytest.fixture(scope="module")
def ui_graph(graph, akg_dir, server_env, shared_dir):
    """The AKG (pruned + test) in the graph, a small evaluated RotatE as the latest model, label sets."""
    from helpers import load_akg_with_small_kge

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AKG_LABEL_SETS_DIR", str(shared_dir / "label_sets"))
        for var in ("AKG_CLAP_MODEL", "AKG_CLAP_CHECKPOINT", "AKG_AUDIO_DIR"):
            mp.delenv(var, raising=False)
        root = load_akg_with_small_kge(graph, akg_dir, server_env.home, name="ui-kge", evaluate_after=True)
        yield graph
        from ui import resources

        streamlit.cache_data.clear()
        streamlit.cache_resource.clear()
        resources.forget_graph()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_results():
    """Cached query results live for 30 s in the process: each test starts without them."""
    streamlit.cache_data.clear()
    yield


# --- the app and its pages ---------------------------------------------------------------------

def view_titles() -> dict[str, str]:
    """Every page file under ui/views and the heading it sets itself (its `st.title("...")`), read from
    the files' source: the list the app's navigation must cover, found without asking the app."""
    import ast

    found = {}
    for path in sorted((UI / "views").glob("*.py")):
        if path.name.startswith("_"):
            continue
        calls = [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "title"
                 and isinstance(node.func.value, ast.Name) and node.func.value.id == "st"]
        assert len(calls) == 1 and isinstance(calls[0].args[0], ast.Constant), f"{path.name}: one st.title(\"...\")"
        found[f"views/{path.name}"] = calls[0].args[0].value
    return found


def test_app_navigates_to_every_page(ui_graph):
    pages = view_titles()
    assert len(pages) >= 6 and "views/curate.py" in pages, pages
    at = AppTest.from_file(str(UI / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.title[0].value == pages["views/overview.py"]  # the default page
    for path, title in pages.items():
        at.switch_page(path).run()  # a page missing from the app's navigation is refused here
        assert not at.exception, (path, at.exception)
        assert [t.value for t in at.title] == [title], path


def test_overview_shows_the_graphs_numbers(ui_graph):
    stats = graph_stats(ui_graph)
    at = page("overview").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Entities"] == f"{stats['entities']:,}"
    assert metrics["Triples"] == f"{stats['triples']:,}" == "20,387"  # AKG_pruned + AKG_test
    assert metrics["Accepted"] == f"{stats['by_status']['accepted']:,}"
    assert metrics["Rejected"] == "0"
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert len(charts) == 3  # relations, curation status, label coverage
    assert [c["encoding"]["y"]["field"] for c in charts] == ["relation", "split", "dataset"]
    frames = [d.value for d in at.dataframe]
    coverage = next(f for f in frames if "covered" in f.columns)
    esc50 = coverage.set_index("key").loc["esc50"]
    assert esc50["labels"] == 50 and 0 < esc50["covered"] <= 50
    assert len(coverage) >= 29
    status = next(f for f in frames if "status" in f.columns)
    assert status["triples"].sum() == stats["triples"]


def test_entity_explorer_search_graph_click_and_facts(ui_graph):
    from akg_loader.explore import facts

    at = page("entities").run()
    assert not at.exception, at.exception
    at.text_input(key="entity_query").input("dog").run()
    assert not at.exception, at.exception
    assert at.selectbox[0].value == "dog"
    assert all("dog" in o for o in at.selectbox[0].options)
    table = at.dataframe[0].value
    expected = facts(ui_graph, "dog")
    assert len(table) == len(expected) > 0
    assert set(table.columns) >= {"relation", "entity", "status", "split", "sources"}
    assert set(table["status"]) == {"accepted"} and table["sources"].str.contains("pruned|test").all()

    (args,) = component_args(at)
    nodes = {n["data"]["id"]: n["data"] for n in args["elements"]["nodes"]}
    edges = args["elements"]["edges"]
    assert nodes["dog"]["label"] == "center" and len(nodes) > 1 and edges
    assert all({"source", "target", "relation", "status"} <= set(e["data"]) for e in edges)
    assert {ev["selector"] for ev in args["events"]} == {"node"}

    # a click on a node (what the component reports) moves the explorer there
    other = next(n for n in nodes if n != "dog")
    at.session_state["entity_graph"] = {"action": "open_entity", "timestamp": 1,
                                        "data": {"type": "tap", "target_id": other, "target_group": "nodes"}}
    at.run()
    assert not at.exception, at.exception
    assert at.text_input(key="entity_query").value == other
    assert at.selectbox[0].value == other
    (args,) = component_args(at)
    assert {n["data"]["id"]: n["data"]["label"] for n in args["elements"]["nodes"]}[other] == "center"
    at.run()  # the same event again is not a new click
    assert at.selectbox[0].value == other

    # depth 2 and a relation filter
    at.text_input(key="entity_query").input("dog barking").run()
    at.radio[0].set_value(2).run()
    assert "has parent" in at.multiselect[0].options
    at.multiselect[0].select("has parent").run()
    assert not at.exception, at.exception
    (args,) = component_args(at)
    edges = args["elements"]["edges"]
    assert edges and {e["data"]["relation"] for e in edges} == {"has parent"}
    assert any("dog barking" not in (e["data"]["source"], e["data"]["target"]) for e in edges)  # two hops
    # the node limit holds
    at.number_input[0].set_value(10).run()
    (args,) = component_args(at)
    assert len(args["elements"]["nodes"]) <= 10

    at.text_input(key="entity_query").input("no such entity at all").run()
    assert "No entity name contains" in texts(at.warning)


def test_console_runs_saved_queries_and_refuses_writes(ui_graph):
    from akg import queries

    at = page("console").run()
    assert not at.exception, at.exception
    offered = [o.split(" — ")[0] for o in at.selectbox(key="console_saved").options]
    assert {"entity_neighbourhood", "entity_search", "relation_histogram", "known_tails"} <= set(offered)
    assert not {"ingest_create_entities", "ingest_create_triples", "migration_record"} & set(offered)  # the writes
    assert at.selectbox(key="console_saved").value == "entity_neighbourhood"
    assert at.text_area(key="console_text").value == queries.get("entity_neighbourhood").text

    # a saved query with an edited parameter
    at.text_area(key="console_params").input('{"name": "cat", "limit": 5}')
    at.button[0].click().run()
    assert not at.exception, at.exception
    rows = at.dataframe[0].value
    assert len(rows) == 5 and set(rows.columns) >= {"direction", "relation", "other"}
    assert "5 row(s)" in texts(at.caption)

    # paths come back as a graph too
    at.selectbox(key="console_saved").select("entity_neighbourhood_graph").run()
    assert json.loads(at.text_area(key="console_params").value) == {"name": "dog", "limit": 50}
    at.button[0].click().run()
    assert not at.exception, at.exception
    (args,) = component_args(at)
    assert "dog" in {n["data"]["id"] for n in args["elements"]["nodes"]} and len(args["elements"]["edges"]) == 50

    # a query that needs a relation: the type comes from the allowlist
    at.selectbox(key="console_saved").select("known_tails").run()
    assert "`HAS_PARENT`" in at.text_area(key="console_text").value
    at.selectbox(key="console_relation").select("occurs in").run()
    assert "`OCCURS_IN`" in at.text_area(key="console_text").value

    # the row limit
    at.selectbox(key="console_saved").select("entity_neighbourhood").run()
    at.text_area(key="console_params").input('{"name": "dog", "limit": 500}')
    at.number_input[1].set_value(3)
    at.button[0].click().run()
    assert len(at.dataframe[0].value) == 3 and "truncated" in texts(at.caption)

    # writes are refused, plainly, and change nothing
    at.selectbox(key="console_saved").select("(your own query)").run()
    at.text_area(key="console_text").input("CREATE (n:Entity {name: 'ui-written'}) RETURN n")
    at.text_area(key="console_params").input("{}")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "read-only" in texts(at.error) and "unchanged" in texts(at.error)
    assert ui_graph.read("MATCH (e:Entity {name: 'ui-written'}) RETURN e") == []

    # a timeout is a message (the gate abandons the query; here it is made to time out)
    from akg import readonly
    from akg.errors import QueryTimeout

    def too_slow(*args, **kwargs):
        raise QueryTimeout("the query ran past its 1 s limit and was abandoned (nothing was changed)")

    real = readonly.run_read_only
    readonly.run_read_only = too_slow
    try:
        at.text_area(key="console_text").input("MATCH (e:Entity) RETURN count(e) AS n")
        at.button[0].click().run()
    finally:
        readonly.run_read_only = real
    assert not at.exception, at.exception
    assert "ran past its 1 s limit" in texts(at.error)

    # bad parameters and bad Cypher are messages too
    at.text_area(key="console_text").input("MATCH (e:Entity {name: $name}) RETURN e.name AS name")
    at.text_area(key="console_params").input("{not json")
    at.button[0].click().run()
    assert "not valid JSON" in texts(at.error)
    at.text_area(key="console_text").input("MATCH (e:Entity RETURN e")
    at.text_area(key="console_params").input("{}")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.error and "Traceback" not in texts(at.error)


def test_predictions_known_predicted_model_card_and_staleness(ui_graph, tmp_path):
    from kge.workflows import known_tails

    at = page("predictions").run()
    assert not at.exception, at.exception
    assert at.selectbox[0].value == "ui-kge"
    assert not at.warning
    known = at.dataframe[0].value
    assert sorted(known["tail"]) == sorted(known_tails(ui_graph, "dog", "has parent")) and len(known) > 0
    predicted = at.dataframe[1].value
    assert len(predicted) == 10 and set(predicted["status"]) <= {"known", "predicted"}
    assert list(predicted["score"]) == sorted(predicted["score"], reverse=True)
    card = texts(at.subheader)
    assert "Model card: ui-kge" in card
    metrics = at.dataframe[2].value
    assert list(metrics["test triples"]) == ["known", "all"] and metrics["MRR"].between(0, 1).all()
    per_relation = at.dataframe[3].value  # where the model is weak: each relation, the weakest first
    known = per_relation["MRR known"].dropna()
    assert "Per relation" in " ".join(m.value for m in at.markdown) and list(known) == sorted(known)
    assert per_relation["MRR all"].between(0, 1).all() and per_relation["relation"].is_unique
    assert at.image[0].captions == ["training loss per epoch"]
    assert "Up to date" in texts(at.caption)

    # unknown names are messages with suggestions
    at.text_input[0].input("dgo").run()
    assert "unknown entity 'dgo'" in texts(at.error) and "Traceback" not in texts(at.error)
    assert "Model card: ui-kge" in texts(at.subheader)  # the rest of the page is still there

    # a new training triple makes the model stale
    fact = tmp_path / "extra_pruned.tsv"
    fact.write_text("label_name\thead\trelation\ttail\tresponse\ndog\tdog\thas parent\tui test parent\tYes.\n")
    ingest(ui_graph, [read_file(fact)])
    try:
        streamlit.cache_data.clear()
        at.text_input[0].input("dog").run()
        assert not at.exception, at.exception
        assert "has changed since model ui-kge was trained" in texts(at.warning)
        assert "ui test parent" in set(at.dataframe[0].value["tail"])
    finally:
        ui_graph.write("MATCH (e:Entity {name: 'ui test parent'}) DETACH DELETE e")


def test_audio_without_a_model_says_how_to_configure_one(ui_graph, tmp_path, monkeypatch):
    monkeypatch.delenv("AKG_CLAP_MODEL", raising=False)
    monkeypatch.delenv("AKG_CLAP_CHECKPOINT", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    at = page("audio").run()
    assert not at.exception, at.exception
    message = texts(at.warning)
    assert "No CLAP model is configured" in message and "AKG_CLAP_MODEL" in message
    assert not at.file_uploader and not at.selectbox  # no controls without a model


def test_audio_pick_from_folder_and_upload(ui_graph, clap_dir, tmp_path, monkeypatch, run_cli):
    clips = tmp_path / "clips"
    (clips / "street").mkdir(parents=True)
    sf.write(clips / "street" / "horn.wav", tone(880, 2.0), 48000)
    (clips / "notes.txt").write_text("not audio")
    monkeypatch.setenv("AKG_CLAP_MODEL", str(clap_dir))
    monkeypatch.setenv("AKG_AUDIO_DIR", str(clips))

    at = page("audio").run()
    assert not at.exception, at.exception
    assert at.selectbox[0].value == "esc50"
    at.number_input[1].set_value(5)
    at.radio[0].set_value(at.radio[0].options[1]).run()  # pick one from AKG_AUDIO_DIR
    assert not at.exception, at.exception
    assert at.selectbox[-1].options == [str(Path("street") / "horn.wav")]
    baseline, refined = at.dataframe[0].value, at.dataframe[1].value
    # the page shows what `akg classify` answers for the same clip and settings (one library function)
    cli = json.loads(run_cli("classify", str(clips / "street" / "horn.wav"), "--labels", "esc50", "--top-k", "5",
                             "--json").stdout)["clips"][0]
    assert list(baseline["label"]) == [b["label"] for b in cli["baseline"]]
    assert list(baseline["score"]) == [round(b["score"], 4) for b in cli["baseline"]]
    assert list(refined["label"]) == [r["label"] for r in cli["refined"]]
    assert list(refined["baseline rank"]) == [r["baseline_rank"] for r in cli["refined"]]
    assert list(refined["change"]) == [round(r["change"], 4) for r in cli["refined"]]
    assert len(at.expander) == 5 and "prompts" in at.expander[0].label
    kinds = {k for frame in at.dataframe[2:] for k in frame.value["kind"]}
    assert kinds <= {"known", "predicted"} and kinds

    # an upload: a good clip gives the tables, a bad one a message
    at.radio[0].set_value(at.radio[0].options[0]).run()
    at.file_uploader[0].set_value(("clip.wav", wav_bytes(300), "audio/wav")).run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == 5
    at.file_uploader[0].set_value(("broken.wav", b"RIFF0000WAVEjunk" * 8, "audio/wav")).run()
    assert not at.exception, at.exception
    assert "broken.wav" in texts(at.error) and "corrupt or not an audio file" in texts(at.error)
    assert not at.dataframe
    # (another type never reaches the page: the uploader refuses it, in the browser and on the server)
    assert at.file_uploader[0].allowed_type == [".wav", ".flac", ".ogg", ".mp3"]


def test_audio_page_shows_what_an_audio_grounded_model_holds_for_the_clip(ui_graph, clap_dir, tmp_path, monkeypatch,
                                                                           run_cli, server_env):
    examples = tmp_path / "examples"
    examples.mkdir()
    sf.write(examples / "dog-1.wav", tone(700, 1.0), 48000)
    sf.write(examples / "rain-1.wav", tone(90, 1.0), 48000)
    (examples / "esc50.csv").write_text("filename,fold,target,category\ndog-1.wav,1,0,dog\nrain-1.wav,1,1,rain\n")
    query = tmp_path / "clips" / "bark.wav"
    query.parent.mkdir()
    sf.write(query, tone(650, 1.5), 48000)
    monkeypatch.setenv("AKG_CLAP_MODEL", str(clap_dir))
    monkeypatch.setenv("AKG_AUDIO_DIR", str(query.parent))
    r = run_cli("train", "--grounded", "text,audio", "--audio-examples", str(examples), "--meta",
                str(examples / "esc50.csv"), "--dim", "8", "--epochs", "1", "--negatives", "8", "--no-evaluate",
                "--name", "ui-audio")
    model = Path(server_env.home) / "models" / "ui-audio"
    try:
        assert r.exit_code == 0, r.output
        streamlit.cache_data.clear()
        streamlit.cache_resource.clear()
        at = page("audio").run()
        at.number_input[1].set_value(5)
        at.radio[0].set_value(at.radio[0].options[1]).run()
        assert not at.exception, at.exception
        assert "What the AKG holds for this sound (model ui-audio)" in texts(at.subheader)
        assert at.selectbox[-1].value == "has parent"
        cli = json.loads(run_cli("predict", "--clip", str(query), "has parent", "-k", "5", "--json").output)
        assert cli["model"] == "ui-audio"
        table = at.dataframe[-1].value
        assert list(table["tail"]) == [t["tail"] for t in cli["tails"]]
        assert list(table["score"]) == [round(t["score"], 4) for t in cli["tails"]]
    finally:
        shutil.rmtree(model, ignore_errors=True)  # the latest model of the other pages' tests stays ui-kge
        streamlit.cache_data.clear()
        streamlit.cache_resource.clear()


def test_upload_handler_checks_type_size_and_content(tmp_path):
    from akg.audio import AudioError
    from ui.uploads import list_clips, stage_upload

    good = stage_upload("my clip.wav", wav_bytes(), tmp_path / "staged")
    assert good.is_file() and good.suffix == ".wav" and sf.info(str(good)).samplerate == 48000
    flac = io.BytesIO()
    sf.write(flac, tone(200, 1.0, 22050), 22050, format="FLAC")
    assert stage_upload("../../x/clip.FLAC", flac.getvalue(), tmp_path / "staged").parent == tmp_path / "staged"
    for name, data, message in [
        ("clip.exe", b"MZ\x90\x00", "unsupported file type ('.exe')"),
        ("clip", wav_bytes(), "unsupported file type (no extension)"),
        ("empty.wav", b"", "empty file"),
        ("big.wav", wav_bytes(seconds=2.0), "the upload limit is"),
        ("corrupt.flac", b"fLaC" + bytes(range(256)) * 4, "corrupt or not an audio file"),
        ("text.mp3", b"just some text, not audio at all" * 10, "corrupt or not an audio file"),
    ]:
        with pytest.raises(AudioError) as e:
            stage_upload(name, data, tmp_path / "staged", max_bytes=100_000)
        assert message in str(e.value) and str(e.value).startswith(Path(name).name), str(e.value)
    assert len(list((tmp_path / "staged").iterdir())) == 2  # refused files are not left behind
    (tmp_path / "lib" / ".hidden").mkdir(parents=True)
    sf.write(tmp_path / "lib" / "b.flac", tone(200, 0.5), 48000, format="FLAC")
    sf.write(tmp_path / "lib" / "a.wav", tone(200, 0.5), 48000)
    (tmp_path / "lib" / "readme.md").write_text("x")
    sf.write(tmp_path / "lib" / ".hidden" / "c.wav", tone(200, 0.5), 48000)
    assert [p.name for p in list_clips(tmp_path / "lib")] == ["a.wav", "b.flac"]


# --- failure modes ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["overview", "entities", "console", "predictions", "audio"])
def test_every_page_says_plainly_when_the_graph_is_unreachable(server_env, monkeypatch, name):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AKG_URI", f"bolt://127.0.0.1:{port}")
    monkeypatch.setenv("AKG_PASSWORD", "x")
    at = page(name).run()
    assert not at.exception, at.exception
    assert "The graph is not reachable" in texts(at.error)
    assert "AKG_URI" in texts(at.info)


def test_a_lost_connection_is_a_message_and_the_next_run_reconnects(ui_graph, monkeypatch):
    import akg_loader.stats
    from akg.errors import GraphUnavailable
    from ui import resources

    at = page("overview").run()
    assert not at.exception and not at.error
    assert resources._opened  # the cached connection

    def gone(graph):
        raise GraphUnavailable("count_entities: the graph server is not reachable (connection refused)")

    monkeypatch.setattr(akg_loader.stats, "graph_stats", gone)
    streamlit.cache_data.clear()  # (else the counts come from the cache)
    at.run()
    assert not at.exception, at.exception
    assert "The graph is not reachable" in texts(at.error) and "connection refused" in texts(at.error)
    assert not resources._opened  # dropped and closed
    monkeypatch.undo()
    streamlit.cache_data.clear()
    at.run()
    assert not at.exception and not at.error
    assert at.metric[1].value == "20,387" and resources._opened


def test_no_cypher_in_ui():
    cypher = re.compile(r"\b(MATCH|MERGE|CREATE|DETACH DELETE|RETURN)\b\s*[(\w]")
    for path in UI.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not cypher.search(line), f"{path.relative_to(REPO)}:{n}: Cypher belongs in cypher/: {line.strip()}"


def test_akg_ui_serves_the_app_on_loopback(server_env, tmp_path):
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    akg = Path(sys.executable).parent / "akg"
    proc = subprocess.Popen([str(akg), "ui", "--port", str(port), "--no-browser"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "HOME": str(tmp_path)})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not any(f"AKG explorer: {url}" in line for line in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"{url}/", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        if shutil.which("ss"):  # listening on loopback only
            bound = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
            assert f"127.0.0.1:{port}" in bound and f"0.0.0.0:{port}" not in bound and "*:" not in bound, bound
    finally:
        proc.terminate()  # stops the Streamlit server too
        proc.wait(timeout=20)
        reader.join(timeout=5)
    assert proc.returncode == 0, "".join(lines)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)


def test_the_explorer_keeps_working_beside_the_service(ui_graph, server_env):
    """`akg serve` and the explorer on one AKG_HOME and graph server: both answer, and a decision
    made through the API shows on the explorer's next run (as one made in the explorer shows in the
    API's next prediction: tests/test_serve.py)."""
    import httpx
    from helpers import start_service, stop_service

    from kge.workflows import known_tails
    from service import tokens

    token = tokens.add(server_env.home, "api-curator")
    proc, url = start_service(dict(os.environ))
    try:
        head = ui_graph.read("MATCH (h:Entity)-[r:HAS_PARENT]->() WHERE r.status = 'accepted' WITH h, count(r) AS n "
                             "WHERE n >= 2 AND n <= 5 RETURN h.name AS head ORDER BY head LIMIT 1")[0]["head"]
        tails = sorted(known_tails(ui_graph, head, "has parent"))
        at = page("predictions").run()
        at.text_input[0].input(head).run()
        assert not at.exception, at.exception
        assert sorted(at.dataframe[0].value["tail"]) == tails
        got = httpx.post(url + "/predict", json={"head": head, "relation": "has parent", "k": 10}, timeout=60)
        assert got.status_code == 200, got.text
        marked = {r["tail"] for r in got.json()["rows"] if r["status"] == "known"}
        assert marked <= set(tails)

        decided = httpx.post(url + "/curation/reject", headers={"Authorization": f"Bearer {token}"}, timeout=60,
                             json={"triples": [{"head": head, "relation": "has parent", "tail": tails[0]}]})
        assert decided.status_code == 200, decided.text
        try:
            streamlit.cache_data.clear()  # the explorer keeps query results 30 s; a new session would not have them
            at.text_input[0].input(head).run()
            assert not at.exception, at.exception
            assert sorted(at.dataframe[0].value["tail"]) == tails[1:]
            again = httpx.post(url + "/predict", json={"head": head, "relation": "has parent", "k": 10}, timeout=60)
            assert {r["tail"] for r in again.json()["rows"] if r["status"] == "known"} == marked - {tails[0]}
            at = page("overview").run()
            assert not at.exception, at.exception
            assert httpx.get(url + "/ready", timeout=10).status_code == 200
        finally:
            ui_graph.write("MATCH (:Entity {name: $h})-[r]->(:Entity {name: $t}) WHERE r.relation = 'has parent' "
                           "SET r.status = 'accepted'", {"h": head, "t": tails[0]})
    finally:
        stop_service(proc)
        tokens.remove(server_env.home, "api-curator")
