"""Settings from the environment: the one place that reads the AKG_* variables.

Every other module takes its settings from `Settings.from_env()` (or a Settings it was given), so
a variable's name, default and validation live here only.

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
# Used with fullmatch: re.match(r"^...$") also accepts a final newline (`$` matches before one).
_DATABASE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,62}")
_HEAP = re.compile(r"[1-9][0-9]{0,6}[mMgG]")


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
    data_dir: Path | None = None          # AKG_DATA_DIR: the fetched AKG and label sets (default AKG_HOME/data)
    label_sets_dir: Path | None = None    # AKG_LABEL_SETS_DIR: SALT's label sets (default DATA_DIR/label_sets)
    label_sets_from_env: bool = False     # whether AKG_LABEL_SETS_DIR named label_sets_dir
    dataset_mirror: str | None = None     # AKG_DATASET_MIRROR: replaces the download host of `akg dataset fetch`
    clap_model: str | None = None         # AKG_CLAP_MODEL: a CLAP model folder (Hugging Face layout)
    clap_checkpoint: str | None = None    # AKG_CLAP_CHECKPOINT: a LAION-CLAP .pt checkpoint
    audio_dir: Path | None = None         # AKG_AUDIO_DIR: the explorer's folder of clips to pick from
    curator: str = ""                     # AKG_CURATOR: the explorer's default curator name
    bolt_port: str | None = None          # AKG_BOLT_PORT / AKG_HTTP_PORT: the embedded server's ports
    http_port: str | None = None          #   (validated where the server picks them, see akg.embedded)
    debug: bool = False                   # AKG_DEBUG: print tracebacks of unexpected errors
    cors_origins: tuple[str, ...] = ()    # AKG_CORS_ORIGINS: origins `akg serve` allows cross-site (comma-separated); none by default
    # AKG_REMOTE_CHANGES_WITHIN: seconds within which warm caches (known tails) see a change made by a
    # writer on another machine or AKG_HOME; this home's writers show at once (akg.change_signal). 0 = always ask.
    remote_changes_within: float = 1.0

    def __post_init__(self) -> None:
        # Settings built by hand (tests, the Python API) get the same derived folders as from_env.
        if self.data_dir is None:
            object.__setattr__(self, "data_dir", self.home / "data")
        if self.label_sets_dir is None:
            object.__setattr__(self, "label_sets_dir", self.data_dir / "label_sets")

    @property
    def external(self) -> bool:
        return self.uri is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                 overrides: Mapping[str, str] | None = None) -> Settings:
        """The settings of `environ` (default: the process's environment), with `overrides` (AKG_* names)
        taking precedence: how the Python API's `akg.open(home=...)` sets AKG_HOME for one graph."""
        env = os.environ if environ is None else environ
        if overrides:
            env = {**env, **overrides}
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
        if not _DATABASE.fullmatch(database):
            raise ConfigError(f"AKG_DATABASE={database!r} is not a database name (letters, digits, '.', '_' and '-', "
                              "starting with a letter)")
        heap = env.get("AKG_SERVER_HEAP") or "2g"
        if not _HEAP.fullmatch(heap):
            raise ConfigError(f"AKG_SERVER_HEAP={heap!r}: give a Java heap size such as 2g or 512m")
        read_user, read_password = env.get("AKG_READ_USER") or None, env.get("AKG_READ_PASSWORD") or None
        if (read_user is None) != (read_password is None):
            raise ConfigError("AKG_READ_USER and AKG_READ_PASSWORD go together: set both, or neither")
        data_dir = Path(env["AKG_DATA_DIR"]).expanduser().resolve() if env.get("AKG_DATA_DIR") else home / "data"
        if data_dir.exists() and not data_dir.is_dir():
            raise ConfigError(f"AKG_DATA_DIR={str(data_dir)!r} is a file, not a folder")
        label_env = env.get("AKG_LABEL_SETS_DIR") or None
        label_sets = Path(label_env).expanduser() if label_env else data_dir / "label_sets"
        audio = env.get("AKG_AUDIO_DIR") or None
        cors = tuple(o.strip().rstrip("/") for o in (env.get("AKG_CORS_ORIGINS") or "").split(",") if o.strip())
        for origin in cors:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ConfigError(f"AKG_CORS_ORIGINS: {origin!r} is not an origin (give scheme://host[:port], "
                                  "comma-separated, or *)")
        within = env.get("AKG_REMOTE_CHANGES_WITHIN") or "1"
        try:
            remote_within = float(within)
        except ValueError:
            remote_within = -1.0
        if not 0 <= remote_within <= 3600:
            raise ConfigError(f"AKG_REMOTE_CHANGES_WITHIN={within!r}: give seconds from 0 to 3600 (0: read the change "
                              "log's head on every request)")
        return cls(home=home, uri=uri, user=user, password=password, database=database, server_heap=heap,
                   read_user=read_user, read_password=read_password, data_dir=data_dir,
                   label_sets_dir=label_sets, label_sets_from_env=label_env is not None,
                   dataset_mirror=env.get("AKG_DATASET_MIRROR") or None,
                   clap_model=env.get("AKG_CLAP_MODEL") or None, clap_checkpoint=env.get("AKG_CLAP_CHECKPOINT") or None,
                   audio_dir=Path(audio).expanduser() if audio else None,
                   curator=(env.get("AKG_CURATOR") or "").strip(),
                   bolt_port=env.get("AKG_BOLT_PORT"), http_port=env.get("AKG_HTTP_PORT"),
                   debug=bool(env.get("AKG_DEBUG")), cors_origins=cors, remote_changes_within=remote_within)


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """AKG_DEBUG, read on its own: the CLI's last-resort handler asks it even when the other settings
    are broken (Settings.from_env would raise again)."""
    return bool((os.environ if environ is None else environ).get("AKG_DEBUG"))
