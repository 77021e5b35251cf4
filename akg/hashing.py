"""Content hashes of triple sets: the graph's version stamp on exports and trained models.

The hash of a set of rows is the sha256 of their TSV text, sorted, one row per line, so an
exported file's own sha256 equals the hash recorded beside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def tsv_lines(rows: Iterable[Sequence[str]]) -> list[str]:
    return sorted("\t".join(row) + "\n" for row in rows)


def content_hash(rows: Iterable[Sequence[str]]) -> str:
    h = hashlib.sha256()
    for line in tsv_lines(rows):
        h.update(line.encode("utf-8"))
    return h.hexdigest()
