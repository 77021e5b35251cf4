"""Triples out of the graph: deterministic TSV for PyKEEN, with the graph's content hash beside it.

`akg export -o train.tsv` writes `train.tsv` (head<TAB>relation<TAB>tail, sorted by code point,
no header: PyKEEN's format) and `train.tsv.meta.json` with the hash of exactly those rows (equal to
the file's own sha256), the filters, and the version hash of the whole graph at export time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from akg import queries
from akg.graph import Graph
from akg.hashing import content_hash, tsv_lines

SPLITS = ("train", "test")
STATUSES = ("accepted", "rejected", "pending")


@dataclass(frozen=True)
class Export:
    triples: list[tuple[str, str, str]]   # sorted
    sha256: str                           # content hash of `triples`
    graph_sha256: str                     # version of the whole graph (every triple, status, split)
    split: str | None
    status: str | None

    def meta(self, **extra) -> dict:
        return {"format": "akg-export/1", "rows": len(self.triples), "sha256": self.sha256,
                "graph_sha256": self.graph_sha256, "split": self.split, "status": self.status,
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}


def graph_version(graph: Graph) -> str:
    """Content hash of every triple with its status and split: changes with any curation or ingest."""
    rows = graph.read(queries.get("graph_state_triples"))
    return content_hash((r["head"], r["relation"], r["tail"], r["status"] or "", r["split"] or "") for r in rows)


def export_triples(graph: Graph, *, split: str | None = "train", status: str | None = "accepted") -> Export:
    rows = graph.read(queries.get("export_triples"), {"split": split, "status": status})
    triples = sorted({(r["head"], r["relation"], r["tail"]) for r in rows})
    return Export(triples, content_hash(triples), graph_version(graph), split, status)


def write_export(export: Export, path: Path, **meta) -> Path:
    """Write the TSV and its sidecar atomically; return the sidecar's path."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".meta.json")
    for target, text in ((path, "".join(tsv_lines(export.triples))),
                         (sidecar, json.dumps(export.meta(**meta), indent=2, ensure_ascii=False) + "\n")):
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        tmp.replace(target)
    return sidecar
