"""What the explorer caches, and how long.

- Resources (`st.cache_resource`, shared by every session of the process): the graph connection
  (one driver per server settings), KGE predictors (per model directory and its modification
  time), the CLAP encoder (per encoder settings) and reasoning sessions (per encoder, label set,
  graph version and KGE model). A resource is built once and reused; the graph connection is
  dropped (and its driver closed) when a page finds the server unreachable, so the next run
  reconnects.
- Query results (`st.cache_data`, TTL seconds): statistics, searches, neighbourhoods, facts,
  console queries, known tails, the graph's hashes. Briefly: a curation or ingest from the CLI
  shows within TTL seconds, while reruns caused by widgets (every click reruns the page) do not
  query the server again.
- Curation (the one page that writes): queue pages and triple histories are `st.cache_data` keyed by
  a process-wide generation counter that every curation change from the explorer bumps, so the page
  shows the graph as the change left it; the change also drops the other pages' cached counts,
  facts and hashes.

Every function takes the connection key (the server settings) as its first argument, so that
cached results of two servers never mix, and resolves the connection through the cached
resource. Nothing here holds a transaction: each library call runs one managed transaction
(akg.graph) or the read-only gate's rolled-back one (akg.readonly), and returns plain data.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import streamlit as st

from akg.config import Settings
from akg.graph import Graph

TTL = 30  # seconds that query results are reused

ConnKey = tuple  # (AKG_HOME, AKG_URI, AKG_USER, AKG_DATABASE)


def connection_key(settings: Settings | None = None) -> ConnKey:
    """The server settings that identify a connection (read from the environment)."""
    s = settings or Settings.from_env()
    return (str(s.home), s.uri, s.user, s.database)


_opened: dict[ConnKey, Graph] = {}  # what _graph built, so that forget_graph can close the drivers


@st.cache_resource(show_spinner="Connecting to the graph…")
def _graph(key: ConnKey) -> Graph:
    from akg.connect import connect

    # The explorer only reads: it leaves migrations to the commands that write (as `akg query` does).
    g = connect(Settings.from_env(), migrate=False)
    _opened[key] = g
    return g


def graph(key: ConnKey) -> Graph:
    return _graph(key)


@st.cache_resource(show_spinner="Connecting to the graph…")
def _reader(key: ConnKey) -> Graph:
    """The console's connection: the server itself refuses its writes (akg.connect.connect_read_only)."""
    from akg.connect import connect_read_only

    g = connect_read_only(Settings.from_env())
    _opened[("reader", *key)] = g
    return g


def forget_graph() -> None:
    """Drop the cached connections (a server went away): the next run reconnects."""
    _graph.clear()
    _reader.clear()
    while _opened:
        _, g = _opened.popitem()
        try:
            g.close()
        except Exception:  # closing a dead driver may complain; it is being dropped anyway
            pass


# --- the overview ------------------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner="Counting…")
def stats(key: ConnKey) -> dict:
    from akg_loader.stats import graph_stats

    return graph_stats(_graph(key))


def label_mapping() -> Path:
    """SALT's mapping file ($AKG_LABEL_SETS_DIR, else AKG_HOME/data/label_sets); InputError if missing."""
    from reasoning import labels

    return labels.find_mapping()


@st.cache_data(ttl=TTL, show_spinner="Resolving label sets against the graph…")
def label_coverage(key: ConnKey, mapping: str, stamp: tuple) -> list[dict]:
    """Every label set with how many of its labels have an AKG entity (as `akg labels list`)."""
    from reasoning import labels

    path = Path(mapping)
    existing = labels.graph_existing(_graph(key))
    rows = labels.available(path)
    for row in rows:
        row["coverage"] = labels.resolve_entities(labels.load(row["key"], path), existing).coverage()
    return rows


def file_stamp(path: Path) -> tuple:
    st_ = Path(path).stat()
    return (str(Path(path).resolve()), st_.st_mtime_ns, st_.st_size)


# --- the entity explorer -----------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def search(key: ConnKey, text: str, limit: int = 25) -> list[str]:
    from akg_loader.explore import search_entities

    return search_entities(_graph(key), text, limit)


@st.cache_data(ttl=TTL, show_spinner=False)
def facts(key: ConnKey, name: str, limit: int = 500) -> list[dict]:
    from akg_loader.explore import facts as entity_facts

    return entity_facts(_graph(key), name, limit)


@st.cache_data(ttl=TTL, show_spinner="Fetching the neighbourhood…")
def neighbourhood(key: ConnKey, name: str, depth: int, relations: tuple[str, ...] | None, limit: int) -> dict:
    from akg_loader.explore import neighbourhood as hood

    return hood(_graph(key), name, depth=depth, relations=list(relations) if relations else None, limit=limit)


# --- the console -------------------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner="Running the query…", max_entries=64)
def run_query(key: ConnKey, text: str, params_json: str, timeout: float, limit: int) -> dict:
    """The read-only gate of `akg query`; the result and when it ran (results are reused for TTL s)."""
    from akg.readonly import run_read_only

    result = run_read_only(_reader(key), text, json.loads(params_json), timeout=timeout, limit=limit)
    return {"result": result, "ran_at": time.time()}


def saved_queries() -> list:
    """The named queries of cypher/ that the read-only gate lets through (the read ones), by name."""
    from akg import queries
    from akg.errors import QueryRefused
    from akg.gate import checked_text

    found = []
    for q in sorted(queries.catalogue().values(), key=lambda q: q.name):
        try:
            checked_text(q.text)
        except QueryRefused:
            continue
        found.append(q)
    return found


# --- predictions -------------------------------------------------------------------------------

def models_root() -> Path:
    from kge import store

    return store.models_root(Settings.from_env().home)


def list_models() -> list:
    from kge import store

    return store.list_models(models_root())


@st.cache_resource(show_spinner="Loading the KGE model…", max_entries=4)
def _predictor(path: str, stamp: tuple):
    from kge import store
    from kge.predict import Predictor

    return Predictor(store.load(Path(path)))


def predictor(stored):
    """A warm Predictor for a stored model (rebuilt when its directory is rewritten)."""
    return _predictor(str(stored.path), file_stamp(stored.path / "config.json"))


@st.cache_data(ttl=TTL, show_spinner=False)
def known_tails(key: ConnKey, head: str, relation: str) -> list[str]:
    from kge.workflows import known_tails as tails

    return tails(_graph(key), head, relation)


@st.cache_data(ttl=TTL, show_spinner="Hashing the training triples…")
def train_hash(key: ConnKey) -> str:
    from kge.workflows import current_train_hash

    return current_train_hash(_graph(key))


@st.cache_data(ttl=TTL, show_spinner=False)
def graph_version(key: ConnKey) -> str:
    from akg.graph_state import graph_version as version

    return version(_graph(key))


# --- audio -------------------------------------------------------------------------------------

def encoder_spec():
    """The CLAP encoder the CLI would use without options: AKG_CLAP_MODEL / AKG_CLAP_CHECKPOINT."""
    from akg.encoders import EncoderSpec

    return EncoderSpec.from_env()


def _spec_items(spec) -> tuple:
    from dataclasses import asdict

    return tuple(sorted(asdict(spec).items()))


@st.cache_resource(show_spinner="Loading the CLAP model…", max_entries=2)
def _encoder(spec_items: tuple):
    from akg.encoders import EncoderSpec, load_encoder

    return load_encoder(EncoderSpec(**dict(spec_items)))


def encoder(spec):
    """The loaded encoder; ConfigError (saying how to provide a model) when there is none."""
    return _encoder(_spec_items(spec))


@st.cache_resource(show_spinner="Building the prompt bank (once per label set, graph version and models)…",
                   max_entries=4)
def _session(key: ConnKey, spec_items: tuple, labels: str, kge_model: str | None, use_kge: bool,
             version: str, kge_stamp: tuple | None):
    from akg.encoders import EncoderSpec
    from reasoning.prompts import EnrichSettings
    from reasoning.workflows import open_session

    spec = EncoderSpec(**dict(spec_items))
    return open_session(_graph(key), Settings.from_env(), labels=labels, encoder_spec=spec, enrich=EnrichSettings(),
                        kge_model=kge_model, use_kge=use_kge, encoder=_encoder(spec_items))


def reasoning_session(key: ConnKey, spec, labels: str, use_kge: bool):
    """The prompt bank of a label set (as `akg classify` builds it), for the graph as it is now."""
    kge_model, kge_stamp = _latest_kge(use_kge)
    return _session(key, _spec_items(spec), labels, kge_model, use_kge, graph_version(key), kge_stamp)


@st.cache_resource(show_spinner="Linking the graph's entities (once per graph version and models)…", max_entries=4)
def _enricher(key: ConnKey, spec_items: tuple, kge_model: str | None, use_kge: bool, version: str,
              kge_stamp: tuple | None):
    from retrieval.session import open_enricher

    return open_enricher(_graph(key), Settings.from_env(), _encoder(spec_items), kge_model=kge_model, use_kge=use_kge)


def enricher(key: ConnKey, spec, use_kge: bool):
    """What `akg search` and `akg tag` link and enrich with (retrieval.session), for the graph as it is now;
    its caches (facts, text embeddings) are kept across reruns."""
    kge_model, kge_stamp = _latest_kge(use_kge)
    return _enricher(key, _spec_items(spec), kge_model, use_kge, graph_version(key), kge_stamp)


def _latest_kge(use_kge: bool) -> tuple[str | None, tuple | None]:
    if use_kge:
        models = list_models()
        if models:
            return models[-1].name, file_stamp(models[-1].path / "config.json")
    return None, None


def indexes() -> list[str]:
    """The collection indexes under AKG_HOME/indexes (made by `akg index`)."""
    from retrieval.store import indexes_root

    root = indexes_root(Settings.from_env().home)
    return sorted(p.name for p in root.glob("*") if (p / "CURRENT").is_file()) if root.is_dir() else []


# --- curation ----------------------------------------------------------------------------------

_curation_generation = 0  # bumped by every curation change made from the explorer (any session)


def curation_generation() -> int:
    """Part of the cache key of queue pages and histories: a change makes them be read afresh."""
    return _curation_generation


def curation_changed() -> None:
    """The graph's triples changed (or may have: a conflict): read the queue, histories and the
    results that depend on triples' statuses afresh."""
    global _curation_generation
    _curation_generation += 1
    for cached in (stats, facts, neighbourhood, known_tails, train_hash, graph_version, run_query):
        cached.clear()


@st.cache_data(ttl=TTL, show_spinner="Reading the queue…", max_entries=64)
def curation_queue(key: ConnKey, status: str | None, relation: str | None, head: str | None, verdict: str | None,
                   offset: int, limit: int, generation: int) -> dict:
    """One page of the review queue (curation.queue.page): {total, offset, rows}."""
    from curation.queue import Filters, page

    return page(_graph(key), Filters(status, relation, head, verdict), offset=offset, limit=limit).as_dict()


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def triple_history(key: ConnKey, triple: tuple[str, str, str], generation: int) -> list[dict]:
    """Every recorded change of one triple, oldest first (curation.history.triple_history)."""
    from curation.history import triple_history as history

    return history(_graph(key), tuple(triple))


@st.cache_resource(show_spinner=False)
def _migrated(key: ConnKey) -> bool:
    """The explorer connects without migrating (its other pages only read); before its first write
    it applies the schema migrations once, as any writing `akg` command does (the change log's
    constraints and indexes)."""
    from akg import migrations

    migrations.apply(_graph(key))
    return True


def curate(key: ConnKey, decisions: list, *, by: str, note: str | None = None):
    """Apply decisions as one change (curation.decide.decide); ConflictError when a triple moved
    since its revision was read. Whatever happens, the cached queue is dropped afterwards."""
    from curation.decide import decide

    _migrated(key)
    try:
        return decide(_graph(key), decisions, by=by, note=note)
    finally:
        curation_changed()


def revert(key: ConnKey, change_id: str, *, by: str, note: str | None = None):
    """Undo a change, recorded as a change (curation.history.revert)."""
    from curation.history import revert as undo

    _migrated(key)
    try:
        return undo(_graph(key), change_id, by=by, note=note)
    finally:
        curation_changed()
