"""One error root for the whole service.

Library code raises these; the CLI turns them into clean messages (no traceback). Driver errors
are wrapped at the boundary in `akg.graph` so that callers never need to import `neo4j`.
"""

from __future__ import annotations


class AkgError(Exception):
    """Root of every error the service raises on purpose."""


class ConfigError(AkgError):
    """The environment or a setting is wrong (missing password, bad URI...)."""


class GraphUnavailable(AkgError):
    """The graph server cannot be reached or did not start."""


class GraphError(AkgError):
    """The graph server refused or failed a query."""


class QueryRefused(AkgError):
    """A query was refused before it could change anything (the read-only gate)."""


class QueryBusy(QueryRefused):
    """A query was refused because the machine already runs as many console queries as it allows: try again."""


class QueryTimeout(AkgError):
    """A query ran past its time limit."""


class InputError(AkgError):
    """Bad user input. When it concerns a file, it names the file, the line and the problem."""

    def __init__(self, problem: str, *, file: str | None = None, line: int | None = None):
        self.problem = problem
        self.file = file
        self.line = line
        where = file or ""
        if file and line is not None:
            where = f"{file}, line {line}"
        super().__init__(f"{where}: {problem}" if where else problem)


class Interrupted(AkgError):
    """The user stopped a long job (Ctrl-C) between two of its steps; what it wrote is consistent."""


class IntegrityError(AkgError):
    """Downloaded or copied data does not match its recorded checksum."""


class ConflictError(AkgError):
    """Someone else changed what this change was about since it was read: nothing was written."""
