"""The embedded server's lifecycle, through `akg db` and the library, in a home of its own."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from akg.cli import cli
from akg.config import Settings
from akg.connect import connect, embedded_server
from akg.errors import ConfigError
from helpers import LOOPBACK, listening_addresses

pytestmark = pytest.mark.embedded_only  # the embedded server's own lifecycle, in homes of its own


@pytest.fixture
def own_home(tmp_path, monkeypatch):
    """A second embedded server home, separate from the session's; stopped afterwards."""
    home = tmp_path / "home"
    monkeypatch.setenv("AKG_HOME", str(home))
    monkeypatch.setenv("AKG_BOLT_PORT", "0")
    monkeypatch.setenv("AKG_HTTP_PORT", "0")
    monkeypatch.delenv("AKG_URI", raising=False)
    yield home
    embedded_server(Settings.from_env()).stop()


def akg(*args):
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res




def test_start_status_stop_and_data_survives(own_home, akg_dir):
    assert "not running" in akg("db", "status").stdout
    res = akg("db", "start", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["running"] and not info["already_running"]

    # Secrets: generated, private, and not on the process list.
    creds = own_home / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert stat.S_IMODE((own_home / "server.args").stat().st_mode) == 0o600
    password = json.loads(creds.read_text())["password"]
    assert len(password) >= 24
    assert password.encode() not in Path(f"/proc/{info['pid']}/cmdline").read_bytes()

    # Only loopback listens.
    state = embedded_server(Settings.from_env()).status()
    for port in (state.bolt_port, state.http_port):
        addrs = listening_addresses(port)
        assert addrs and addrs <= LOOPBACK, (port, addrs)

    # A second command finds the running server instead of starting another.
    again = json.loads(akg("db", "start", "--json").stdout)
    assert again["already_running"] and again["pid"] == info["pid"]
    res = akg("ingest", str(akg_dir / "AKG_test.tsv"))
    assert res.exit_code == 0, res.output
    assert embedded_server(Settings.from_env()).status().pid == info["pid"]

    assert "stopped" in akg("db", "stop").stdout
    assert json.loads(akg("db", "status", "--json").stdout)["running"] is False
    assert not Path(f"/proc/{info['pid']}").exists() or b"server.args" not in Path(f"/proc/{info['pid']}/cmdline").read_bytes()

    # Any command starts it again, and the data is still there.
    stats = json.loads(akg("stats", "--json").stdout)
    assert stats["triples"] == 2039
    assert json.loads(akg("db", "status", "--json").stdout)["running"] is True


def test_stale_state_file_is_cleaned_up(own_home):
    server = embedded_server(Settings.from_env())
    own_home.mkdir(parents=True)
    server.state_file.write_text(json.dumps({"pid": 999999, "bolt_port": 1, "http_port": 2,
                                             "started_at": "x", "root": str(server.root)}))
    assert server.status() is None          # a dead pid is not a running server
    assert server.stop() is False           # stop (and start) clean the stale file up, under the lock
    assert not server.state_file.exists()


def test_credentials_readable_by_others_are_refused(own_home):
    server = embedded_server(Settings.from_env())
    server.credentials()
    os.chmod(server.credentials_file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        server.credentials()


def test_external_server_settings_need_a_password(monkeypatch):
    monkeypatch.setenv("AKG_URI", "bolt://127.0.0.1:7687")
    monkeypatch.delenv("AKG_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="AKG_PASSWORD"):
        Settings.from_env()
    monkeypatch.setenv("AKG_URI", "http://example")
    monkeypatch.setenv("AKG_PASSWORD", "x")
    with pytest.raises(ConfigError, match="Bolt URI"):
        Settings.from_env()
    monkeypatch.setenv("AKG_URI", "bolt://127.0.0.1:7687")
    res = akg("db", "status")
    assert res.exit_code != 0 and "managed outside akg" in res.output


def test_unreachable_external_server_is_a_clear_error(monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port with nothing behind it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AKG_URI", f"bolt://127.0.0.1:{port}")
    monkeypatch.setenv("AKG_PASSWORD", "irrelevant")
    res = akg("stats")
    assert res.exit_code == 1
    assert "not reachable" in res.output and "Traceback" not in res.output


def test_server_stopped_mid_ingest_then_rerun_completes(own_home, akg_dir):
    server = embedded_server(Settings.from_env())
    server.start()
    with connect() as g:
        count = lambda: g.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
        proc = subprocess.Popen([sys.executable, "-c", "from akg.cli import main; main()", "ingest",
                                 str(akg_dir / "AKG_raw.tsv"), "--batch-size", "300"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while count() < 3000 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the ingest finished before the server could be stopped"
    server.stop()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "Error:" in err and "Traceback" not in err

    with connect() as g:  # starts the server again
        part = g.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
        assert 0 < part < 49215
        assert g.read("MATCH ()-[r]->() WHERE r.status IS NULL OR r.sources IS NULL RETURN count(r) AS n")[0]["n"] == 0
    res = akg("ingest", str(akg_dir / "AKG_raw.tsv"), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["triples_created"] + summary["triples_unchanged"] == 49215
    assert json.loads(akg("stats", "--json").stdout)["triples"] == 49215


def test_a_killed_server_gives_one_short_line_quickly(own_home, akg_dir):
    """kill -9 of the embedded server under a running ingest: the ingest ends within seconds with one
    line naming the server and what to do, not half a minute of driver retries."""
    server = embedded_server(Settings.from_env())
    state = server.start()
    with connect() as g:
        proc = subprocess.Popen([sys.executable, "-c", "from akg.cli import main; main()", "ingest",
                                 str(akg_dir / "AKG_raw.tsv"), "--batch-size", "300"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while g.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"] < 3000:
            assert proc.poll() is None and time.monotonic() < deadline, "the ingest ended before the server was killed"
            time.sleep(0.05)
    os.kill(state.pid, 9)
    killed = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - killed < 10
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), err
    assert "not reachable" in lines[0] and "akg db start" in lines[0] and str(own_home) in lines[0]


def test_an_external_server_that_is_gone_is_named(monkeypatch, tmp_path):
    port = __import__("socket").socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    monkeypatch.setenv("AKG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AKG_URI", f"bolt://127.0.0.1:{free}")
    monkeypatch.setenv("AKG_PASSWORD", "irrelevant")
    res = akg("stats")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert f"AKG_URI=bolt://127.0.0.1:{free}" in res.output and "running and reachable" in res.output


def test_first_commands_racing_on_a_fresh_home_all_succeed(own_home):
    """`akg stats & akg stats & akg curate list & akg query` on a new AKG_HOME: one starts the server and
    applies the migrations, the others wait their turn; none fails."""
    commands = [["stats"], ["stats"], ["curate", "list"], ["query", "RETURN 1 AS one"]]
    procs = [subprocess.Popen([sys.executable, "-c", "from akg.cli import main; main()", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for args, (code, out, err) in zip(commands, results):
        assert code == 0, (args, err)
        assert "Traceback" not in err
    from akg.migrations import all_migrations

    with connect() as g:  # each migration recorded exactly once
        assert sorted(r["id"] for r in g.read("MATCH (m:Migration) RETURN m.id AS id")) == [m.id for m in all_migrations()]
