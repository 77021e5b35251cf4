"""Settings from the environment.

Secrets (the Bolt password) only ever come from the environment or from the embedded server's
credentials file, which lives under AKG_HOME with 0600 permissions; never from the repository.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from akg.errors import ConfigError

DEFAULT_DATABASE = "akg"


@dataclass(frozen=True)
class Settings:
    home: Path                 # AKG_HOME: embedded server data, credentials, models
    uri: str | None            # AKG_URI: an external Bolt server (Neo4j 5); None = embedded
    user: str | None
    password: str | None = field(repr=False)
    database: str
    server_heap: str           # AKG_SERVER_HEAP: Java heap of the embedded server

    @property
    def external(self) -> bool:
        return self.uri is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("AKG_HOME") or platformdirs.user_data_path("akg")).expanduser().resolve()
        uri = env.get("AKG_URI") or None
        user = env.get("AKG_USER") or None
        password = env.get("AKG_PASSWORD") or None
        if uri is not None:
            if not uri.split("://", 1)[0] in {"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"}:
                raise ConfigError(f"AKG_URI={uri!r} is not a Bolt URI (expected bolt://host:7687 or neo4j://...)")
            if password is None:
                raise ConfigError("AKG_URI is set but AKG_PASSWORD is not: set it in the environment")
            user = user or "neo4j"
        database = env.get("AKG_DATABASE") or (DEFAULT_DATABASE if uri is None else "neo4j")
        return cls(home=home, uri=uri, user=user, password=password, database=database,
                   server_heap=env.get("AKG_SERVER_HEAP") or "2g")
