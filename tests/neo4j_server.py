"""The Neo4j 5.26 Community test server (neo4j-test-server/), started and stopped from Python.

Used by the test suite under `make test-neo4j` (AKG_TEST_SERVER=neo4j, tests/conftest.py) and by
bench/servers_bench.py. Needs Java 17+ and Maven (`.ci/run` installs them); Maven resolves the
pinned artifacts of neo4j-test-server/pom.xml once, into the local repository, and the classpath is
kept in neo4j-test-server/target/classpath.txt until pom.xml changes.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "neo4j-test-server"
CLASSPATH = FOLDER / "target" / "classpath.txt"
USER = "neo4j"
DATABASE = "neo4j"  # Community Edition has this one database (and `system`)


class Neo4jUnavailable(RuntimeError):
    """The Neo4j test server cannot be started here; the message says why and what to install."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def classpath() -> str:
    """The launcher's classpath, resolved by Maven from pom.xml (once, then cached in target/)."""
    pom = FOLDER / "pom.xml"
    if CLASSPATH.exists() and CLASSPATH.stat().st_mtime >= pom.stat().st_mtime:
        return CLASSPATH.read_text(encoding="utf-8").strip()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Neo4jUnavailable("the Neo4j test server needs Maven (and Java 17+): apt-get install maven default-jdk-headless")
    CLASSPATH.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([mvn, "-q", "-B", "-f", str(pom), "dependency:build-classpath",
                           f"-Dmdep.outputFile={CLASSPATH}"], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not CLASSPATH.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise Neo4jUnavailable("Maven could not resolve neo4j-test-server/pom.xml's artifacts: " + " | ".join(tail))
    return CLASSPATH.read_text(encoding="utf-8").strip()


@dataclass
class Neo4jServer:
    process: subprocess.Popen
    bolt_uri: str
    http_url: str
    password: str
    store: Path
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment that points `akg` at this server."""
        return {"AKG_URI": self.bolt_uri, "AKG_USER": USER, "AKG_PASSWORD": self.password, "AKG_DATABASE": DATABASE}

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 60) -> None:
        """Close its standard input (the launcher then shuts Neo4j down cleanly); kill it if it hangs."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start(folder: Path, *, timeout: float = 240, heap: str = "2g") -> Neo4jServer:
    """A fresh Neo4j (store under `folder`) on free loopback ports, with a generated password."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    password_file = folder / "password"
    password_file.write_text(password, encoding="utf-8")
    os.chmod(password_file, 0o600)
    return _launch(folder, folder / "store", _free_port(), _free_port(), password, timeout=timeout, heap=heap)


def restart_after_crash(crashed: Neo4jServer, *, timeout: float = 240, heap: str = "2g") -> Neo4jServer:
    """Neo4j again on the crashed server's ports, from a copy of the store its killed process left
    (recovered from the transaction logs on start): what an operator's restart after a crash gives."""
    if crashed.process.poll() is None:
        raise Neo4jUnavailable("restart_after_crash: the server is still running")
    left = [p for p in crashed.store.iterdir() if p.is_dir()]
    if len(left) != 1:
        raise Neo4jUnavailable(f"restart_after_crash: expected one server folder under {crashed.store}, found {len(left)}")
    folder = crashed.store.parent
    store = folder / f"store-{secrets.token_hex(4)}"
    bolt, http = (int(u.rsplit(":", 1)[1]) for u in (crashed.bolt_uri, crashed.http_url))
    return _launch(folder, store, bolt, http, crashed.password, timeout=timeout, heap=heap, copy_from=left[0])


def _launch(folder: Path, store: Path, bolt: int, http: int, password: str, *, timeout: float, heap: str,
            copy_from: Path | None = None) -> Neo4jServer:
    java = shutil.which("java")
    if java is None:
        raise Neo4jUnavailable("the Neo4j test server needs Java 17+: apt-get install default-jdk-headless")
    cp = classpath()
    log = folder / "neo4j-test-server.log"
    with open(log, "ab") as err:
        process = subprocess.Popen(
            [java, f"-Xmx{heap}", "-cp", cp, str(FOLDER / "Neo4jTestServer.java"), "--store", str(store),
             "--bolt-port", str(bolt), "--http-port", str(http), "--password-file", str(folder / "password"),
             *(["--copy-from", str(copy_from)] if copy_from else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=timeout)
            if line is None:
                raise Neo4jUnavailable(f"the Neo4j test server exited while starting (status {process.wait()}); see {log}")
            if line.startswith("FAILED"):
                raise Neo4jUnavailable(f"the Neo4j test server did not start: {line[7:]}; see {log}")
            if line.startswith("READY"):
                _, bolt_uri, http_url = line.split()
                return Neo4jServer(process, bolt_uri.rstrip("/"), http_url.rstrip("/"), password, store, log)
    except queue.Empty:
        process.kill()
        raise Neo4jUnavailable(f"the Neo4j test server did not answer within {timeout:.0f} s; see {log}") from None
    except BaseException:
        if process.poll() is None:
            process.kill()
        raise


@contextlib.contextmanager
def running(folder: Path | None = None, **kw) -> Iterator[Neo4jServer]:
    """A Neo4j test server for the duration of the block (in a temporary folder unless given)."""
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="akg-neo4j-")))
        server = start(folder, **kw)
        stack.callback(server.stop)
        yield server
