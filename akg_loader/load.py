"""Loading triple files into the graph, as `akg ingest` and `akg.open().ingest()` both do.

Every file is read and checked before anything is written (akg_loader.tsv); rows that cannot be
used are skipped, counted and written to a rejects file (or, with `strict`, the whole run is
refused); then akg_loader.ingest writes the rest. The summary carries the files' notes (such as a
header that was guessed) and, when rows were rejected, where they went.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from akg.graph import Graph
from akg_loader.ingest import IngestSummary, ingest, write_rejects
from akg_loader.tsv import ParsedFile, read_file


def read_files(paths: Sequence[str | Path], *, source: str | None = None, strict: bool = False) -> list[ParsedFile]:
    if not paths:
        from akg.errors import InputError

        raise InputError("no files given: name at least one TSV file")
    return [read_file(Path(p), source, strict=strict) for p in paths]


def rejected_rows(parsed: Sequence[ParsedFile]) -> list:
    return [r for p in parsed for r in p.rejected]


def load_files(graph: Graph, paths: Sequence[str | Path], *, source: str | None = None, strict: bool = False,
               rejects: str | Path | None = None, batch_size: int = 5000, move_split: bool = False,
               progress: Callable[[int], None] | None = None, parsed: Sequence[ParsedFile] | None = None,
               stop: Callable[[], bool] | None = None) -> IngestSummary:
    """Read (unless `parsed` is given), write the rejects, ingest. Rejects go to `rejects`, by default
    `<first file's stem>.rejects.tsv` in the current folder."""
    parsed = list(parsed) if parsed is not None else read_files(paths, source=source, strict=strict)
    reject_path = None
    if rejected_rows(parsed):
        reject_path = Path(rejects) if rejects else Path(f"{Path(paths[0]).stem}.rejects.tsv")
        write_rejects(parsed, reject_path)
    summary = ingest(graph, parsed, batch_size=batch_size, progress=progress, move_split=move_split, stop=stop)
    summary.rejects_file = str(reject_path) if reject_path else None
    return summary
