"""A file under AKG_HOME that every write on this machine renews, so that caches of graph reads can
ask "did anything change?" without asking the graph server.

The change log's head (`akg.graph_state.recorded_head`) moves with every change from anywhere; it is
the truth, but reading it costs a round trip to the graph server, and the service's warm answers
(known tails, the training hash) would pay it on every request: under load that read was half of
a prediction's time. Every write that commits through `akg.graph.Graph` replaces this file with a
fresh random token (a new token, not a new mtime: two writes within one clock tick would share an
mtime). A cache keeps the token it saw before its last head read and reads the head again only when
the token differs, or when the last read is older than `recheck` seconds: writers this file cannot
see (another machine sharing a Neo4j by AKG_URI, a process with another AKG_HOME, a writer killed
between its commit and the renewal) show within that bound.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

FILE = "changes.signal"


def signal_path(home: Path, database: str) -> Path:
    return Path(home) / f"{FILE}.{database}"


def renew(home: Path, database: str) -> None:
    """Say that the graph changed: atomically replace the file with a new token. Best effort: a home
    that cannot be written only costs the readers their fast path (they fall back to `recheck`)."""
    path = signal_path(home, database)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE}-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16))
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def token(home: Path, database: str) -> str | None:
    try:
        return signal_path(home, database).read_text()
    except OSError:
        return None


class HeadWatch:
    """The change log's head as of this call or, when this machine's writers have not signalled a
    change since, as of at most `recheck` seconds ago. `read_head` asks the graph; `recheck` 0
    asks it on every call."""

    def __init__(self, home: Path | None, database: str, read_head: Callable[[], dict], recheck: float):
        self._home, self._database, self._read, self.recheck = home, database, read_head, recheck
        self._lock = threading.Lock()
        self._seen: tuple[str | None, float, dict] | None = None  # (token, monotonic time of the read, head)

    def head(self) -> dict:
        now = time.monotonic()
        mark = token(self._home, self._database) if self._home is not None else None
        if mark is None and self._home is not None:  # a home no writer has signalled in yet
            renew(self._home, self._database)
            mark = token(self._home, self._database)
        seen = self._seen
        if seen is not None and mark is not None and mark == seen[0] and now - seen[1] < self.recheck:
            return seen[2]
        # The token is taken before the read: a write that commits after the read renews it later,
        # so the next call sees a new token and reads again.
        head = self._read()
        with self._lock:
            if self._seen is None or self._seen[1] <= now:
                self._seen = (mark, now, head)
        return head


class HeadCache:
    """Answers of graph reads, kept while the change log's head (as a HeadWatch sees it) stays where
    it was when they were read, at most `size` of them (least recently used go first). Nothing is
    kept for a graph without a change log (its head's seq is None): nothing would say it changed."""

    def __init__(self, watch: HeadWatch, size: int = 100_000):
        self.watch, self.size = watch, size
        self._lock = threading.Lock()
        self._at: dict | None = None
        self._answers: OrderedDict = OrderedDict()

    def get(self, key, compute: Callable[[], object]):
        at = self.watch.head()
        with self._lock:
            if at != self._at:
                self._answers, self._at = OrderedDict(), at
            if at["seq"] is not None and key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        value = compute()
        with self._lock:
            if at == self._at and at["seq"] is not None:  # still the graph the value was read from
                self._answers[key] = value
                while len(self._answers) > self.size:
                    self._answers.popitem(last=False)
        return value
