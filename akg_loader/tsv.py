"""Reading AKG triple files, with every problem named by file, line and cause.

Two layouts are accepted:
- the AKG's own 5-column TSV with the header `label_name head relation tail response`;
- PyKEEN's plain 3-column, headerless `head relation tail` TSV.

Names are normalised as the upstream preprocessing does (underscores to spaces, lower case,
trimmed; other characters, `café` included, are kept; Unicode NFC) and checked against the rules
of `akg.names` (length, control and invisible characters, `|`): a bad name rejects its row. A file-level problem (missing, a
directory, empty, wrong header) raises `InputError`; a bad row is collected as `Rejected` so the
caller can skip it or, with `strict`, refuse the whole file before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from akg.errors import InputError
from akg.files import read_input
from akg.names import name_problem, normalise_name, shown
from akg.relations import TYPE_OF, RELATIONS, normalise_relation, suggest

AKG_HEADER = ("label_name", "head", "relation", "tail", "response")
TRIPLES_HEADER = ("head", "relation", "tail")
KNOWN_SOURCES = ("pruned", "raw", "test")  # checked in this order against the file name
_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")  # fullmatch: `$` would let a final "\n" through
VERDICTS = {"yes": "yes", "no": "no"}


@dataclass(frozen=True)
class Row:
    line: int
    head: str
    relation: str
    tail: str
    verdict: str | None  # "yes", "no", or None when the layout has no verdict

    @property
    def key(self) -> tuple[str, str, str]:
        return self.head, self.relation, self.tail

    @property
    def status(self) -> str:
        """Curation status on arrival: an LLM 'No.' is rejected; everything else is accepted."""
        return "rejected" if self.verdict == "no" else "accepted"


@dataclass(frozen=True)
class Rejected:
    file: str
    line: int
    problem: str
    text: str


@dataclass
class ParsedFile:
    path: Path
    source: str
    layout: str                     # "akg" or "triples"
    rows: list[Row] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0             # rows repeating an earlier row of the same file
    notes: list[str] = field(default_factory=list)

    @property
    def split(self) -> str:
        return "test" if self.source == "test" else "train"


def infer_source(path: Path, source: str | None) -> str:
    if source is not None:
        source = source.strip().lower()
        if not _SOURCE_NAME.fullmatch(source):
            raise InputError(f"source name {source!r}: use a short lower-case name such as raw, pruned or test")
        return source
    stem = path.name.lower()
    for known in KNOWN_SOURCES:
        # a whole word of the name ('AKG_test.tsv'), never part of one ('latest.tsv', 'straw.tsv')
        if re.search(rf"(?<![a-z]){known}(?![a-z])", stem):
            return known
    raise InputError("cannot tell the source from the file name: give it (raw, pruned, test or a name of yours; --source on the command line)",
                     file=str(path))


def _decode(raw: bytes, file: str, lineno: int) -> tuple[str | None, str | None]:
    nul = raw.find(b"\x00")
    if nul >= 0:
        return None, f"NUL byte at column {nul + 1}"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"


def read_file(path: str | Path, source: str | None = None, *, strict: bool = False) -> ParsedFile:
    path = Path(path)
    name = str(path)
    data = read_input(path, "a TSV file")
    if not data.strip():
        raise InputError("the file is empty", file=name)
    src = infer_source(path, source)

    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    crlf_lines = [i + 1 for i, raw in enumerate(lines) if raw.endswith(b"\r")]
    if crlf_lines:
        note = f"{name}, line {crlf_lines[0]}: CRLF (Windows) line ends in {len(crlf_lines)} line(s)"
        if strict:
            raise InputError("CRLF (Windows) line ends; convert the file to LF line ends (or drop --strict)",
                             file=name, line=crlf_lines[0])
        lines = [raw[:-1] if raw.endswith(b"\r") else raw for raw in lines]
    first, problem = _decode(lines[0], name, 1)
    if problem:
        raise InputError(problem, file=name, line=1)
    fields = tuple(f.strip().lower() for f in first.split("\t"))
    if fields == AKG_HEADER:
        layout, width, start = "akg", 5, 1
    elif fields == TRIPLES_HEADER:
        layout, width, start = "triples", 3, 1
    elif len(fields) == 3:
        layout, width, start = "triples", 3, 0
    else:
        raise InputError(
            f"unrecognised header {first!r}: expected the AKG header 'label_name<TAB>head<TAB>relation<TAB>tail<TAB>response' "
            "or a headerless head<TAB>relation<TAB>tail file", file=name, line=1)

    parsed = ParsedFile(path=path, source=src, layout=layout)
    if crlf_lines:
        parsed.notes.append(note + " were read as LF")
    seen: dict[tuple[str, str, str], int] = {}  # key -> index in parsed.rows
    columns = AKG_HEADER if layout == "akg" else TRIPLES_HEADER

    def reject(lineno: int, problem: str, raw: bytes) -> None:
        parsed.rejected.append(Rejected(name, lineno, problem, raw.decode("utf-8", "replace")))

    for index in range(start, len(lines)):
        lineno, raw = index + 1, lines[index]
        if not raw.strip():
            continue  # blank lines carry nothing
        text, problem = _decode(raw, name, lineno)
        if problem:
            reject(lineno, problem, raw)
            continue
        parts = text.split("\t")
        if len(parts) != width:
            reject(lineno, f"expected {width} tab-separated columns, found {len(parts)}", raw)
            continue
        values = dict(zip(columns, parts))
        head, tail = normalise_name(values["head"]), normalise_name(values["tail"])
        empty = [c for c in columns if not (head if c == "head" else tail if c == "tail" else values[c].strip())]
        if empty:
            reject(lineno, f"empty {', '.join(repr(c) for c in empty)} field", raw)
            continue
        bad = [f"{c} {shown(values[c])}: {p}" for c, p in (("head", name_problem(head)), ("tail", name_problem(tail))) if p]
        if bad:
            reject(lineno, "; ".join(bad), raw)
            continue
        relation = normalise_relation(values["relation"])
        if relation not in TYPE_OF:
            reject(lineno, f"unknown relation {values['relation']!r}{suggest(relation, RELATIONS)}", raw)
            continue
        verdict = None
        if layout == "akg":
            verdict = VERDICTS.get(values["response"].strip().lower().rstrip("."))
            if verdict is None:
                reject(lineno, f"response must be 'Yes.' or 'No.', found {values['response']!r}", raw)
                continue
        row = Row(lineno, head, relation, tail, verdict)
        if row.key in seen:
            parsed.duplicates += 1
            earlier = seen[row.key]
            if parsed.rows[earlier].verdict == "no" and row.verdict == "yes":
                parsed.rows[earlier] = row  # as across files: a triple is accepted if any row accepts it
            continue
        seen[row.key] = len(parsed.rows)
        parsed.rows.append(row)

    if strict and parsed.rejected:
        first_bad = parsed.rejected[0]
        raise InputError(f"{first_bad.problem} ({len(parsed.rejected)} bad row(s) in all; --strict refuses the file, "
                         "nothing was written)", file=name, line=first_bad.line)
    if not parsed.rows and not parsed.rejected:
        raise InputError("the file has a header but no rows", file=name)
    return parsed
