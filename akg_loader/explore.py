"""Exploring the graph: entity search, neighbourhoods as node/edge lists, facts with provenance.

The explorer's pages call these; they hold no Cypher themselves (it is all in cypher/explore.cypher).
"""

from __future__ import annotations

from akg import queries
from akg.errors import InputError
from akg.graph import Graph
from akg.names import normalise_name


def search_entities(graph: Graph, text: str, limit: int = 10) -> list[str]:
    """Entity names containing `text` (normalised like AKG names), shortest first."""
    text = normalise_name(text)
    if not text:
        return []
    return [r["name"] for r in graph.read(queries.get("entity_search"), {"text": text, "limit": limit})]


def facts(graph: Graph, name: str, limit: int = 500) -> list[dict]:
    """An entity's facts in both directions with provenance (direction, relation, other, status...)."""
    return graph.read(queries.get("entity_neighbourhood"), {"name": normalise_name(name), "limit": limit})


def neighbourhood(graph: Graph, name: str, *, depth: int = 1, relations: list[str] | None = None,
                  limit: int = 200) -> dict:
    """{'center', 'nodes': [names], 'edges': [{source, relation, target, status, split, sources}]}."""
    if depth not in (1, 2):
        raise InputError("depth must be 1 or 2")
    center = normalise_name(name)
    params = {"name": center, "relations": list(relations) if relations else None, "limit": limit}
    edges = graph.read(queries.get(f"neighbourhood_edges_{depth}"), params)
    nodes = sorted({center} | {e["source"] for e in edges} | {e["target"] for e in edges})
    return {"center": center, "nodes": nodes, "edges": edges}
