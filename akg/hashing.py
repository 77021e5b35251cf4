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


# The graph's version: a hash of the *set* of accepted triples that can be updated one triple at a
# time. Each triple's sha256 is read as a 256-bit number and the version is their sum modulo 2^256
# (an additive multiset hash), so a curation change that accepts or un-accepts a few triples moves
# the version in O(changes) instead of re-reading every triple, and the result is exactly what a
# full recomputation gives. The empty graph's version is all zeros.
_MODULUS = 1 << 256


def _triple_number(triple: Sequence[str]) -> int:
    return int.from_bytes(hashlib.sha256("\t".join(triple).encode("utf-8")).digest(), "big")


def set_version(triples: Iterable[Sequence[str]]) -> str:
    """The version of a set of (head, relation, tail) triples (duplicates counted once)."""
    return format(sum(_triple_number(t) for t in {tuple(t) for t in triples}) % _MODULUS, "064x")


def shift_version(version: str, *, added: Iterable[Sequence[str]] = (), removed: Iterable[Sequence[str]] = ()) -> str:
    """The version after `added` joined and `removed` left the set (each must really have)."""
    n = int(version, 16) + sum(_triple_number(t) for t in added) - sum(_triple_number(t) for t in removed)
    return format(n % _MODULUS, "064x")


def short(version: str) -> str:
    """How versions are shown: the first 12 hex digits (enough to tell thousands apart)."""
    return version[:12]
