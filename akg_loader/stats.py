"""Counts over the graph for `akg stats` (and the explorer's overview)."""

from __future__ import annotations

from akg import queries
from akg.graph import Graph


def _keyed(graph: Graph, name: str) -> dict[str, int]:
    return {str(r["key"]): r["n"] for r in graph.read(queries.get(name))}


def graph_stats(graph: Graph) -> dict:
    return {
        "entities": graph.read(queries.get("count_entities"))[0]["n"],
        "triples": graph.read(queries.get("count_triples"))[0]["n"],
        "by_status": _keyed(graph, "triples_by_status"),
        "by_split": _keyed(graph, "triples_by_split"),
        "by_status_and_split": [dict(r) for r in graph.read(queries.get("triples_by_status_and_split"))],
        "by_source": _keyed(graph, "triples_by_source"),
        "by_relation": {r["relation"]: r["n"] for r in graph.read(queries.get("relation_histogram"))},
        "server": graph.server_agent,
        "database": graph.database,
    }
