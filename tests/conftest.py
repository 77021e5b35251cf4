"""Test fixtures: one real graph server for the whole session, on free loopback ports.

By default the embedded server, started through the project's own `EmbeddedServer` (the code users
run) under a temporary AKG_HOME, and stopped at the end. With AKG_TEST_SERVER=neo4j (`make
test-neo4j`) a Neo4j 5.26 Community server instead (tests/neo4j_server.py), reached through AKG_URI
as users reach theirs; only the tests that talk to a graph server run then (the others do not
depend on it), less those marked `embedded_only` (the embedded server's own lifecycle). Tests
marked `neo4j_only` (Neo4j Browser) run only then. Tests that need an empty graph use `empty_graph`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from akg.cli import cli
from akg.config import Settings
from akg.connect import connect, embedded_server

REPO = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("AKG_TEST_SERVER", "embedded")
if SERVER not in ("embedded", "neo4j"):
    raise pytest.UsageError(f"AKG_TEST_SERVER={SERVER!r}: use embedded (the default) or neo4j")
SERVER_VARS = ("AKG_HOME", "AKG_URI", "AKG_USER", "AKG_PASSWORD", "AKG_DATABASE", "AKG_BOLT_PORT", "AKG_HTTP_PORT",
               "AKG_READ_USER", "AKG_READ_PASSWORD")


def pytest_collection_modifyitems(config, items):
    """Under Neo4j, the tests that talk to a graph server; under the embedded server, all but Neo4j's own."""
    def runs(item) -> bool:
        if SERVER == "neo4j":
            return "server_env" in item.fixturenames and item.get_closest_marker("embedded_only") is None
        return item.get_closest_marker("neo4j_only") is None

    deselected = [item for item in items if not runs(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if runs(item)]


def _dataset_dir() -> Path | None:
    """The AKG reference files: $AKG_DATASET_DIR, ../shared beside the checkout, or the user's data folder
    (where `akg dataset fetch` put them: AKG_HOME/data or $AKG_DATA_DIR, read before the tests replace
    AKG_HOME with their own)."""
    try:
        fetched = Settings.from_env().data_dir
    except Exception:  # broken user settings: the tests set their own; the fetched copy is just not found
        fetched = None
    if os.environ.get("AKG_TEST_WITHOUT_AKG"):  # what runs on a machine without the AKG (the others skip)
        return None
    for candidate in (os.environ.get("AKG_DATASET_DIR"), REPO.parent / "shared" / "AKG_dataset", fetched):
        if candidate and (Path(candidate) / "AKG_pruned.tsv").is_file():
            return Path(candidate)
    return None


DATASET_DIR = _dataset_dir()  # at import, before any fixture changes the environment


@pytest.fixture(scope="session")
def akg_dir() -> Path:
    if DATASET_DIR is None:
        pytest.skip("the AKG reference files are not here: run `akg dataset fetch` (or set AKG_DATASET_DIR)")
    return DATASET_DIR


@pytest.fixture(scope="session")
def shared_dir(akg_dir: Path, tmp_path_factory) -> Path:
    """A folder laid out like ../shared (AKG_dataset/ and label_sets/), for `akg dataset fetch --from`.
    The data folder of `akg dataset fetch` holds label_sets/ inside instead: linked into that layout."""
    if (akg_dir.parent / "label_sets").is_dir():
        return akg_dir.parent
    root = tmp_path_factory.mktemp("shared-layout")
    (root / "AKG_dataset").symlink_to(akg_dir)
    (root / "label_sets").symlink_to(akg_dir / "label_sets")
    return root


@pytest.fixture(scope="session")
def mini_dir() -> Path:
    """The small synthetic graph bundled with the tests (made by tests/data/make_mini.py; see
    tests/data/README.md): mini_akg_pruned.tsv (training) and mini_akg_test.tsv, in the AKG's TSV
    layout. For tests that need some graph rather than the AKG's own figures; always present."""
    return REPO / "tests" / "data"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under Neo4j no test may skip: a skip there would hide a difference between the servers."""
    outcome = yield
    report = outcome.get_result()
    if SERVER == "neo4j" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"a test skipped under AKG_TEST_SERVER=neo4j, where none may: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if SERVER == "neo4j" and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"a test module skipped under AKG_TEST_SERVER=neo4j, where none may: {report.longrepr}"


@pytest.fixture(scope="session")
def clap_dir(tmp_path_factory) -> Path:
    """The small real CLAP model the tests build (tests/tiny_clap.py), once for the session: every test
    file that needs a CLAP shares it (no test writes into it)."""
    from tiny_clap import build_tiny_clap

    return build_tiny_clap(tmp_path_factory.mktemp("clap") / "tiny-clap")


@pytest.fixture(scope="session")
def graph_server(tmp_path_factory):
    """The session's server: ("embedded", EmbeddedServer) or ("neo4j", tests.neo4j_server.Neo4jServer)."""
    if SERVER == "neo4j":
        from neo4j_server import start

        server = start(tmp_path_factory.mktemp("neo4j"))
        yield "neo4j", server
        server.stop()
        return
    yield "embedded", None


@pytest.fixture(scope="session")
def server_env(tmp_path_factory, graph_server):
    """Start the server once; every test (and CliRunner) sees its settings (AKG_HOME, and AKG_URI for Neo4j)."""
    kind, neo4j = graph_server
    home = tmp_path_factory.mktemp("akg-home")
    saved = {k: os.environ.get(k) for k in SERVER_VARS}
    for k in SERVER_VARS:
        os.environ.pop(k, None)
    os.environ["AKG_HOME"] = str(home)
    if kind == "neo4j":
        os.environ.update(neo4j.env)
    else:
        os.environ.update(AKG_BOLT_PORT="0", AKG_HTTP_PORT="0")
    settings = Settings.from_env()
    server = None if kind == "neo4j" else embedded_server(settings)
    if server:
        server.start()
    yield settings
    if server:
        server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def graph(server_env):
    with connect(server_env) as g:
        yield g


@pytest.fixture(scope="session")
def reader(server_env):
    """The read-only connection people's Cypher runs on (akg.connect.connect_read_only)."""
    from akg.connect import connect_read_only

    with connect_read_only(server_env) as g:
        yield g


@pytest.fixture
def empty_graph(graph):
    """The session's graph with every entity and triple removed (the schema stays)."""
    from helpers import wipe

    wipe(graph)
    return graph


@pytest.fixture
def run_cli(server_env):
    """Invoke `akg ...` in-process: returns the click Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return run
