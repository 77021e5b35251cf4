"""Test fixtures: one real embedded graph server for the whole session, on free loopback ports.

The server is started through the project's own `EmbeddedServer` (the code users run) under a
temporary AKG_HOME, and stopped at the end. Tests that need an empty graph use `empty_graph`.
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


def _dataset_dir() -> Path | None:
    """The AKG reference files: $AKG_DATASET_DIR, ./AKG_dataset (after `akg dataset fetch`), or ../shared."""
    for candidate in (os.environ.get("AKG_DATASET_DIR"), REPO / "AKG_dataset", REPO.parent / "shared" / "AKG_dataset"):
        if candidate and (Path(candidate) / "AKG_pruned.tsv").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def akg_dir() -> Path:
    found = _dataset_dir()
    if found is None:
        pytest.skip("the AKG reference files are not here: run `akg dataset fetch` (or set AKG_DATASET_DIR)")
    return found


@pytest.fixture(scope="session")
def shared_dir(akg_dir: Path) -> Path:
    """A folder laid out like ../shared (AKG_dataset/ and label_sets/), for `akg dataset fetch --from`."""
    return akg_dir.parent


@pytest.fixture(scope="session")
def server_env(tmp_path_factory):
    """Start the embedded server once; every test (and CliRunner) sees its AKG_HOME."""
    home = tmp_path_factory.mktemp("akg-home")
    saved = {k: os.environ.get(k) for k in ("AKG_HOME", "AKG_URI", "AKG_BOLT_PORT", "AKG_HTTP_PORT", "AKG_DATABASE")}
    os.environ.update(AKG_HOME=str(home), AKG_BOLT_PORT="0", AKG_HTTP_PORT="0")
    os.environ.pop("AKG_URI", None)
    os.environ.pop("AKG_DATABASE", None)
    settings = Settings.from_env()
    server = embedded_server(settings)
    server.start()
    yield settings
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
