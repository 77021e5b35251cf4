"""Settings from the environment.

Secrets (the Bolt password) only ever come from the environment or from the embedded server's
credentials file, which lives under AKG_HOME with 0600 permissions; never from the repository.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from akg.errors import ConfigError

DEFAULT_DATABASE = "akg"
_DATABASE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")
_HEAP = re.compile(r"^[1-9][0-9]{0,6}[mMgG]$")


@dataclass(frozen=True)
class Settings:
    home: Path                 # AKG_HOME: embedded server data, credentials, models
    uri: str | None            # AKG_URI: an external Bolt server (Neo4j 5); None = embedded
    user: str | None
    password: str | None = field(repr=False)
    database: str
    server_heap: str           # AKG_SERVER_HEAP: Java heap of the embedded server
    read_user: str | None = None                        # AKG_READ_USER: a read-only user for the Cypher console
    read_password: str | None = field(default=None, repr=False)  # AKG_READ_PASSWORD

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
        if home.exists() and not home.is_dir():
            raise ConfigError(f"AKG_HOME={str(home)!r} is a file, not a folder: point AKG_HOME at a folder (it is created if missing)")
        database = env.get("AKG_DATABASE") or (DEFAULT_DATABASE if uri is None else "neo4j")
        if not _DATABASE.match(database):
            raise ConfigError(f"AKG_DATABASE={database!r} is not a database name (letters, digits, '.', '_' and '-', "
                              "starting with a letter)")
        heap = env.get("AKG_SERVER_HEAP") or "2g"
        if not _HEAP.match(heap):
            raise ConfigError(f"AKG_SERVER_HEAP={heap!r}: give a Java heap size such as 2g or 512m")
        read_user, read_password = env.get("AKG_READ_USER") or None, env.get("AKG_READ_PASSWORD") or None
        if (read_user is None) != (read_password is None):
            raise ConfigError("AKG_READ_USER and AKG_READ_PASSWORD go together: set both, or neither")
        return cls(home=home, uri=uri, user=user, password=password, database=database, server_heap=heap,
                   read_user=read_user, read_password=read_password)
