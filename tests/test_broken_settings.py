"""Broken settings, credentials and input files: each is one line naming the thing and the problem,
exit status 1, no traceback, and nothing started or written. (The damaged models, caches and CLAP
files of the other packages are in tests/test_broken_inputs.py.)"""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from akg.cli import cli


def run(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def home_with_credentials(tmp_path, content: str | None, mode: int = 0o600):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    if content is not None:
        path = home / "credentials.json"
        path.write_text(content, encoding="utf-8")
        os.chmod(path, mode)
    return home


# (name, environment and files, argv, words the one line must hold)
CASES = [
    ("credentials not JSON", lambda t: {"AKG_HOME": str(home_with_credentials(t, "{not json"))},
     ["stats"], ["credentials.json", "not JSON"]),
    ("credentials a list", lambda t: {"AKG_HOME": str(home_with_credentials(t, "[1, 2]"))},
     ["stats"], ["credentials.json", "JSON object"]),
    ("credentials without a password", lambda t: {"AKG_HOME": str(home_with_credentials(t, '{"user": "root"}'))},
     ["stats"], ["credentials.json", "password"]),
    ("credentials readable by others", lambda t: {"AKG_HOME": str(home_with_credentials(
        t, '{"user": "root", "password": "0123456789abcdef"}', 0o644))}, ["stats"], ["credentials.json", "chmod 600"]),
    ("credentials a directory", lambda t: {"AKG_HOME": str(_dir_credentials(t))}, ["stats"], ["credentials.json"]),
    ("AKG_HOME a file", lambda t: {"AKG_HOME": str(_file(t))}, ["stats"], ["AKG_HOME", "is a file"]),
    ("AKG_BOLT_PORT out of range", lambda t: {"AKG_HOME": str(t / "h"), "AKG_BOLT_PORT": "70000"},
     ["stats"], ["AKG_BOLT_PORT", "70000", "0 to 65535"]),
    ("AKG_HTTP_PORT not a number", lambda t: {"AKG_HOME": str(t / "h"), "AKG_HTTP_PORT": "eighty"},
     ["stats"], ["AKG_HTTP_PORT", "eighty", "not a port"]),
    ("AKG_DATABASE with a bracket", lambda t: {"AKG_HOME": str(t / "h"), "AKG_DATABASE": "akg[root],x"},
     ["stats"], ["AKG_DATABASE", "not a database name"]),
    ("AKG_SERVER_HEAP nonsense", lambda t: {"AKG_HOME": str(t / "h"), "AKG_SERVER_HEAP": "lots"},
     ["stats"], ["AKG_SERVER_HEAP", "lots"]),
    ("AKG_REMOTE_CHANGES_WITHIN not seconds", lambda t: {"AKG_HOME": str(t / "h"), "AKG_REMOTE_CHANGES_WITHIN": "soon"},
     ["stats"], ["AKG_REMOTE_CHANGES_WITHIN", "soon", "0 to 3600"]),
    ("AKG_REMOTE_CHANGES_WITHIN negative", lambda t: {"AKG_HOME": str(t / "h"), "AKG_REMOTE_CHANGES_WITHIN": "-1"},
     ["stats"], ["AKG_REMOTE_CHANGES_WITHIN", "-1"]),
    ("AKG_URI not Bolt", lambda t: {"AKG_HOME": str(t / "h"), "AKG_URI": "http://x:7474", "AKG_PASSWORD": "p"},
     ["stats"], ["AKG_URI", "not a Bolt URI"]),
    ("AKG_URI without a password", lambda t: {"AKG_HOME": str(t / "h"), "AKG_URI": "bolt://127.0.0.1:1"},
     ["stats"], ["AKG_PASSWORD"]),
    ("read user without password", lambda t: {"AKG_HOME": str(t / "h"), "AKG_READ_USER": "r"},
     ["query", "RETURN 1"], ["AKG_READ_USER", "AKG_READ_PASSWORD"]),
    ("ingest /proc/self/mem", lambda t: {"AKG_HOME": str(t / "h")}, ["ingest", "/proc/self/mem"],
     ["/proc/self/mem", "cannot be read"]),
    ("ingest a device", lambda t: {"AKG_HOME": str(t / "h")}, ["ingest", "/dev/zero"],
     ["/dev/zero", "not a regular file"]),
    ("ingest a directory", lambda t: {"AKG_HOME": str(t / "h")}, ["ingest", "/tmp"], ["/tmp", "directory"]),
    ("ingest a missing file", lambda t: {"AKG_HOME": str(t / "h")}, ["ingest", "/nonexistent/AKG_raw.tsv"],
     ["/nonexistent/AKG_raw.tsv", "no such file"]),
    ("ingest a binary file", lambda t: {"AKG_HOME": str(t / "h"), "BINARY": str(_binary(t))}, ["ingest", "$BINARY"],
     ["random_raw.tsv", "line 1"]),
]


def _dir_credentials(tmp_path):
    home = home_with_credentials(tmp_path, None)
    (home / "credentials.json").mkdir()
    return home


def _file(tmp_path):
    path = tmp_path / "not-a-folder"
    path.write_text("x", encoding="utf-8")
    return path


def _binary(tmp_path):
    """Random bytes named like an AKG file."""
    path = tmp_path / "random_raw.tsv"
    path.write_bytes(bytes(range(256)) * 16)
    return path


@pytest.mark.parametrize("name,setup,argv,words", CASES, ids=[c[0] for c in CASES])
def test_broken_settings_and_files_are_one_line(tmp_path, monkeypatch, name, setup, argv, words):
    for var in ("AKG_URI", "AKG_PASSWORD", "AKG_USER", "AKG_DATABASE", "AKG_READ_USER", "AKG_READ_PASSWORD",
                "AKG_BOLT_PORT", "AKG_HTTP_PORT", "AKG_SERVER_HEAP", "AKG_REMOTE_CHANGES_WITHIN"):
        monkeypatch.delenv(var, raising=False)
    env = setup(tmp_path)
    res = run([env.get(a[1:], a) if a.startswith("$") else a for a in argv], env)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 1, res.output
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in res.output, res.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    home = env.get("AKG_HOME")
    if home and os.path.isdir(home):
        assert not os.path.exists(os.path.join(home, "server.json")), "a server was started anyway"


def test_an_unforeseen_error_is_one_line_too(monkeypatch):
    """A bug is still one line (AKG_DEBUG=1 shows the traceback)."""
    import akg_loader.stats

    def broken(graph):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(akg_loader.stats, "graph_stats", broken)
    res = CliRunner().invoke(cli, ["stats"], catch_exceptions=False)
    assert res.exit_code == 1 and res.output.strip() == (
        "Error: unexpected ZeroDivisionError in `akg stats`: division by zero (AKG_DEBUG=1 shows where; please report it)")
    with pytest.raises(ZeroDivisionError):
        CliRunner().invoke(cli, ["stats"], env={"AKG_DEBUG": "1"}, catch_exceptions=False)
