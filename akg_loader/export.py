"""Triples out of the graph: deterministic TSV for PyKEEN, with the graph's content hash beside it.

`akg export -o train.tsv` writes `train.tsv` (head<TAB>relation<TAB>tail, sorted by code point,
no header: PyKEEN's format) and `train.tsv.meta.json` with the hash of exactly those rows (equal to
the file's own sha256), the filters, and the graph's version at export time (akg.graph_state: set_version
of the accepted triples, as `akg versions` lists it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from akg.files import commit, stage
from akg.graph import Graph
from akg.graph_state import read_state, version_of
from akg.hashing import content_hash, tsv_lines

SPLITS = ("train", "test")
STATUSES = ("accepted", "rejected", "pending")


@dataclass(frozen=True)
class Export:
    triples: list[tuple[str, str, str]]   # sorted
    sha256: str                           # content hash of `triples`
    graph_version: str                    # the graph's version: set_version of its accepted triples
    split: str | None
    status: str | None

    def meta(self, **extra) -> dict:
        return {"format": "akg-export/1", "rows": len(self.triples), "sha256": self.sha256,
                "graph_version": self.graph_version, "split": self.split, "status": self.status,
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}


def export_triples(graph: Graph, *, split: str | None = "train", status: str | None = "accepted") -> Export:
    """The triples with this split and status (None: any), and the graph's version, from one read."""
    state = read_state(graph)
    triples = sorted({(h, r, t) for h, r, t, st, sp in state
                      if (split is None or sp == split) and (status is None or st == status)})
    return Export(triples, content_hash(triples), version_of(state), split, status)


def split_triples(graph: Graph, status: str = "accepted") -> tuple[Export, Export]:
    """The train and test exports of one consistent read (for training and evaluation)."""
    state = read_state(graph)
    version = version_of(state)
    out = []
    for split in ("train", "test"):
        triples = sorted({(h, r, t) for h, r, t, st, sp in state if sp == split and st == status})
        out.append(Export(triples, content_hash(triples), version, split, status))
    return out[0], out[1]


def write_export(export: Export, path: Path, **meta) -> Path:
    """Write the TSV and its sidecar; return the sidecar's path.

    Both are written to temporary files first and then renamed, sidecar last, so a reader never
    finds the new TSV described by nothing, and a failure leaves the old pair as it was.
    """
    path = Path(path)
    sidecar = path.with_name(path.name + ".meta.json")
    staged = [stage(path, "".join(tsv_lines(export.triples))),
              stage(sidecar, json.dumps(export.meta(**meta), indent=2, ensure_ascii=False) + "\n")]
    commit(staged)
    return sidecar
