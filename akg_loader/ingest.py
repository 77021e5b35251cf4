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

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from akg import queries
from akg.graph import Graph
from akg_loader.tsv import ParsedFile

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
        status = max(old["status"], new.status, key=STATUS_RANK.__getitem__)
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
            slot = by_relation[row.relation].setdefault((row.head, row.tail), Incoming())
            first_seen = not slot.files
            slot.sources.add(parsed.source)
            slot.files.add(parsed.path.name)
            slot.verdict = slot.verdict or row.verdict
            slot.status = row.status if first_seen else max(slot.status, row.status, key=STATUS_RANK.__getitem__)
            if parsed.split == "test":
                slot.split = "test"
    return by_relation


def _ingest_batch(run, relation: str, batch: list[tuple[tuple[str, str], Incoming]], now: str) -> tuple[int, int, int, int, int]:
    """One transaction's work; returns (created, updated, unchanged, entities_created, entities_existing)."""
    names = sorted({n for (h, t), _ in batch for n in (h, t)})
    existing_names = set(run(queries.get("ingest_existing_entities"), {"names": names})[0]["names"])
    new_names = [n for n in names if n not in existing_names]
    if new_names:
        run(queries.get("ingest_create_entities"), {"names": new_names, "now": now})
    keys = [{"head": h, "tail": t} for (h, t), _ in batch]
    found = run(queries.get("ingest_existing_triples"), {"keys": keys}, relation)[0]["triples"]
    old = {(r["head"], r["tail"]): r["props"] for r in found}
    creates, updates = [], []
    for (head, tail), incoming in batch:
        before = old.get((head, tail))
        props = merge(relation, before, incoming)
        if before is not None and all(before.get(k) == props.get(k) for k in PROVENANCE_KEYS):
            continue
        props["updated_at"] = now
        if before is None:
            props["created_at"] = now
            creates.append({"head": head, "tail": tail, "props": props})
        else:
            updates.append({"head": head, "tail": tail, "props": props})
    # CREATE, not MERGE: this transaction has just seen that these triples do not exist.
    if creates:
        run(queries.get("ingest_create_triples"), {"rows": creates}, relation)
    if updates:
        run(queries.get("ingest_update_triples"), {"rows": updates}, relation)
    return len(creates), len(updates), len(batch) - len(creates) - len(updates), len(new_names), len(existing_names)


def ingest(graph: Graph, files: Sequence[ParsedFile], *, batch_size: int = 5000,
           progress: Callable[[int], None] | None = None) -> IngestSummary:
    """Write the parsed files into the graph. Rejected rows are the caller's to report."""
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
    seen_entities: set[str] = set()
    for relation in sorted(by_relation):
        items = sorted(by_relation[relation].items())
        for i in range(0, len(items), batch_size):
            batch = items[i:i + batch_size]
            c, u, n, ec, _ = graph.write_unit(lambda run: _ingest_batch(run, relation, batch, now),
                                              name=f"ingest ({relation})")
            summary.triples_created += c
            summary.triples_updated += u
            summary.triples_unchanged += n
            summary.entities_created += ec
            seen_entities.update(x for (h, t), _ in batch for x in (h, t))
            if progress:
                progress(len(batch))
    summary.triples = sum(len(v) for v in by_relation.values())
    summary.entities_existing = len(seen_entities) - summary.entities_created
    summary.seconds = time.perf_counter() - started
    return summary


def write_rejects(files: Sequence[ParsedFile], path: Path) -> int:
    """Write every rejected row to a TSV (file, line, problem, text); return how many."""
    rows = [r for f in files for r in f.rejected]
    if not rows:
        return 0
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        out.write("file\tline\tproblem\ttext\n")
        for r in rows:
            clean = r.text.replace("\t", "\\t").replace("\r", "\\r").replace("\x00", "\\0")
            out.write(f"{r.file}\t{r.line}\t{r.problem}\t{clean}\n")
    tmp.replace(path)
    return len(rows)
