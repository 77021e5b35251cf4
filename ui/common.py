"""Page helpers: the graph check every page starts with, and library errors shown as messages."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import streamlit as st

from akg.errors import AkgError, ConfigError, GraphUnavailable
from ui import resources

UNREACHABLE_HELP = (
    "Without `AKG_URI` the explorer uses the embedded server under `AKG_HOME` (check it with "
    "`akg db status`; any `akg` command starts it). With `AKG_URI` set, the Neo4j server must be up "
    "and `AKG_USER` / `AKG_PASSWORD` / `AKG_DATABASE` right. Reload the page when it is back."
)


def unreachable(error: Exception) -> None:
    st.error(f"**The graph is not reachable.** {error}")
    st.info(UNREACHABLE_HELP)


def require_graph() -> resources.ConnKey:
    """The connection key of a reachable graph; otherwise a clear message and the page stops."""
    try:
        key = resources.connection_key()
        g = resources.graph(key)
    except AkgError as e:  # ConfigError (bad settings), GraphUnavailable, GraphError
        unreachable(e)
        st.stop()
    st.sidebar.caption(f"Graph: {g.describe}")
    return key


@contextlib.contextmanager
def shown_errors() -> Iterator[None]:
    """Library errors become messages on the page, never tracebacks.

    A lost server also drops the cached connection, so the next run reconnects.
    """
    try:
        yield
    except GraphUnavailable as e:
        resources.forget_graph()
        unreachable(e)
    except ConfigError as e:
        st.error(str(e))
    except AkgError as e:
        st.error(str(e))


def cell(value):
    """A value for a table cell: lists and dicts as compact JSON, the rest as they are."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"
