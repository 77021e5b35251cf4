"""Entity names: one normal form, one set of rules, for every path that writes a name.

Normal form (as the AKG's upstream preprocessing, plus NFC): underscores become spaces, lower case,
trimmed, Unicode NFC, so the composed and decomposed spellings of `café` are one entity.

Rules (`name_problem`), checked by ingest, every curation decision, KGE suggestions and any future
API before anything is written:
- not empty;
- at most MAX_LENGTH characters. The AKG's names are short labels or, for a few LLM-written
  tails, a sentence: 11,267 names, 99.9 % under 100 characters, the longest 144. 256 leaves room
  for such sentences while keeping a name a name (and memory, display and keys bounded);
- no control or format characters: C0 and C1 controls (tab and newline included: they break TSV
  exports), line and paragraph separators, zero-width characters, bidi controls, soft hyphens,
  byte-order marks; no space other than the plain one (a no-break space makes a look-alike twin);
- no `|`: it separates head, relation and tail in the HEAD|RELATION|TAIL form curators type.
"""

from __future__ import annotations

import re
import unicodedata

from akg.errors import InputError

MAX_LENGTH = 256
_REFUSED_CATEGORIES = {"Cc": "a control character", "Cf": "an invisible format character",
                       "Zl": "a line separator", "Zp": "a paragraph separator", "Cs": "a lone surrogate",
                       "Zs": "a space other than the plain space"}


def normalise_name(text: str) -> str:
    """'Dog_Barking ' -> 'dog barking'; NFC, so one spelling of 'café' is one entity."""
    return unicodedata.normalize("NFC", text.replace("_", " ").lower()).strip()


def shown(text: str, limit: int = 60) -> str:
    """A name as an error message shows it: quoted, escapes visible, long ones cut."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def name_problem(name: str) -> str | None:
    """What is wrong with a (normalised) name, or None."""
    if not name:
        return "the name is empty"
    if len(name) > MAX_LENGTH:
        return f"the name has {len(name):,} characters, more than the limit of {MAX_LENGTH}"
    for i, ch in enumerate(name):
        kind = _REFUSED_CATEGORIES.get(unicodedata.category(ch))
        if kind and ch != " ":
            label = unicodedata.name(ch, "") or f"U+{ord(ch):04X}"
            return f"the name contains {kind} ({label}, U+{ord(ch):04X}) at character {i + 1}"
    if "|" in name:
        return "the name contains '|', which separates head, relation and tail (HEAD|RELATION|TAIL)"
    return None


def entity_name(text: str, *, what: str = "name", file: str | None = None, line: int | None = None) -> str:
    """The normal form of a name a user gave, or an InputError naming it, the problem, and where."""
    name = normalise_name(text)
    problem = name_problem(name)
    if problem:
        raise InputError(f"{what} {shown(text)}: {problem}", file=file, line=line)
    return name


# Names a user gives to things kept as folders or files (a collection index, a KGE model): ASCII
# letters and digits, then also '.', '_' and '-', so a name is one path component on every file
# system and never '.', '..' or hidden. Checked with fullmatch: `re.match(r"^...$")` also accepts
# a final newline (`$` matches before one), which let `--name $'tones\n'` make a folder whose name
# ends in a newline. Every pattern that checks what a user typed is used with fullmatch.
_FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def folder_name(name, *, what: str, max_length: int = 64) -> str:
    """`name` when it is a valid folder name of at most `max_length` characters; else an InputError
    saying what `what` (e.g. "index name") may be."""
    if not isinstance(name, str) or len(name) > max_length or not _FOLDER_NAME.fullmatch(name):
        raise InputError(f"{what} {shown(name) if isinstance(name, str) else repr(name)}: use up to {max_length} "
                         "letters, digits, '.', '_' and '-' (a letter or digit first)")
    return name
