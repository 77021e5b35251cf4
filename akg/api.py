"""The public Python API: the AKG service from a notebook or a script, with the CLI's defaults.

    import akg
    kg = akg.open()                                   # the embedded server, or AKG_URI's Neo4j
    kg.ingest(["AKG_pruned.tsv", "AKG_test.tsv"])     # -> IngestReport
    kg.query("MATCH (:Entity {name: $n})-[r]->(t) RETURN t.name AS tail", n="dog")   # read-only
    model = akg.train(kg, preset="fast", epochs=30)   # -> Model (saved, with its metrics)
    model.predict("dog", "has parent", k=5)           # known and predicted tails
    akg.classify(kg, ["clip.wav"], labels="esc50", clap="DIR")

Every function takes keyword arguments only (after the obvious first ones) and returns a small
result object with `to_dict()` and `to_df()` (pandas). Each is a thin layer over the library
function its CLI command also calls, so the two give the same answers (docs/api.md lists them).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from akg.change_signal import HeadCache, HeadWatch
from akg.config import Settings
from akg.errors import InputError


# ---------------------------------------------------------------------------------------------
# Result objects


class Result:
    """A result: `to_dict()` gives plain JSON-ready data, `to_df()` a pandas DataFrame of its rows."""

    def to_dict(self) -> dict:
        raise NotImplementedError

    def rows(self) -> list[dict]:
        raise NotImplementedError

    def to_df(self):
        import pandas as pd

        return pd.DataFrame(self.rows())


@dataclass
class IngestReport(Result):
    summary: Any  # akg_loader.ingest.IngestSummary

    def __getattr__(self, name):  # triples_created, entities_created, ... as attributes
        return getattr(self.__dict__["summary"], name)

    def to_dict(self) -> dict:
        return self.summary.as_dict()

    def rows(self) -> list[dict]:
        return list(self.summary.files)


@dataclass
class Table(Result):
    """Rows with named columns (query results, versions, curation queues, changes)."""
    data: list[dict]
    columns: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]

    def to_dict(self) -> dict:
        return {"columns": self.columns or sorted({k for r in self.data for k in r}), "rows": self.data, **self.meta}

    def rows(self) -> list[dict]:
        return self.data

    def to_df(self):
        import pandas as pd

        return pd.DataFrame(self.data, columns=self.columns or None)


@dataclass
class Report(Result):
    """A nested result (stats, metrics, an evaluation): `data` as returned, `table` the rows of to_df."""
    data: dict
    table: str | None = None

    def __getitem__(self, key):
        return self.data[key]

    def to_dict(self) -> dict:
        return self.data

    def rows(self) -> list[dict]:
        value = self.data.get(self.table) if self.table else None
        if isinstance(value, dict):
            return [{"key": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in value.items()]
        return list(value or [])


@dataclass
class Evaluation(Report):
    """A model's evaluation with per-relation metrics: `rows()`/`to_df()` are the relations' rows."""
    per_relation_rows: list[dict] = field(default_factory=list)

    def rows(self) -> list[dict]:
        return self.per_relation_rows


# ---------------------------------------------------------------------------------------------
# The data


def fetch_dataset(*, from_dir: str | Path | None = None, dest: str | Path | None = None,
                  settings: Settings | None = None) -> Table:
    """Install the AKG's TSV files and SALT's label sets, sha256-checked, into the data folder (AKG_HOME/data
    or AKG_DATA_DIR; `dest` overrides), downloading them or copying `from_dir` (as `akg dataset fetch`).
    The table's `meta["data_dir"]` is the folder; files already in place are left as they are."""
    from akg_loader.dataset import fetch

    settings = settings or Settings.from_env()
    done = fetch(Path(dest) if dest is not None else None, from_dir=Path(from_dir) if from_dir else None,
                 settings=settings)
    folder = Path(dest) if dest is not None else settings.data_dir
    return Table([{"file": f.path.name, "path": str(f.path), "action": f.action, "sha256": f.sha256} for f in done],
                 ["file", "action", "sha256", "path"], {"data_dir": str(folder)})


def data_dir(*, settings: Settings | None = None) -> Path:
    """The folder `fetch_dataset` fills: AKG_pruned.tsv, AKG_raw.tsv, AKG_test.tsv and label_sets/."""
    return (settings or Settings.from_env()).data_dir


# ---------------------------------------------------------------------------------------------
# The graph


def _settings(settings: Settings | None, home: str | Path | None) -> Settings:
    if settings is not None and home is not None:
        raise InputError("give settings or home, not both")
    if settings is not None:
        return settings
    return Settings.from_env(overrides={"AKG_HOME": str(home)} if home is not None else None)


def open(*, home: str | Path | None = None, settings: Settings | None = None) -> KnowledgeGraph:  # noqa: A001
    """The graph of the settings (AKG_* variables; `home` overrides AKG_HOME): the embedded server,
    started if needed, or the Neo4j server of AKG_URI. Use it as a context manager, or call close()."""
    from akg.connect import connect

    settings = _settings(settings, home)
    return KnowledgeGraph(settings, connect(settings))


MAX_SESSIONS = 4  # classification sessions kept per graph (label set, KGE model, prompt bank)


class KnowledgeGraph:
    def __init__(self, settings: Settings, graph):
        self.settings = settings
        self.graph = graph          # akg.graph.Graph: the writing connection
        self._reader = None         # the read-only connection of query(), opened on first use
        self._lock = threading.Lock()
        # Answers kept until the graph changes (akg.change_signal), each kind bounded on its own so that
        # many of one kind cannot push out another: known tails (small, many), facts and
        # neighbourhoods (up to ~100 kB each), the training hash, classification sessions and retrieval
        # enrichers (each holds a KGE model: a few).
        watch = HeadWatch(graph.home, graph.database, self.head, settings.remote_changes_within)
        self._known, self._answers = HeadCache(watch, 100_000), HeadCache(watch, 2_000)
        self._train_hash, self._sessions = HeadCache(watch, 1), HeadCache(watch, MAX_SESSIONS)
        self._enrichers = HeadCache(watch, MAX_SESSIONS)  # search and tag: entity table, KGE model, text caches
        self.curate = Curation(self)

    def __enter__(self) -> KnowledgeGraph:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for g in (self._reader, self.graph):
            if g is not None:
                g.close()
        self._reader = None

    def __repr__(self) -> str:
        where = self.settings.uri or f"embedded server under {self.settings.home}"
        return f"<akg.KnowledgeGraph {where}, database {self.settings.database}>"

    def ingest(self, paths: str | Path | Sequence[str | Path], *, source: str | None = None, strict: bool = False,
               rejects: str | Path | None = None, move_split: bool = False, batch_size: int = 5000) -> IngestReport:
        """Load AKG TSV files (as `akg ingest`): every file checked first; bad rows go to a rejects file."""
        from akg_loader.load import load_files

        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        return IngestReport(load_files(self.graph, paths, source=source, strict=strict, rejects=rejects,
                                       batch_size=batch_size, move_split=move_split))

    def query(self, text: str, /, *, timeout: float = 30.0, limit: int = 1000, params: dict | None = None,
              **kwparams) -> Table:
        """A read-only Cypher query (as `akg query`): the server refuses writes; `params` (a dict, for
        names such as `limit`) and keywords are its $parameters."""
        from akg.connect import connect_read_only
        from akg.readonly import run_read_only

        params = {**(params or {}), **kwparams}

        with self._lock:
            if self._reader is None:
                self._reader = connect_read_only(self.settings)
        result = run_read_only(self._reader, text, params, timeout=timeout, limit=limit)
        return Table(result.rows, result.columns, {"truncated": result.truncated, "notes": result.notes})

    def stats(self) -> Report:
        """Entities and triples by status, split, source and relation (as `akg stats`)."""
        from akg_loader.stats import graph_stats

        return Report(graph_stats(self.graph), table="relations")

    def export(self, *, split: str | None = "train", status: str | None = "accepted",
               path: str | Path | None = None) -> Table:
        """The triples with this split and status (None: any), sorted; written with its metadata to `path`."""
        from akg_loader.export import export_triples, write_export

        result = export_triples(self.graph, split=split, status=status)
        meta = result.meta()
        if path is not None:
            meta["file"], meta["meta_file"] = str(path), str(write_export(result, Path(path)))
        return Table([{"head": h, "relation": r, "tail": t} for h, r, t in result.triples],
                     ["head", "relation", "tail"], meta)

    def versions(self) -> Table:
        """The graph's versions, oldest first (as `akg versions`)."""
        from curation.versions import list_versions

        return Table(list_versions(self.graph))

    def version(self) -> str:
        """The graph's current version (the hash of its accepted triples)."""
        from akg.graph_state import graph_version

        return graph_version(self.graph)

    def head(self) -> dict:
        """The change log's head, one quick read: `seq` moves with every change (ingest, curation,
        revert, from any process), `version` is the recorded graph version; both None before any change."""
        from akg.graph_state import recorded_head

        return recorded_head(self.graph)

    def search(self, text: str, *, limit: int = 10) -> Table:
        """Entity names containing `text` (normalised like AKG names), shortest first (as the explorer's search)."""
        from akg_loader.explore import search_entities

        return Table([{"name": n} for n in search_entities(self.graph, text, limit)], ["name"])

    def facts(self, name: str, *, limit: int = 500) -> Table:
        """An entity's facts in both directions with their provenance: direction, relation, other,
        status, split, sources, verdict (cypher/explore.cypher, entity_neighbourhood); kept until the
        graph changes, as `known_tails` is."""
        from akg.names import normalise_name
        from akg_loader.explore import facts

        rows = self._answers.get(("facts", name, limit), lambda: facts(self.graph, name, limit))
        return Table(copy.deepcopy(rows),
                     ["direction", "relation", "other", "status", "split", "sources", "verdict"],
                     {"entity": normalise_name(name)})

    def neighbourhood(self, name: str, *, depth: int = 1, relations: Sequence[str] | None = None,
                      limit: int = 200) -> Report:
        """The facts around an entity, one or two hops: {center, nodes, edges} (as the explorer's graph);
        kept until the graph changes, as `facts` and `known_tails` are."""
        from akg_loader.explore import neighbourhood

        rels = list(relations) if relations else None
        got = self._answers.get(("neighbourhood", name, depth, tuple(rels or ()), limit),
                              lambda: neighbourhood(self.graph, name, depth=depth, relations=rels, limit=limit))
        return Report(copy.deepcopy(got), table="edges")

    def diff(self, old: str, new: str = "current") -> Report:
        """Triples accepted in version `new` but not `old` and the reverse (as `akg diff`); versions by prefix."""
        from curation.versions import diff

        return Report(diff(self.graph, old, new).as_dict(), table=None)

    def known_tails(self, head: str, relation: str) -> list[str]:
        """The graph's accepted tails of (head, relation), kept until the change log's head moves, so
        that repeated predictions do not ask the graph again. A change made from this AKG_HOME shows at
        once; one from elsewhere (another machine sharing the server) within
        `settings.remote_changes_within` seconds (AKG_REMOTE_CHANGES_WITHIN; akg.change_signal)."""
        from kge.workflows import known_tails

        return list(self._known.get(("known tails", head, relation), lambda: known_tails(self.graph, head, relation)))

    def train_hash(self) -> str:
        """The hash a model trained now would record (of the accepted training triples); recomputed
        only when the change log's head moves (seen as `known_tails` sees it)."""
        from kge.workflows import current_train_hash

        return self._train_hash.get("train hash", lambda: current_train_hash(self.graph))

    def label_sets(self, *, mapping: str | Path | None = None) -> Table:
        """Every label set with its AKG coverage (as `akg labels list`); `meta["mapping"]` is the file read."""
        from reasoning import labels as L

        path = L.find_mapping(mapping, settings=self.settings)
        rows = L.available(path)
        existing = L.graph_existing(self.graph)
        for row in rows:
            row["coverage"] = L.resolve_entities(L.load(row["key"], path), existing).coverage()
        return Table(rows, meta={"mapping": str(path)})


class Curation:
    """kg.curate: decisions on triples, each call one change (all or nothing), with its audit trail."""

    def __init__(self, kg: KnowledgeGraph):
        self._kg = kg

    def _decide(self, action: str, triples: Iterable, *, by: str, note: str | None, **extra) -> Report:
        from curation.decide import Decision, decide
        from curation.triples import make_triple

        decisions = [Decision(action, make_triple(*t) if not isinstance(t, str) else _parse(t), note=note, **extra)
                     for t in triples]
        return Report(decide(self._kg.graph, decisions, by=by, note=note).as_dict(), table="triples")

    def accept(self, *triples, by: str, note: str | None = None) -> Report:
        """Accept triples, each `(head, relation, tail)` or `"head|relation|tail"`."""
        return self._decide("accept", triples, by=by, note=note)

    def reject(self, *triples, by: str, note: str | None = None) -> Report:
        return self._decide("reject", triples, by=by, note=note)

    def add(self, head: str, relation: str, tail: str, *, by: str, note: str | None = None) -> Report:
        """Add an accepted training triple; new entities are created."""
        return self._decide("add", [(head, relation, tail)], by=by, note=note)

    def edit(self, triple, *, new_tail: str, by: str, note: str | None = None) -> Report:
        """Reject `triple` and accept head|relation|new_tail instead."""
        from akg.names import normalise_name

        return self._decide("edit", [triple], by=by, note=note, new_tail=normalise_name(new_tail))

    def queue(self, *, status: str | None = "pending", relation: str | None = None, limit: int = 50) -> Table:
        """Triples waiting for a decision (as `akg curate list`)."""
        from curation.queue import Filters, page

        got = page(self._kg.graph, Filters(status=status, relation=relation), limit=limit).as_dict()
        return Table(got.pop("rows", got.pop("triples", [])), meta=got)

    def changes(self, *, since: str | None = None, limit: int = 100) -> Table:
        from curation.history import changes_since, parse_since

        return Table(changes_since(self._kg.graph, parse_since(since) if since else None, limit))

    def revert(self, change_id: str, *, by: str, note: str | None = None) -> Report:
        from curation.history import revert

        return Report(revert(self._kg.graph, change_id, by=by, note=note).as_dict(), table="triples")


def _parse(text: str):
    from curation.triples import parse_triple

    return parse_triple(text)


# ---------------------------------------------------------------------------------------------
# Knowledge-graph embeddings


class Model:
    """A trained, saved KGE model: predict tails, evaluate on the graph's test split."""

    def __init__(self, stored, settings: Settings, *, train_seconds: float | None = None, metrics: dict | None = None):
        self.stored, self.settings = stored, settings
        self.name, self.path = stored.name, stored.path
        self.config = stored.train_config.as_dict()
        self.metrics = metrics if metrics is not None else stored.metrics
        self.train_seconds = train_seconds
        self._predictor = None

    def __repr__(self) -> str:
        return f"<akg.Model {self.name} ({self.config.get('model')})>"

    @property
    def notes(self) -> list[str]:
        return list(self.stored.notes)

    def _predictor_(self):
        if self._predictor is None:
            from kge.features import default_cache_dir
            from kge.predict import Predictor

            self._predictor = Predictor(self.stored, feature_cache=default_cache_dir(self.settings.home))
        return self._predictor

    def predict(self, head: str | None = None, relation: str | None = None, *, clip: str | Path | None = None,
                k: int = 10, kg: KnowledgeGraph | None = None) -> Table:
        """The model's k best tails of (head, relation) by score, each marked `known` (an accepted fact
        of the graph) or `predicted` (as `akg predict`).
        With `kg`, its known tails are reused until the graph changes (KnowledgeGraph.known_tails).
        With `clip` (an audio file) instead of a head: what an audio-grounded model holds for that sound
        (as `akg predict --clip FILE RELATION`); `predict(clip="bark.wav", relation="has parent")`."""
        from kge.workflows import known_tails

        predictor = self._predictor_()
        if clip is not None:
            if head is not None and relation is not None:
                raise InputError("give a head or a clip, not both")
            from reasoning.audio_grounding import predict_clip

            relation = relation or head
            if relation is None:
                raise InputError("give the relation to predict tails for")
            plain = predictor.check_audio(relation)
            predictions = predict_clip(predictor, Path(clip), plain, self.settings, k=k)
            return Table([p.as_dict() for p in predictions], meta={"clip": str(clip), "relation": plain,
                                                                   "model": self.name})
        if head is None or relation is None:
            raise InputError("give a head and a relation (or a clip and a relation)")
        pair = predictor.resolve_pair(head, relation)
        if kg is not None:
            known = kg.known_tails(*pair)
        else:
            with _graph_for(kg, self.settings) as graph:
                known = known_tails(graph, *pair)
        predictions = predictor.predict(*pair, k=k, known=known)
        return Table([p.as_dict() for p in predictions], meta={"head": pair[0], "relation": pair[1], "model": self.name})

    def predict_many(self, pairs: Iterable[tuple[str, str]], *, k: int = 10, kg: KnowledgeGraph | None = None) -> Table:
        """`predict` for each (head, relation): one row per pair with its `tails`, or its `error` (an
        unknown entity or relation) without stopping the others."""
        rows = []
        with _graph_for(kg, self.settings) as graph:
            own = kg if kg is not None else KnowledgeGraph(self.settings, graph)
            for head, relation in pairs:
                try:
                    got = self.predict(head, relation, k=k, kg=own)
                    rows.append({"head": got.meta["head"], "relation": got.meta["relation"], "tails": got.data,
                                 "error": None})
                except InputError as e:
                    rows.append({"head": head, "relation": relation, "tails": [], "error": str(e)})
        return Table(rows, ["head", "relation", "tails", "error"], {"model": self.name})

    def entity_embeddings(self):
        """The entities' vectors as the model scores them (a grounded model's fused ones), with their names:
        `.names`, `.vectors` (complex for RotatE/ComplEx), `.array()` (float32, trailing real/imaginary
        axis when complex), `.to_df()` (id, name, e0.. or re0../im0.. columns). See docs/embeddings.md."""
        from kge.export import entity_embeddings

        return entity_embeddings(self._predictor_().model, self.stored.entity_to_id)

    def relation_embeddings(self):
        """The relations' vectors, like `entity_embeddings` (with inverse triples: row 2r the relation,
        2r + 1 its inverse, named '<relation>_inverse')."""
        from kge.export import relation_embeddings

        return relation_embeddings(self._predictor_().model, self.stored.relation_to_id)

    def export_embeddings(self, out: str | Path | None = None, *, format: str = "npy") -> Path:  # noqa: A002
        """Write both with id maps and meta.json (as `akg export-embeddings`); the folder written."""
        from kge.export import export

        return export(self.stored, None if out is None else Path(out), format, model=self._predictor_().model).path

    def card(self) -> dict:
        """What the model is: its name, training settings, metrics, the graph it was trained on, notes."""
        return {"name": self.name, "path": str(self.path), "config": self.config, "metrics": self.metrics,
                "trained_on": self.stored.trained_on, "created_at": self.stored.created_at, "notes": self.notes}

    def stale(self, kg: KnowledgeGraph) -> str | None:
        """A warning when the graph's accepted training triples differ from what this model was trained on."""
        from kge.workflows import staleness

        return staleness(self.stored, kg.train_hash())

    def evaluate(self, kg: KnowledgeGraph | None = None, *, device: str = "cpu", per_relation: bool = False) -> Report:
        """Filtered MRR and Hits@k on the graph's test split (as `akg evaluate`); with `per_relation`,
        also each relation's 'known' and 'all' metrics under 'per_relation', and `to_df()` gives them
        as one row per relation, weakest first (kge.evaluate.per_relation_rows)."""
        from kge.data import from_graph
        from kge.features import default_cache_dir
        from kge.workflows import evaluate_on

        with _graph_for(kg, self.settings) as graph:
            data = from_graph(graph, need_test=True)
        metrics = evaluate_on(self.stored.load_model(device), self.stored.entity_to_id, self.stored.relation_to_id,
                              data, device=device, feature_cache=default_cache_dir(self.settings.home))
        if not per_relation:
            metrics.pop("per_relation", None)
            return Report(metrics, table=None)
        from kge.evaluate import per_relation_rows

        return Evaluation(metrics, table=None, per_relation_rows=per_relation_rows(metrics["per_relation"]))


@contextlib.contextmanager
def _graph_for(kg: KnowledgeGraph | None, settings: Settings):
    """The open graph of `kg`, lent without closing it; or, without one, a connection of its own."""
    if kg is not None:
        yield kg.graph
        return
    from akg.connect import connect

    with connect(settings) as graph:
        yield graph


def train(kg: KnowledgeGraph, *, preset: str | None = None, model: str | None = None, grounded: str | None = None,
          grounding: dict | None = None, name: str | None = None, evaluate: bool = True, progress: bool = False,
          audio_examples: str | Path | None = None, meta: str | Path | None = None, dataset: str | None = None,
          **settings) -> Model:
    """Train a KGE model on the graph's accepted training triples (as `akg train`), save it, evaluate it.

    `preset` (fast, best, grounded, paper), `model` (any PyKEEN model), `grounded="text"` and `grounding`
    (encoder, fusion, projection, modality_dropout) follow kge.presets.configure; `settings` are the
    training settings (epochs, embedding_dim, learning_rate, batch_size, negatives, training_loop,
    inverse_triples, regularizer, regularizer_weight, label_smoothing, model_kwargs, seed, device).
    `grounded="text,audio"` with `audio_examples` (a folder of clips), `meta` (its metadata CSV, a
    layout zeroshot-eval reads) and optionally `dataset` (the label set, or a label file) grounds
    entities in their example clips too (the configured CLAP)."""
    from kge.presets import configure
    from kge.store import models_root
    from kge.workflows import train_from_graph

    config = configure(preset_name=preset, model=model, grounded=grounded, grounding=grounding, **settings)
    if audio_examples is not None or meta is not None or (grounded or "").endswith("audio"):
        from reasoning.audio_grounding import train_audio_grounded

        trained = train_audio_grounded(kg.graph, kg.settings, config, audio_dir=_path(audio_examples),
                                       meta=_path(meta), dataset=dataset, models_root=models_root(kg.settings.home),
                                       name=name, evaluate_after=evaluate, progress=progress)
    else:
        trained = train_from_graph(kg.graph, config, models_root=models_root(kg.settings.home), name=name,
                                   evaluate_after=evaluate, progress=progress)
    from kge import store

    return Model(store.load(trained.path), kg.settings, train_seconds=trained.train_seconds, metrics=trained.metrics)


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def import_embeddings(folder: str | Path, *, name: str | None = None, settings: Settings | None = None) -> Model:
    """Store a set written by `export_embeddings` as a model, every file checked against its checksum
    (as `akg models import`); it scores and predicts over its entities (docs/embeddings.md)."""
    from kge import store
    from kge.export import import_set

    settings = settings or Settings.from_env()
    return Model(store.load(import_set(Path(folder), store.models_root(settings.home), name=name)), settings)


def load_model(name: str | Path | None = None, *, settings: Settings | None = None) -> Model:
    """A saved model by name or folder; the latest without a name (as `akg predict`'s default)."""
    from kge import store

    settings = settings or Settings.from_env()
    return Model(store.resolve(str(name) if name is not None else None, store.models_root(settings.home)), settings)


def models(*, settings: Settings | None = None) -> Table:
    """Every saved model, newest last, with a problem for each one that cannot be loaded (as `akg models`)."""
    from kge import store

    settings = settings or Settings.from_env()
    rows = []
    for m in store.scan(store.models_root(settings.home)):
        if isinstance(m, store.BrokenModel):
            rows.append({"name": m.name, "path": str(m.path), "problem": m.problem})
        else:
            rows.append({"name": m.name, "path": str(m.path), "model": m.train_config.model,
                         "created_at": m.created_at, "problem": None})
    return Table(rows, ["name", "model", "created_at", "path", "problem"])


# ---------------------------------------------------------------------------------------------
# Audio: classification and zero-shot evaluation


def _encoder_spec(clap: str | Path | None, device: str | None, allow_download: bool):
    from akg.encoders import EncoderSpec

    if clap is None:
        return EncoderSpec.from_env(device=device, allow_download=allow_download or None)
    clap = str(clap)
    if clap.endswith(".pt"):
        return EncoderSpec.from_env(backend="laion-clap", checkpoint=clap, device=device,
                                    allow_download=allow_download or None)
    return EncoderSpec.from_env(backend="hf", model=clap, device=device, allow_download=allow_download or None)


_ENCODERS: dict = {}  # (spec, model file/folder mtime) -> a loaded CLAP encoder, reused by later calls
_ENCODERS_LOCK = threading.Lock()
MAX_ENCODERS = 2


def _stamp(where) -> int | None:
    """When a file or folder was last rewritten; None for what is not a path here (a hub id)."""
    try:
        return Path(where).stat().st_mtime_ns
    except (OSError, TypeError, ValueError):
        return None


def _models_stamp(settings: Settings, kge_model: str | None) -> tuple:
    """What decides which KGE model a classification uses: every stored model's card (the latest may
    change) and, for a model given by path, its card."""
    from kge import store

    root = store.models_root(settings.home)
    cards = sorted(root.glob("*/config.json")) if root.is_dir() else []
    extra = [Path(kge_model) / "config.json"] if kge_model and store.is_path(kge_model) else []
    return tuple((str(p), _stamp(p)) for p in [*cards, *extra])


def _encoder(spec):
    """A loaded CLAP encoder for the spec, kept for the process (loading one takes seconds), so that a
    notebook's or the HTTP service's next classification reuses it. A model folder or checkpoint that
    is rewritten (its mtime moves) is loaded again; at most MAX_ENCODERS are kept."""
    from akg.encoders import load_encoder

    key = (spec, _stamp(spec.checkpoint or spec.model))
    with _ENCODERS_LOCK:
        found = _ENCODERS.get(key)
        if found is None:
            found = load_encoder(spec)
            while len(_ENCODERS) >= MAX_ENCODERS:
                _ENCODERS.pop(next(iter(_ENCODERS)))
            _ENCODERS[key] = found
        return found


def _enrich(relations, top_m, template, base_template):
    from reasoning.prompts import EnrichSettings

    given = {"top_m": top_m, "template": template, "base_template": base_template}
    if relations is not None:
        given["relations"] = (EnrichSettings.parse_relations(relations) if isinstance(relations, str)
                              else tuple(relations))
    return EnrichSettings(**{k: v for k, v in given.items() if v is not None})


def _fusion(method: str, temperature: float | None):
    from reasoning.fusion import FusionSettings

    return FusionSettings(method=method, **({"temperature": temperature} if temperature is not None else {}))


@dataclass
class ClassifyReport(Result):
    clips: list                      # reasoning.classify.ClipResult, one per clip, in order
    settings: dict

    def to_dict(self) -> dict:
        return {"settings": self.settings, "clips": [c.as_dict() for c in self.clips]}

    def rows(self) -> list[dict]:
        """One row per clip and refined rank (errors as a row with the error)."""
        out = []
        for c in self.clips:
            if c.error:
                out.append({"clip": c.clip, "rank": None, "label": None, "error": c.error})
            for n, r in enumerate(c.refined, 1):
                out.append({"clip": c.clip, "rank": n, **r})
        return out


def classify(kg: KnowledgeGraph, clips: Sequence[str | Path], *, labels: str | None = None, clap: str | Path | None = None,
             top_k: int | None = None, fusion: str = "lse", temperature: float | None = None,
             relations: str | Sequence[str] | None = None, top_m: int | None = None, template: str | None = None,
             base_template: str | None = None, kge_model: str | None = None, use_kge: bool = True,
             explain: bool = True, max_seconds: float | None = None, device: str | None = None,
             allow_download: bool = False) -> ClassifyReport:
    """Zero-shot classification of clips by CLAP, refined with the graph's known and predicted facts
    (as `akg classify`). `clap` is a CLAP model folder (or a LAION-CLAP .pt checkpoint); default AKG_CLAP_MODEL."""
    from reasoning import classify as cl
    from reasoning.workflows import open_session

    if isinstance(clips, (str, Path)):
        clips = [clips]
    fusion_settings = _fusion(fusion, temperature)
    top_k = cl.DEFAULT_TOP_K if top_k is None else top_k
    spec = _encoder_spec(clap, device, allow_download)
    enrich, labels = _enrich(relations, top_m, template, base_template), labels or cl.DEFAULT_LABELS
    # The session (label set, KGE model, prompt bank) is kept with the graph's other warm answers, so
    # that a service's or a notebook's next clip neither reloads the model nor re-reads the graph.
    given = Path(labels)
    label_key = ("file", hashlib.sha256(given.read_bytes()).hexdigest()) if given.is_file() else labels
    key = ("classify session", label_key, spec, _stamp(spec.checkpoint or spec.model), enrich, kge_model, use_kge,
           _models_stamp(kg.settings, kge_model) if use_kge else None)
    session = kg._sessions.get(key, lambda: open_session(kg.graph, kg.settings, labels=labels, encoder_spec=spec,
                                                        enrich=enrich, kge_model=kge_model, use_kge=use_kge,
                                                        encoder=_encoder(spec)))
    results = cl.classify_clips(session, list(clips), fusion=fusion_settings, top_k=top_k, explain=explain,
                                max_seconds=cl.DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds)
    return ClassifyReport(results, cl.session_summary(session, fusion_settings, top_k))


def zeroshot_eval(kg: KnowledgeGraph, *, audio_dir: str | Path, meta: str | Path, clap: str | Path | None = None,
                  dataset: str | None = None, relations: str | Sequence[str] | None = None,
                  ablate_relations: Sequence[str | Sequence[str]] = (), ks: Sequence[int] | None = None,
                  top_m: int | None = None, template: str | None = None, base_template: str | None = None,
                  fusion: str = "lse", temperature: float | None = None, kge_model: str | None = None,
                  use_kge: bool = True, limit: int | None = None, max_seconds: float | None = None,
                  out_dir: str | Path | None = None, device: str | None = None,
                  allow_download: bool = False) -> Report:
    """Accuracy (single-label) or mAP (multi-label) of CLAP and of the refined CLAP over a labelled
    collection (as `akg zeroshot-eval`); writes the same report files under `out_dir`."""
    from reasoning.classify import DEFAULT_MAX_SECONDS
    from reasoning.prompts import EnrichSettings
    from reasoning.zeroshot import DEFAULT_KS, DEFAULT_OUT
    from reasoning.zeroshot import zeroshot_eval as run

    ablate = [EnrichSettings.parse_relations(r) if isinstance(r, str) else tuple(r) for r in ablate_relations]
    report = run(kg.graph, kg.settings, audio_dir=Path(audio_dir), meta=Path(meta), dataset=dataset,
                 encoder_spec=_encoder_spec(clap, device, allow_download),
                 enrich=_enrich(relations, top_m, template, base_template), ablate_relations=ablate,
                 ks=DEFAULT_KS if ks is None else ks, fusion=_fusion(fusion, temperature), kge_model=kge_model,
                 use_kge=use_kge, limit=limit, max_seconds=DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds,
                 out_dir=Path(out_dir) if out_dir is not None else DEFAULT_OUT)
    return Report(report, table="results")


# ---------------------------------------------------------------------------------------------
# Retrieval: collection indexes, knowledge-enhanced search, tagging, evaluation


def _granularities(granularities):
    from retrieval.knowledge import GRANULARITIES

    if granularities is None:
        return GRANULARITIES
    return tuple(g.strip() for g in granularities.split(",") if g.strip()) if isinstance(granularities, str) else tuple(granularities)


def _retrieval_fusion(fusion: str | None, temperature: float | None):
    from retrieval.search import DEFAULT_FUSION

    return _fusion(fusion or DEFAULT_FUSION.method, temperature)


def index(audio_dir: str | Path, *, name: str | None = None, clap: str | Path | None = None, workers: int = 1,
          ray: str | None = None, batch: int = 8, max_seconds: float | None = None, rebuild: bool = False,
          device: str | None = None, allow_download: bool = False, settings: Settings | None = None) -> Report:
    """Embed every clip under `audio_dir` into the vector index `name` (default: the folder's name) under
    AKG_HOME/indexes (as `akg index`): incremental, bad files reported in `errors`; `workers` local processes
    or `ray` ("auto" or a cluster address) give the same vectors as one process."""
    from reasoning.classify import DEFAULT_MAX_SECONDS
    from retrieval.workflows import index_collection

    spec = _encoder_spec(clap, device, allow_download)
    report = index_collection(settings or Settings.from_env(), Path(audio_dir), name=name, encoder=_encoder(spec),
                              spec=spec, workers=workers, ray=ray, batch=batch, rebuild=rebuild,
                              max_seconds=DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds)
    return Report(report, table="errors")


_INDEXES: dict = {}  # (AKG_HOME, index name) -> (the version CURRENT named, the loaded CollectionIndex)
_INDEXES_LOCK = threading.Lock()
MAX_INDEXES = 4


def _index_version(current: Path) -> tuple | None:
    """Which index a name holds now: the generation its CURRENT file names, and that generation's
    manifest as a file (a name removed and indexed again starts its generations at 1 again). None
    when it cannot be read: load_index then says what is wrong."""
    try:
        generation = current.read_text(encoding="utf-8").strip()
        st = (current.parent / generation / "manifest.json").stat()
    except (OSError, UnicodeDecodeError):
        return None
    return (generation, st.st_ino, st.st_mtime_ns, st.st_size)


def _collection_index(home: Path, name: str):
    """A collection index, loaded once per process and version: the next search reuses it (FAISS index,
    manifest, memory-mapped vectors) until `akg index` switches the name to a new generation, which the
    next search loads. At most MAX_INDEXES are kept."""
    from retrieval.store import load_index, require_index

    current = require_index(home, name)  # a bad name or a missing index: its error, before any loading
    version = _index_version(current)
    key = (str(home), name)
    with _INDEXES_LOCK:
        found = _INDEXES.get(key)
    if found is not None and version is not None and found[0] == version:
        return found[1]
    # Loaded after `version` was read, so it is that version or a newer one: kept under the older
    # version, it is loaded once more on the next search, never served stale.
    index = load_index(home, name)
    if version is not None:
        with _INDEXES_LOCK:
            _INDEXES.pop(key, None)
            _INDEXES[key] = (version, index)
            while len(_INDEXES) > MAX_INDEXES:
                _INDEXES.pop(next(iter(_INDEXES)))
    return index


@contextlib.contextmanager
def _retrieval_enricher(kg: KnowledgeGraph, spec, *, enrich, granularities, nearest: int, min_similarity: float,
                        kge_model: str | None, use_kge: bool):
    """What search and tag link and enrich with (retrieval.session.open_enricher: the entity table, the
    KGE model, each text's facts and embeddings), kept with the graph's warm answers like classify's
    session: until the graph changes, a stored model's card or the CLAP model changes. Shared by the
    calls of every thread: the enricher guards its own caches (retrieval.knowledge.Enricher)."""
    from retrieval.session import open_enricher

    key = ("retrieval enricher", spec, _stamp(spec.checkpoint or spec.model), enrich, tuple(granularities), nearest,
           min_similarity, kge_model, use_kge, _models_stamp(kg.settings, kge_model) if use_kge else None)
    yield kg._enrichers.get(key, lambda: open_enricher(
        kg.graph, kg.settings, _encoder(spec), enrich=enrich, kge_model=kge_model, use_kge=use_kge,
        granularities=granularities, nearest=nearest, min_similarity=min_similarity))


def search(kg: KnowledgeGraph, text: str | None = None, *, index: str | None = None, clip: str | Path | None = None,
           captions: str | Path | Sequence[str] | None = None, k: int = 10, clap: str | Path | None = None,
           fusion: str | None = None, temperature: float | None = None, relations: str | Sequence[str] | None = None,
           top_m: int | None = None, granularities: str | Sequence[str] | None = None, nearest: int = 2,
           min_similarity: float = 0.5, kge_model: str | None = None, use_kge: bool = True,
           max_seconds: float | None = None, device: str | None = None, allow_download: bool = False) -> Report:
    """Text to audio over an index (`text`, `index`) or audio to text over captions (`clip`, `captions`: a
    CSV or a list of strings), CLAP refined with the AKG (as `akg search`); each hit says what moved it.
    The index and what the graph adds are kept for the next search until the index is rebuilt or the
    graph or a model changes."""
    from reasoning.classify import DEFAULT_MAX_SECONDS
    from retrieval.workflows import read_captions
    from retrieval.workflows import search as run

    # What the caller named is checked before the CLAP model loads (seconds): the index, or the captions.
    if text is not None and index:
        _collection_index(kg.settings.home, index)
    if clip is not None and isinstance(captions, (str, Path)):
        captions = read_captions(Path(captions))
    spec = _encoder_spec(clap, device, allow_download)
    enrich = _enrich(relations, top_m, None, None)
    out = run(kg.graph, kg.settings, _encoder(spec), text=text, index=index,
              clip=Path(clip) if clip is not None else None, captions=captions, k=k,
              fusion=_retrieval_fusion(fusion, temperature), enrich=enrich,
              granularities=_granularities(granularities), nearest=nearest, min_similarity=min_similarity,
              kge_model=kge_model, use_kge=use_kge,
              max_seconds=DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds,
              load=_collection_index, enricher=functools.partial(_retrieval_enricher, kg, spec, enrich=enrich,
                                                                 kge_model=kge_model, use_kge=use_kge))
    return Report(out, table="hits")


def tag(kg: KnowledgeGraph, clips: str | Path | Sequence[str | Path], *, k: int = 10, clap: str | Path | None = None,
        fusion: str | None = None, temperature: float | None = None, relations: str | Sequence[str] | None = None,
        top_m: int | None = None, kge_model: str | None = None, use_kge: bool = True,
        max_seconds: float | None = None, device: str | None = None, allow_download: bool = False) -> Table:
    """Each clip's k best AKG entities (open vocabulary), refined with the graph, with each tag's parents and
    where it occurs (as `akg tag`); one row per clip and tag (a clip that cannot be read: a row with its error).
    What the graph adds is kept for the next call until the graph or a model changes."""
    from reasoning.classify import DEFAULT_MAX_SECONDS
    from retrieval.workflows import tag as run

    if isinstance(clips, (str, Path)):
        clips = [clips]
    spec = _encoder_spec(clap, device, allow_download)
    enrich = _enrich(relations, top_m, None, None)
    out = run(kg.graph, kg.settings, _encoder(spec), [Path(c) for c in clips], k=k,
              fusion=_retrieval_fusion(fusion, temperature), enrich=enrich, kge_model=kge_model, use_kge=use_kge,
              max_seconds=DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds,
              enricher=functools.partial(_retrieval_enricher, kg, spec, enrich=enrich, kge_model=kge_model,
                                         use_kge=use_kge))
    rows = [{"clip": o["clip"], "error": o["error"]} if "error" in o else {"clip": o["clip"], **t}
            for o in out for t in ([None] if "error" in o else o["tags"])]
    return Table(rows, ["clip", "rank", "entity", "score", "baseline_rank", "change", "parents", "occurs_in",
                        "moved_by", "error"])


def retrieval_eval(kg: KnowledgeGraph, *, audio_dir: str | Path, meta: str | Path, clap: str | Path | None = None,
                   relations: str | Sequence[str] | None = None, ablate_relations: Sequence[str | Sequence[str]] = (),
                   top_m: int | None = None, fusion: str | None = None, temperature: float | None = None,
                   kge_model: str | None = None, use_kge: bool = True, limit: int | None = None,
                   max_seconds: float | None = None, out_dir: str | Path | None = None, device: str | None = None,
                   allow_download: bool = False) -> Report:
    """R@1/5/10 and mAP@10 of CLAP and of the knowledge-enhanced CLAP on a Clotho or AudioCaps captions file,
    both directions and metric conventions, with ablations (as `akg retrieval-eval`); writes results.csv,
    report.md and retrieval.png under `out_dir`."""
    from reasoning.classify import DEFAULT_MAX_SECONDS
    from reasoning.prompts import EnrichSettings
    from retrieval.evaluation import DEFAULT_OUT
    from retrieval.evaluation import retrieval_eval as run

    spec = _encoder_spec(clap, device, allow_download)
    ablate = [EnrichSettings.parse_relations(r) if isinstance(r, str) else tuple(r) for r in ablate_relations]
    report = run(kg.graph, kg.settings, _encoder(spec), audio_dir=Path(audio_dir), meta=Path(meta),
                 enrich=_enrich(relations, top_m, None, None), ablate_relations=ablate,
                 fusion=_retrieval_fusion(fusion, temperature), kge_model=kge_model, use_kge=use_kge, limit=limit,
                 max_seconds=DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds,
                 out_dir=Path(out_dir) if out_dir is not None else DEFAULT_OUT)
    return Report(report, table="results")
