"""`akg dataset fetch`: copy (--from) or download (a loopback HTTP mirror), always sha256-checked,
never leaving a wrong or partial file behind. No graph server needed."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from akg.cli import cli
from akg.errors import AkgError, IntegrityError
from akg_loader.dataset import MANIFEST, fetch

RELPATHS = sorted(item.relpath for item in MANIFEST)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def akg(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_only_verified_files(dest: Path) -> None:
    """Whatever is in DEST is a manifest file with the pinned checksum: no wrong file, no .part."""
    pinned = {item.relpath: item.sha256 for item in MANIFEST}
    for rel in files_under(dest) if dest.exists() else []:
        assert rel in pinned, f"unexpected file {rel} in {dest}"
        assert sha(dest / rel) == pinned[rel], f"{rel} in {dest} does not match the manifest"


def flip_byte(path: Path, offset: int = 100) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def local_copy(shared_dir, tmp_path) -> Path:
    """A writable copy of the shared layout (AKG_dataset/ and label_sets/)."""
    root = tmp_path / "shared"
    for item in MANIFEST:
        source = shared_dir / ("AKG_dataset" if "/" not in item.relpath else "") / item.relpath
        target = root / ("AKG_dataset" if "/" not in item.relpath else "") / item.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return root


# ---------------------------------------------------------------------------------------------
# --from a local folder
# ---------------------------------------------------------------------------------------------

def test_fetch_from_shared_folder(shared_dir, tmp_path):
    dest = tmp_path / "x"
    res = akg("dataset", "fetch", "--from", str(shared_dir), "--dest", str(dest), "--json")
    assert res.exit_code == 0, res.output
    done = json.loads(res.stdout)
    assert sorted(Path(d["path"]).relative_to(dest).as_posix() for d in done) == RELPATHS
    assert {d["action"] for d in done} == {"copied"}
    assert files_under(dest) == RELPATHS
    for item in MANIFEST:
        assert sha(dest / item.relpath) == item.sha256
    assert {d["sha256"] for d in done} == {item.sha256 for item in MANIFEST}

    again = akg("dataset", "fetch", "--from", str(shared_dir), "--dest", str(dest))
    assert again.exit_code == 0, again.output
    lines = again.stdout.splitlines()
    assert len(lines) == len(MANIFEST) and all(line.startswith("present ") for line in lines)
    assert files_under(dest) == RELPATHS


def test_fetch_replaces_a_wrong_local_file(shared_dir, tmp_path):
    dest = tmp_path / "x"
    fetch(dest, from_dir=shared_dir)
    damaged = dest / "AKG_test.tsv"
    flip_byte(damaged)
    done = {f.path.name: f.action for f in fetch(dest, from_dir=shared_dir)}
    assert done["AKG_test.tsv"] == "copied" and done["AKG_raw.tsv"] == "present"
    assert_only_verified_files(dest)
    assert files_under(dest) == RELPATHS


def test_fetch_from_corrupted_copy(local_copy, tmp_path):
    flip_byte(local_copy / "AKG_dataset" / "AKG_raw.tsv")
    dest = tmp_path / "x"
    res = akg("dataset", "fetch", "--from", str(local_copy), "--dest", str(dest))
    assert res.exit_code != 0
    assert "AKG_raw.tsv" in res.output and "sha256" in res.output and "Traceback" not in res.output
    assert not (dest / "AKG_raw.tsv").exists()
    assert not list(dest.rglob("*.part"))
    assert_only_verified_files(dest)

    with pytest.raises(IntegrityError, match="AKG_raw.tsv"):
        fetch(tmp_path / "y", from_dir=local_copy)
    assert not (tmp_path / "y" / "AKG_raw.tsv").exists()
    assert not list((tmp_path / "y").rglob("*.part"))
    assert_only_verified_files(tmp_path / "y")


def test_corrupted_copy_leaves_an_existing_good_file_alone(local_copy, shared_dir, tmp_path):
    dest = tmp_path / "x"
    fetch(dest, from_dir=shared_dir)
    (dest / "AKG_pruned.tsv").unlink()
    flip_byte(local_copy / "AKG_dataset" / "AKG_pruned.tsv")
    with pytest.raises(IntegrityError, match="AKG_pruned.tsv"):
        fetch(dest, from_dir=local_copy)
    assert not (dest / "AKG_pruned.tsv").exists()
    assert files_under(dest) == [r for r in RELPATHS if r != "AKG_pruned.tsv"]
    assert_only_verified_files(dest)


def test_fetch_from_folder_missing_a_file(local_copy, tmp_path):
    (local_copy / "label_sets" / "salt_event_roots.json").unlink()
    dest = tmp_path / "x"
    res = akg("dataset", "fetch", "--from", str(local_copy), "--dest", str(dest))
    assert res.exit_code != 0
    assert "salt_event_roots.json not found" in res.output and str(local_copy) in res.output
    assert not (dest / "label_sets" / "salt_event_roots.json").exists()
    assert not list(dest.rglob("*.part"))
    assert_only_verified_files(dest)


def test_fetch_from_flat_folder(local_copy, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in local_copy.rglob("*"):
        if p.is_file():
            shutil.copyfile(p, flat / p.name)
    dest = tmp_path / "x"
    assert {f.action for f in fetch(dest, from_dir=flat)} == {"copied"}
    assert files_under(dest) == RELPATHS
    assert_only_verified_files(dest)


def test_fetch_from_not_a_directory(tmp_path):
    res = akg("dataset", "fetch", "--from", str(tmp_path / "nowhere"), "--dest", str(tmp_path / "x"))
    assert res.exit_code != 0
    assert "the folder to copy from is not a folder" in res.output and str(tmp_path / "nowhere") in res.output
    assert files_under(tmp_path / "x") == []


def test_dest_is_a_file(shared_dir, tmp_path):
    dest = tmp_path / "x"
    dest.write_text("not a folder")
    res = akg("dataset", "fetch", "--from", str(shared_dir), "--dest", str(dest))
    assert res.exit_code != 0 and "the destination is not a folder" in res.output and str(dest) in res.output
    assert dest.read_text() == "not a folder"


# ---------------------------------------------------------------------------------------------
# Downloads from a loopback HTTP mirror laid out as <repo>/<commit>/<path>
# ---------------------------------------------------------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass


class _TruncatingHandler(_QuietHandler):
    """Announces the whole file, sends half of it, then drops the connection."""

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve(monkeypatch):
    """serve(root, handler) -> URL of a server on 127.0.0.1 (free port); all shut down afterwards."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                "AKG_DATASET_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    running = []

    def start(root: Path, handler=_QuietHandler) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def mirror_root(tmp_path, local_copy) -> Path:
    """A folder laid out as the download host: <repo>/<commit>/<path>, as MANIFEST[i].remote says."""
    root = tmp_path / "mirror"
    for item in MANIFEST:
        name = Path(item.relpath).name
        source = next(p for p in (local_copy / "AKG_dataset" / name, local_copy / "label_sets" / name) if p.is_file())
        target = root / item.remote
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return root


@pytest.fixture
def mirror(serve, mirror_root):
    return serve(mirror_root), mirror_root


def test_download_from_mirror(mirror, tmp_path):
    url, _ = mirror
    dest = tmp_path / "x"
    done = fetch(dest, mirror=url, timeout=10)
    assert [f.action for f in done] == ["downloaded"] * len(MANIFEST)
    assert files_under(dest) == RELPATHS
    for item in MANIFEST:
        assert sha(dest / item.relpath) == item.sha256
    assert [f.action for f in fetch(dest, mirror=url + "/", timeout=10)] == ["present"] * len(MANIFEST)


def test_download_via_cli_and_environment(mirror, tmp_path, monkeypatch):
    url, _ = mirror
    monkeypatch.setenv("AKG_DATASET_MIRROR", url)
    dest = tmp_path / "x"
    res = akg("dataset", "fetch", "--dest", str(dest), "--json")
    assert res.exit_code == 0, res.output
    assert [d["action"] for d in json.loads(res.stdout)] == ["downloaded"] * len(MANIFEST)
    assert_only_verified_files(dest)
    assert files_under(dest) == RELPATHS


def test_mirror_serving_a_wrong_file(mirror, tmp_path):
    url, root = mirror
    first = MANIFEST[0]
    flip_byte(root / first.remote)
    dest = tmp_path / "x"
    with pytest.raises(IntegrityError) as e:
        fetch(dest, mirror=url, timeout=10)
    assert f"{url}/{first.remote}" in str(e.value) and first.sha256 in str(e.value)
    assert files_under(dest) == []  # nothing installed, no .part left


def test_mirror_serving_a_wrong_later_file(mirror, tmp_path):
    url, root = mirror
    bad = next(item for item in MANIFEST if item.relpath.startswith("label_sets/"))
    (root / bad.remote).write_bytes(b"<html>not the mapping</html>\n")
    dest = tmp_path / "x"
    with pytest.raises(IntegrityError, match=Path(bad.relpath).name):
        fetch(dest, mirror=url, timeout=10)
    assert not (dest / bad.relpath).exists()
    assert not list(dest.rglob("*.part"))
    assert_only_verified_files(dest)


def test_mirror_that_404s(mirror, tmp_path):
    url, root = mirror
    missing = MANIFEST[1]
    (root / missing.remote).unlink()
    dest = tmp_path / "x"
    with pytest.raises(AkgError) as e:
        fetch(dest, mirror=url, timeout=10)
    assert not isinstance(e.value, IntegrityError)
    message = str(e.value)
    assert f"{url}/{missing.remote}" in message and "404" in message and "--from" in message
    assert not (dest / missing.relpath).exists()
    assert not list(dest.rglob("*.part"))
    assert_only_verified_files(dest)


def test_mirror_that_404s_via_cli(mirror, tmp_path, monkeypatch):
    url, root = mirror
    shutil.rmtree(root / MANIFEST[0].remote.split("/")[0])
    monkeypatch.setenv("AKG_DATASET_MIRROR", url)
    dest = tmp_path / "x"
    res = akg("dataset", "fetch", "--dest", str(dest))
    assert res.exit_code != 0
    assert "--from" in res.output and "Traceback" not in res.output
    assert files_under(dest) == []


def test_download_cut_short(serve, mirror_root, tmp_path):
    url = serve(mirror_root, _TruncatingHandler)
    dest = tmp_path / "x"
    with pytest.raises(IntegrityError, match=MANIFEST[0].relpath):
        fetch(dest, mirror=url, timeout=10)
    assert files_under(dest) == []  # neither the short file nor its .part
