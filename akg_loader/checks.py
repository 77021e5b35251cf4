"""`akg check`: names already in the graph that break the rules every write path now enforces.

Graphs filled before the rules (akg.names) may hold names that are too long, carry control or
invisible characters or `|`, or are not in normal form (the decomposed spelling of `café` beside
the composed one). They are reported, not changed: a curator decides (reject or edit the triples).
"""

from __future__ import annotations

from collections import defaultdict

from akg import queries
from akg.graph import Graph
from akg.names import name_problem, normalise_name


def bad_names(graph: Graph) -> list[dict]:
    """Each entity name that breaks a rule, with the problem and its triples' count, in name order."""
    names = graph.read(queries.get("entity_names"))[0]["names"]
    by_form: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_form[normalise_name(name)].append(name)
    found = []
    for name in sorted(names):
        problem = name_problem(name)
        if problem is None and normalise_name(name) != name:
            twins = [n for n in by_form[normalise_name(name)] if n != name]
            problem = ("not in normal form (lower case, trimmed, Unicode NFC)"
                       + (f"; the same name as {', '.join(map(repr, twins))}" if twins else ""))
        if problem:
            found.append({"name": name, "problem": problem})
    if found:
        counts = {r["name"]: r["n"] for r in graph.read(queries.get("entity_triple_counts"),
                                                         {"names": [f["name"] for f in found]})}
        for f in found:
            f["triples"] = counts.get(f["name"], 0)
    return found
