"""Addressing triples: the `head|relation|tail` text form, and reading triples' properties."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable

from akg import queries
from akg.errors import InputError
from akg.names import name_problem, normalise_name, shown
from akg.relations import resolve

Triple = tuple[str, str, str]
Run = Callable[..., list[dict]]


def parse_triple(text: str, *, file: str | None = None, line: int | None = None) -> Triple:
    """'dog barking | has parent | dog' -> ('dog barking', 'has parent', 'dog'), names normalised like ingest's."""
    parts = text.split("|") if "|" in text else text.split("\t")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise InputError(f"a triple is written HEAD|RELATION|TAIL, got {text!r}", file=file, line=line)
    return make_triple(*parts, file=file, line=line)


def make_triple(head: str, relation: str, tail: str, *, file: str | None = None, line: int | None = None) -> Triple:
    """Normalised names and the catalogue relation (a clear error naming file and line if unknown)."""
    if not head.strip() or not tail.strip():
        raise InputError("a triple needs a head and a tail", file=file, line=line)
    return normalise_name(head), resolve_relation(relation, file=file, line=line), normalise_name(tail)


def check_names(triple: Triple, *, file: str | None = None, line: int | None = None) -> None:
    """A triple about to be created must have names that keep the rules of akg.names."""
    for role, name in (("head", triple[0]), ("tail", triple[2])):
        problem = name_problem(name)
        if problem:
            raise InputError(f"{role} {shown(name)}: {problem}", file=file, line=line)


def resolve_relation(text: str, *, file: str | None = None, line: int | None = None) -> str:
    try:
        return resolve(text.strip())
    except InputError as e:
        raise InputError(e.problem, file=file, line=line) from None


def show(triple: Triple) -> str:
    return "|".join(triple)


def read_properties(run: Run, triples: Iterable[Triple]) -> dict[Triple, dict]:
    """The property maps of those triples that exist, one query per relation."""
    by_relation: dict[str, list[dict]] = defaultdict(list)
    for head, relation, tail in set(triples):
        by_relation[relation].append({"head": head, "tail": tail})
    found: dict[Triple, dict] = {}
    for relation, keys in by_relation.items():
        for row in run(queries.get("triple_properties"), {"keys": keys}, relation)[0]["triples"]:
            found[(row["head"], relation, row["tail"])] = row["props"]
    return found


def existing_entities(run: Run, names: Iterable[str]) -> set[str]:
    return set(run(queries.get("ingest_existing_entities"), {"names": sorted(set(names))})[0]["names"])


def unknown_triple(run: Run, triple: Triple, *, file: str | None = None, line: int | None = None) -> InputError:
    """The error for a triple that is not in the graph, with what is there instead."""
    head, relation, tail = triple
    if not existing_entities(run, [head]):
        close = difflib.get_close_matches(head, run(queries.get("entity_names"))[0]["names"], n=3, cutoff=0.6)
        hint = f" (close names: {', '.join(map(repr, close))})" if close else ""
        return InputError(f"unknown triple {show(triple)}: no entity {head!r}{hint}", file=file, line=line)
    tails = run(queries.get("known_tails_any_status"), {"head": head}, relation)[0]["tails"]
    hint = (f"; the graph has {head}|{relation}|… with tails {', '.join(map(repr, sorted(tails)[:8]))}" if tails
            else f"; {head!r} has no {relation!r} triple")
    return InputError(f"unknown triple {show(triple)}: not in the graph{hint}", file=file, line=line)
