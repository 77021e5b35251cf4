"""Writing parsed AKG rows into the graph, batch by batch, with provenance merged.

Each batch (one relation, up to `batch_size` triples) is one transaction: it reads what already
exists, merges provenance in Python, creates the missing entities and writes only the triples
that are new or changed. So a batch is all-or-nothing, a run killed half way leaves whole batches
only, and the rerun finds the written ones unchanged and completes the rest. Running the same
file twice changes nothing (timestamps included) and the summary says so.

Provenance on each relationship: `relation` (plain words), `sources` (raw/pruned/test...),
`source_files`, `verdict` (the LLM's yes/no, when a file had one), `status`
(accepted/rejected/pending), `split` (train/test), `created_at`, `updated_at`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from akg import changelog, queries
from akg.errors import GraphError, InputError, Interrupted
from akg.files import write_atomic
from akg.graph import Graph
from akg.names import name_problem, shown
from akg_loader.tsv import ParsedFile, Row

logger = logging.getLogger(__name__)

STATUS_RANK = {"rejected": 0, "pending": 1, "accepted": 2}
PROVENANCE_KEYS = ("relation", "sources", "source_files", "verdict", "status", "split")


@dataclass
class Incoming:
    """What this run's files say about one triple."""
    sources: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    verdict: str | None = None
    status: str = "rejected"
    split: str = "train"


def stronger(a: str, b: str) -> str:
    """accepted > pending > rejected: a triple is as accepted as its most accepting source."""
    return max(a, b, key=STATUS_RANK.__getitem__)


def merge(relation: str, old: dict | None, new: Incoming) -> dict:
    """The provenance a triple should have after this run.

    Sources and files are unions; the first LLM verdict stays; a triple is accepted if any source
    accepts it (pruned is the curated 'Yes.' subset of raw); a status set by a curator
    (`curated_at`) is never overridden by ingest; a triple seen in a test file stays in test.
    """
    old = old or {}
    status = new.status
    if old.get("curated_at"):
        status = old["status"]
    elif old.get("status"):
        status = stronger(old["status"], new.status)
    merged = {
        "relation": relation,
        "sources": sorted(set(old.get("sources") or []) | new.sources),
        "source_files": sorted(set(old.get("source_files") or []) | new.files),
        "verdict": old.get("verdict") or new.verdict,
        "status": status,
        "split": "test" if "test" in (old.get("split"), new.split) else "train",
    }
    return {k: v for k, v in merged.items() if v is not None}


@dataclass
class IngestSummary:
    files: list[dict] = field(default_factory=list)
    triples: int = 0                 # distinct triples in the input
    triples_created: int = 0
    triples_updated: int = 0
    triples_unchanged: int = 0
    entities_created: int = 0
    entities_existing: int = 0
    rows_rejected: int = 0
    duplicates: int = 0
    rejects_file: str | None = None
    moved_to_test: int = 0           # training triples a test file moved to the test split (--move-split)
    change_id: str | None = None     # the change-log entry of this run (None when nothing changed)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.triples_created or self.triples_updated or self.entities_created)

    def as_dict(self) -> dict:
        d = dict(vars(self))
        d["changed"] = self.changed
        return d


def collect(files: Sequence[ParsedFile]) -> dict[str, dict[tuple[str, str], Incoming]]:
    """Group every distinct triple of the input by relation: {relation: {(head, tail): Incoming}}."""
    by_relation: dict[str, dict[tuple[str, str], Incoming]] = defaultdict(dict)
    for parsed in files:
        for row in parsed.rows:
            triples = by_relation[row.relation]
            slot = triples.get((row.head, row.tail))
            if slot is None:
                slot = triples[(row.head, row.tail)] = Incoming()
            slot.sources.add(parsed.source)
            slot.files.add(parsed.path.name)
            slot.verdict = slot.verdict or row.verdict
            slot.status = stronger(slot.status, row.status)
            if parsed.split == "test":
                slot.split = "test"
    return by_relation


@dataclass
class Batch:
    """One transaction's worth of triples of one relation, prepared outside the transaction."""
    relation: str
    items: list[tuple[tuple[str, str], Incoming]]
    names: list[str]
    fresh: list[dict]          # the provenance of each triple if it turns out to be new


def prepare(relation: str, items: list[tuple[tuple[str, str], Incoming]]) -> Batch:
    names = sorted({n for (h, t), _ in items for n in (h, t)})
    return Batch(relation, items, names, [merge(relation, None, incoming) for _, incoming in items])


def _ingest_batch(run, batch: Batch, now: str, log: ChangeLog) -> tuple[int, int, int, int, bool]:
    """One transaction's work; returns (created, updated, unchanged, entities_created, logged)."""
    relation = batch.relation
    run(queries.get("ingest_lock"), {"now": now})
    state = changelog.lock(run, now)
    existing_names = set(run(queries.get("ingest_existing_entities"), {"names": batch.names})[0]["names"])
    new_names = [n for n in batch.names if n not in existing_names]
    if new_names:
        run(queries.get("ingest_create_entities"), {"names": new_names, "now": now})
    # A triple can only exist already if both its entities did: look up just those.
    keys = [{"head": h, "tail": t} for (h, t), _ in batch.items if h in existing_names and t in existing_names]
    old = {}
    if keys:
        found = run(queries.get("triple_properties"), {"keys": keys}, relation)[0]["triples"]
        old = {(r["head"], r["tail"]): r["props"] for r in found}
    creates, updates, items = [], [], []
    for ((head, tail), incoming), fresh in zip(batch.items, batch.fresh):
        before = old.get((head, tail))
        if before is None:
            props = {**fresh, "created_at": now, "updated_at": now}
            creates.append({"head": head, "tail": tail, "props": props})
        else:
            props = merge(relation, before, incoming)
            if all(before.get(k) == props.get(k) for k in PROVENANCE_KEYS):
                continue
            # `rev`: the sequence number of the triple's last write, which a curator's pending
            # decision or revert checks (curation/commit.py); this batch is the next change.
            props = {**props, "updated_at": now, "rev": state["seq"] + 1}
            updates.append({"head": head, "tail": tail, "props": props})
        if changelog.is_accepted(before) != changelog.is_accepted(props):
            # Only the status: what versions, diffs and a triple's history need from an ingest
            # (which is never reverted), at a fraction of the bytes of whole property maps.
            items.append(changelog.Item(head, relation, tail, before and {"status": before.get("status")},
                                        {"status": props["status"]}))
    if creates:
        run(queries.get("ingest_create_triples"), {"rows": creates}, relation)
    if updates:
        run(queries.get("ingest_update_triples"), {"rows": updates}, relation)
    wrote = bool(creates or updates)
    if wrote:
        # The run's Change exists from its first writing batch and counts every triple written, so
        # a run killed half way shows what it touched; the items are the triples whose
        # accepted-ness changed, what versions and diffs replay.
        changelog.record(run, state, change=None if log.recorded else log.change, change_id=log.change_id,
                         items=items, now=now, checkpoint=None, touched=len(creates) + len(updates))
    return (len(creates), len(updates), len(batch.items) - len(creates) - len(updates), len(new_names), wrote)


def _write_with_retry(graph: Graph, batch: Batch, now: str, log: ChangeLog, attempts: int = 8):
    """One batch's transaction, tried again when a concurrent ingest created the same entity first.

    Neo4j serialises ingests on the lock node; ArcadeDB's optimistic transactions only find the
    clash at commit, as a unique-key violation. The retry re-reads the graph, so it then sees the
    other ingest's entities and triples and writes only what is still missing.
    """
    for attempt in range(attempts):
        try:
            return graph.write_unit(lambda run: _ingest_batch(run, batch, now, log), name=f"ingest ({batch.relation})")
        except GraphError as e:
            if "Duplicated key" not in str(e) or attempt == attempts - 1:
                raise
            # Said (at INFO) so that a test, or someone watching a busy server, can see the retry happen.
            logger.info("ingest (%s): a concurrent ingest created the same key first (%s); retrying the batch "
                        "(attempt %d of %d)", batch.relation, e, attempt + 2, attempts)
            time.sleep(0.05 * (attempt + 1))


def check_names(files: Sequence[ParsedFile]) -> None:
    """Every name keeps the rules of akg.names (read_file already rejected rows that break them; this
    guards callers that build rows themselves): the first bad one is refused before anything is written."""
    for parsed in files:
        for row in parsed.rows:
            for role, name in (("head", row.head), ("tail", row.tail)):
                problem = name_problem(name)
                if problem:
                    raise InputError(f"{role} {shown(name)}: {problem}; nothing was written",
                                     file=str(parsed.path), line=row.line)


def split_moves(graph: Graph, files: Sequence[ParsedFile]) -> list[tuple[ParsedFile, Row]]:
    """Rows of test files whose triple the graph holds in the training split: ingesting them would
    move a triple that models were trained on into the test split."""
    wanted: dict[str, dict[tuple[str, str], tuple[ParsedFile, Row]]] = defaultdict(dict)
    for parsed in files:
        if parsed.split == "test":
            for row in parsed.rows:
                wanted[row.relation].setdefault((row.head, row.tail), (parsed, row))
    moves = []
    for relation, rows in sorted(wanted.items()):
        keys = [{"head": h, "tail": t} for h, t in rows]
        for start in range(0, len(keys), 5000):
            found = graph.read(queries.get("triple_properties"), {"keys": keys[start:start + 5000]}, relation=relation)
            moves += [rows[(r["head"], r["tail"])] for r in found[0]["triples"] if r["props"].get("split") != "test"]
    return sorted(moves, key=lambda m: (str(m[0].path), m[1].line))


def ingest(graph: Graph, files: Sequence[ParsedFile], *, batch_size: int = 5000,
           progress: Callable[[int], None] | None = None, by: str | None = None,
           move_split: bool = False, stop: Callable[[], bool] | None = None) -> IngestSummary:
    """Write the parsed files into the graph. Rejected rows are the caller's to report.

    A test file's triple that the graph holds as a training triple is refused (nothing is written)
    unless `move_split`: models were trained on it, so moving it silently would leak test data.
    """
    check_names(files)
    started = time.perf_counter()
    summary = IngestSummary()
    for parsed in files:
        summary.files.append({"file": str(parsed.path), "source": parsed.source, "split": parsed.split,
                              "layout": parsed.layout, "rows": len(parsed.rows), "rejected": len(parsed.rejected),
                              "duplicates": parsed.duplicates})
        summary.rows_rejected += len(parsed.rejected)
        summary.duplicates += parsed.duplicates
        summary.notes.extend(parsed.notes)
    by_relation = collect(files)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    plan = [(relation, items[i:i + batch_size])
            for relation in sorted(by_relation)
            for items in [sorted(by_relation[relation].items())]
            for i in range(0, len(items), batch_size)]
    seen_entities: set[str] = set()
    files_named = ", ".join(sorted({p.path.name for p in files}))
    log = ChangeLog(changelog.new_change_id(), {"action": "ingest", "by": by or changelog.who(),
                                                "note": f"ingest of {files_named}"})
    with graph.exclusive("ingest"):
        moves = split_moves(graph, files)
        if moves and not move_split:
            parsed, row = moves[0]
            more = f" and {len(moves) - 1} more" if len(moves) > 1 else ""
            raise InputError(f"{row.head}|{row.relation}|{row.tail} is in the graph's training split; this test file "
                             f"would move it{more} to the test split, where models trained on it would be scored on "
                             "it. Nothing was written; ask for the move explicitly (move_split, `akg ingest --move-split`) to move them", file=str(parsed.path), line=row.line)
        summary.moved_to_test = len(moves)
        changelog.ensure_state(graph)
        changelog.checkpoint_interrupted(graph)
        _write_plan(graph, plan, now, summary, seen_entities, progress, log, stop)
        summary.triples = sum(len(v) for v in by_relation.values())
        summary.entities_existing = len(seen_entities) - summary.entities_created
        if summary.changed:
            _close_log(graph, log, summary)
    summary.change_id = log.change_id if summary.changed else None
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass
class ChangeLog:
    """This run's Change node: created with its first writing batch; each batch adds its count."""
    change_id: str
    change: dict
    recorded: bool = False


def _close_log(graph: Graph, log: ChangeLog, summary: IngestSummary) -> None:
    counts = json.dumps({k: getattr(summary, k) for k in (
        "triples", "triples_created", "triples_updated", "triples_unchanged", "entities_created")})
    if not log.recorded:  # nothing's accepted-ness changed: still say that the ingest happened
        def work(run):
            stamp = changelog.now_iso()
            changelog.record(run, changelog.lock(run, stamp), change=log.change, change_id=log.change_id,
                             items=[], now=stamp, checkpoint=None)
        graph.write_unit(work, name="ingest change log")
    graph.write(queries.get("change_set_summary"), {"id": log.change_id, "summary": counts,
                                                    "triples": summary.triples_created + summary.triples_updated})
    changelog.checkpoint(graph, change_id=log.change_id, cause=log.change["note"])


def _write_plan(graph, plan, now, summary, seen_entities, progress, log, stop=None) -> None:
    for done, (relation, items) in enumerate(plan):
        # asked between batches, never inside one: a stop never leaves a transaction half-read
        if stop is not None and stop():
            raise Interrupted(f"interrupted: stopped after {done} of {len(plan)} batches "
                              f"({summary.triples_created} triples created); the graph is consistent and the same "
                              "ingest again completes it")
        batch = prepare(relation, items)
        c, u, n, ec, logged = _write_with_retry(graph, batch, now, log)
        log.recorded = log.recorded or logged
        summary.triples_created += c
        summary.triples_updated += u
        summary.triples_unchanged += n
        summary.entities_created += ec
        seen_entities.update(batch.names)
        if progress:
            progress(len(items))


def write_rejects(files: Sequence[ParsedFile], path: Path) -> int:
    """Write every rejected row to a TSV (file, line, problem, text); return how many."""
    rows = [r for f in files for r in f.rejected]
    if not rows:
        return 0
    lines = ["file\tline\tproblem\ttext\n"]
    for r in rows:
        clean = r.text.replace("\t", "\\t").replace("\r", "\\r").replace("\x00", "\\0")
        lines.append(f"{r.file}\t{r.line}\t{r.problem}\t{clean}\n")
    write_atomic(Path(path), "".join(lines))
    return len(rows)
