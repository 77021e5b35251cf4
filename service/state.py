"""What the service keeps warm between requests, and nothing else.

- One `akg.KnowledgeGraph` (its driver pools connections and reconnects by itself when the server
  comes back). It is opened on first need, so a service started while the graph server is down
  still starts, answers /health, says what is wrong on /ready and recovers when the server is back.
  It caches known tails until the change log's head moves (akg.api KnowledgeGraph.known_tails).
- Loaded models (`akg.Model`, with their predictors), by name, reloaded when the model's folder is
  rewritten; "the latest model" is resolved again at most every LATEST_TTL seconds.

Every answer still comes from akg.api: this module only decides what to keep open.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import akg
from akg.config import Settings
from akg.errors import GraphUnavailable


class Reconnecting(GraphUnavailable):
    """Another request is opening the connection right now."""

LATEST_TTL = 5.0  # seconds a resolution of "the latest model" is reused
MAX_MODELS = 4    # loaded models kept at once (each holds its embeddings in memory)


def _stamp(path: Path) -> tuple:
    try:
        st = (Path(path) / "config.json").stat()
        return (st.st_mtime_ns, st.st_size)
    except OSError:
        return ()


class ServiceState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._kg: akg.KnowledgeGraph | None = None
        self._lock = threading.Lock()
        self._opening = threading.Lock()
        self._opened_at = 0.0
        self._models: dict[str, tuple[tuple, akg.Model]] = {}
        self._latest: tuple[float, str] | None = None

    # --- the graph -------------------------------------------------------------------------------

    def kg(self) -> akg.KnowledgeGraph:
        """The service's graph, opened on first need. While one request (re)opens it, the others are
        answered at once with GraphUnavailable (503) instead of queueing behind it."""
        kg = self._kg
        if kg is not None:
            return kg
        if not self._opening.acquire(blocking=False):
            raise Reconnecting("the service is connecting to the graph server; try again in a moment")
        try:
            if self._kg is None:
                self._kg = akg.open(settings=self.settings)
                self._opened_at = time.monotonic()
            return self._kg
        finally:
            self._opening.release()

    def lost(self, since: float | None = None) -> None:
        """The graph server stopped answering a request that started at `since` (time.monotonic): drop
        the connection, so that the next request opens a new one (for the embedded server, `akg.open`
        starts it again if it is not running, as every command does). A connection opened after that
        request started is a new one, and is kept."""
        with self._lock:
            if since is not None and self._opened_at > since:
                return
            kg, self._kg = self._kg, None
        if kg is not None:
            try:
                kg.close()
            except Exception:  # noqa: BLE001 - closing a dead driver may complain; it is dropped anyway
                pass

    def close(self) -> None:
        self.lost()

    # --- models ----------------------------------------------------------------------------------

    def model(self, name: str | None = None) -> akg.Model:
        """A loaded model by name, or the latest; loaded once and kept while its folder is unchanged."""
        if name is None:
            now = time.monotonic()
            if self._latest is None or now - self._latest[0] > LATEST_TTL:
                self._latest = (now, akg.load_model(settings=self.settings).name)
            name = self._latest[1]
        cached = self._models.get(name)
        if cached is not None and cached[0] == _stamp(cached[1].path):
            return cached[1]
        model = akg.load_model(name, settings=self.settings)
        with self._lock:
            self._models[name] = (_stamp(model.path), model)
            while len(self._models) > MAX_MODELS:
                self._models.pop(next(iter(self._models)))
        return model

    def loaded_models(self) -> list[str]:
        return list(self._models)
