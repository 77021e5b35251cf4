"""Bearer tokens for the service's writes, stored hashed in AKG_HOME/tokens.json (0600).

A token is `secrets.token_urlsafe(32)`, shown once when it is made; the file keeps only its sha256
and the name it was given, which is the curator recorded in the change log for every write made
with it. The file is written atomically (akg.files), so a running service that rereads it (on a
change of its modification time) sees the old list or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from akg.changelog import now_iso
from akg.errors import ConfigError, InputError
from akg.files import held_lock, write_atomic

TOKENS_FILE = "tokens.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # used with fullmatch (akg.names: `$` lets "\n" through)


def tokens_path(home: Path) -> Path:
    return Path(home) / TOKENS_FILE


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    name: str
    sha256: str
    created_at: str

    def as_dict(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "created_at": self.created_at}


def load(path: Path) -> list[TokenEntry]:
    """The stored tokens; none when the file does not exist. A damaged file is a ConfigError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return [TokenEntry(str(t["name"]), str(t["sha256"]), str(t.get("created_at", ""))) for t in data["tokens"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a tokens file ({type(e).__name__}: {e}); remove it and add the tokens "
                          "again with `akg tokens add NAME`") from None


def _save(path: Path, entries: list[TokenEntry]) -> None:
    write_atomic(path, json.dumps({"tokens": [e.as_dict() for e in entries]}, indent=2) + "\n", mode=0o600)


@contextlib.contextmanager
def _changing(home: Path) -> Iterator[Path]:
    """The tokens file, held for a read-change-write: two `akg tokens add` at once would otherwise both
    read the old list and the second write would drop the first's token, which its user was shown."""
    try:
        Path(home).mkdir(parents=True, exist_ok=True)
        lock = Path(home) / ".tokens.lock"
        with held_lock(lock):
            yield tokens_path(home)
    except OSError as e:
        raise ConfigError(f"cannot write the tokens under {home}: {e.strerror or e}") from None


def add(home: Path, name: str) -> str:
    """Make a token for `name` (the curator it writes as); returns the token, which is not stored."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InputError(f"{name!r} is not a token name: letters, digits, '.', '_', '@' and '-', at most 64")
    with _changing(home) as path:
        entries = load(path)
        if any(e.name == name for e in entries):
            raise InputError(f"a token named {name!r} exists already: `akg tokens remove {name}` first")
        token = secrets.token_urlsafe(32)
        _save(path, [*entries, TokenEntry(name, digest(token), now_iso())])
    return token


def remove(home: Path, name: str) -> None:
    with _changing(home) as path:
        entries = load(path)
        if not any(e.name == name for e in entries):
            raise InputError(f"no token named {name!r} (`akg tokens list` shows them)")
        _save(path, [e for e in entries if e.name != name])


class TokenStore:
    """The service's view of the tokens file, reread when it changes (so `akg tokens add/remove` take
    effect without a restart)."""

    def __init__(self, home: Path):
        self.path = tokens_path(home)
        self._stamp: tuple | None = None
        self._entries: list[TokenEntry] = []
        self._lock = threading.Lock()

    def entries(self) -> list[TokenEntry]:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._entries = load(self.path) if stamp is not None else []
                self._stamp = stamp
            return list(self._entries)

    def any(self) -> bool:
        return bool(self.entries())

    def who(self, token: str) -> str | None:
        """The name of the token, or None when it is not one of the stored ones (compared in constant time)."""
        got = digest(token)
        name = None
        for e in self.entries():
            if hmac.compare_digest(got, e.sha256):
                name = e.name
        return name
