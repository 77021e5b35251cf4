"""The bulk decisions file of `akg curate apply`: read and checked whole before anything is written.

Tab-separated, UTF-8, one decision per line; blank lines and lines starting with # are skipped.
Columns: head, relation, tail, decision (accept|reject|edit|add), then optionally new_tail (for
edit), note, rev (the revision the decision was made against, as `akg curate list` shows it; a
triple that has moved since is a conflict). A first line naming the columns (starting with
`head`) is a header and may put the optional columns in any order.
"""

from __future__ import annotations

from pathlib import Path

from akg.errors import InputError
from akg.files import read_input
from akg.names import normalise_name
from curation.decide import ACTIONS, Decision
from curation.triples import make_triple, show

REQUIRED = ("head", "relation", "tail", "decision")
OPTIONAL = ("new_tail", "note", "rev")


def _columns(header: list[str], file: str) -> list[str]:
    cols = [c.strip().lower() for c in header]
    unknown = [c for c in cols if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise InputError(f"unknown column(s) {', '.join(map(repr, unknown))}; columns are "
                         f"{', '.join(REQUIRED + OPTIONAL)}", file=file, line=1)
    missing = [c for c in REQUIRED if c not in cols]
    if missing or len(set(cols)) != len(cols):
        raise InputError(f"the header must name {', '.join(REQUIRED)} once each", file=file, line=1)
    return cols


def read_decisions(path: Path) -> list[Decision]:
    file = str(path)
    try:
        text = read_input(Path(path), "a decisions file").decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start})", file=file) from None
    cols = list(REQUIRED + OPTIONAL)
    decisions: list[Decision] = []
    seen: dict[tuple, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = raw.split("\t")
        if number == 1 and fields[0].strip().lower() == "head":
            cols = _columns(fields, file)
            continue
        if len(fields) < len(REQUIRED) or len(fields) > len(cols):
            raise InputError(f"expected {len(REQUIRED)} to {len(cols)} tab-separated columns "
                             f"({', '.join(cols)}), found {len(fields)}", file=file, line=number)
        row = dict(zip(cols, (f.strip() for f in fields)))
        decisions.append(_decision(row, file, number))
        key = decisions[-1].triple
        if key in seen:
            raise InputError(f"{show(key)} was already decided on line {seen[key]}", file=file, line=number)
        seen[key] = number
    if not decisions:
        raise InputError("no decisions in the file", file=file)
    return decisions


def _decision(row: dict, file: str, line: int) -> Decision:
    action = row["decision"].lower()
    if action not in ACTIONS:
        raise InputError(f"unknown decision {row['decision']!r}: use one of {', '.join(ACTIONS)}", file=file, line=line)
    triple = make_triple(row["head"], row["relation"], row["tail"], file=file, line=line)
    new_tail = normalise_name(row.get("new_tail") or "") or None
    if action == "edit" and not new_tail:
        raise InputError("an edit needs the new tail (column new_tail)", file=file, line=line)
    if action != "edit" and new_tail:
        raise InputError(f"new_tail is only for edit, not {action}", file=file, line=line)
    rev = row.get("rev") or None
    if rev is not None and not rev.isdigit():
        raise InputError(f"rev must be a whole number, got {rev!r}", file=file, line=line)
    return Decision(action, triple, new_tail, row.get("note") or None, int(rev) if rev else None, file, line)
