"""The interactive graph (streamlit-cytoscape, Cytoscape.js): elements from the library's answers.

Two sources: an entity's neighbourhood (akg_loader.explore.neighbourhood) and the rows of a
console query, whose nodes, relationships and paths akg.readonly.to_plain has already turned
into dicts. A node's id is the entity's name, so a click reports the name back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import streamlit as st

CLICK_EVENT = "open_entity"
STATUS_COLORS = {"accepted": "#2e7d32", "rejected": "#c62828", "pending": "#f9a825"}


def neighbourhood_elements(hood: dict, *, max_nodes: int) -> tuple[dict, dict]:
    """Cytoscape elements for a neighbourhood, at most `max_nodes` nodes (nearest first).

    Returns (elements, info) where info counts what was shown and what was left out.
    """
    center = hood["center"]
    edges = hood["edges"]
    # nearest first: the centre, then its direct neighbours, then the rest (in the server's order)
    order = [center]
    seen = {center}
    direct = [e for e in edges if center in (e["source"], e["target"])]
    for e in direct + [e for e in edges if center not in (e["source"], e["target"])]:
        for n in (e["source"], e["target"]):
            if n not in seen:
                seen.add(n)
                order.append(n)
    kept = set(order[:max_nodes])
    nodes = [{"data": {"id": n, "label": "center" if n == center else "entity", "name": n}} for n in order[:max_nodes]]
    shown, ids = [], set()
    for e in edges:
        if e["source"] in kept and e["target"] in kept:
            eid = f"{e['source']}|{e['relation']}|{e['target']}"
            if eid in ids:
                continue
            ids.add(eid)
            shown.append({"data": {"id": eid, "label": e.get("status") or "unknown", "source": e["source"],
                                   "target": e["target"], "relation": e["relation"], "status": e.get("status"),
                                   "split": e.get("split"), "sources": ", ".join(e.get("sources") or [])}})
    info = {"nodes": len(nodes), "nodes_found": len(order), "edges": len(shown), "edges_found": len(edges)}
    return {"nodes": nodes, "edges": shown}, info


def _is_node(v) -> bool:
    return isinstance(v, dict) and set(v) == {"labels", "properties"}


def _is_relationship(v) -> bool:
    return isinstance(v, dict) and set(v) == {"type", "start", "end", "properties"}


def _is_path(v) -> bool:
    return isinstance(v, dict) and set(v) == {"nodes", "relationships"}


def _node_id(node: dict) -> str:
    props = node["properties"]
    if props.get("name") is not None:
        return str(props["name"])
    return "node:" + hashlib.sha256(json.dumps(node, sort_keys=True, default=str).encode()).hexdigest()[:12]


def result_elements(rows: Iterable[dict]) -> dict | None:
    """Cytoscape elements from query rows holding nodes, relationships or paths; None if they hold none."""
    nodes: dict[str, dict] = {}
    edges: dict[str, dict] = {}

    def add_node(v: dict) -> None:
        nid = _node_id(v)
        if nid not in nodes:
            label = (v["labels"] or ["node"])[0]
            data = {"id": nid, "label": label, "name": str(v["properties"].get("name", nid))}
            data.update({k: _scalar(x) for k, x in v["properties"].items() if k not in data})
            nodes[nid] = {"data": data}

    def add_rel(v: dict) -> None:
        if v["start"] is None or v["end"] is None:
            return  # relationships between unnamed nodes cannot be placed
        for end in (v["start"], v["end"]):
            if end not in nodes:
                nodes[end] = {"data": {"id": end, "label": "Entity", "name": end}}
        props = v["properties"]
        eid = f"{v['start']}|{props.get('relation', v['type'])}|{v['end']}"
        data = {"id": eid, "label": props.get("status") or v["type"], "source": v["start"], "target": v["end"],
                "relation": props.get("relation", v["type"]), "type": v["type"]}
        data.update({k: _scalar(x) for k, x in props.items() if k not in data})
        edges[eid] = {"data": data}

    def visit(v) -> None:
        if _is_node(v):
            add_node(v)
        elif _is_relationship(v):
            add_rel(v)
        elif _is_path(v):
            for n in v["nodes"]:
                add_node(n)
            for r in v["relationships"]:
                add_rel(r)
        elif isinstance(v, list):
            for x in v:
                visit(x)

    for row in rows:
        for value in row.values():
            visit(value)
    # named nodes first, then relationships; a relationship's ends were added as nodes already
    if not nodes and not edges:
        return None
    return {"nodes": list(nodes.values()), "edges": list(edges.values())}


def _scalar(v):
    return ", ".join(map(str, v)) if isinstance(v, list) else v


def render(elements: dict, *, key: str, clickable: bool = False, height: int = 520):
    """Draw the graph; with `clickable`, return the name of a node the user clicked (once per click)."""
    from streamlit_cytoscape import EdgeStyle, Event, NodeStyle, streamlit_cytoscape
    from streamlit_cytoscape.layouts import LAYOUTS

    node_labels = sorted({n["data"]["label"] for n in elements["nodes"]})
    caption = {"font-size": 10, "text-valign": "bottom", "text-margin-y": 3}  # the component's default text is tiny
    node_styles = [NodeStyle("center", "#1565c0", "name",
                             custom_styles={**caption, "width": 42, "height": 42, "font-weight": "bold", "font-size": 12}),
                   NodeStyle("entity", "#78909c", "name", custom_styles=caption)]
    node_styles += [NodeStyle(label, "#5c6bc0", "name", custom_styles=caption)
                    for label in node_labels if label not in ("center", "entity")]
    edge_labels = sorted({e["data"]["label"] for e in elements["edges"]})
    edge_styles = [EdgeStyle(label, STATUS_COLORS.get(label), caption="relation", directed=True) for label in edge_labels]
    # A layout option that changes with the elements makes the component lay out a new graph
    # (it otherwise keeps the old positions and stacks new nodes in one place).
    revision = hashlib.sha256(json.dumps(elements, sort_keys=True, default=str).encode()).hexdigest()[:16]
    # fcose: a 200-node neighbourhood lays out in ~0.3 s instead of cose's ~0.7 s of frozen page
    layout = {**LAYOUTS.get("fcose", LAYOUTS["cose"]), "akgRevision": revision}
    events = [Event(CLICK_EVENT, "tap", "node")] if clickable else []
    value = streamlit_cytoscape(elements, layout=layout, node_styles=node_styles, edge_styles=edge_styles,
                                height=height, key=key, events=events)
    if not clickable:
        return None
    return clicked_node(value, seen_key=f"{key}:seen")


def clicked_node(value, *, seen_key: str) -> str | None:
    """The node id of a click event not handled before (the component keeps reporting its last one)."""
    if not isinstance(value, dict) or value.get("action") != CLICK_EVENT:
        return None
    data = value.get("data") or {}
    if data.get("target_group") not in (None, "nodes"):
        return None
    stamp = value.get("timestamp")
    if st.session_state.get(seen_key) == stamp:
        return None
    st.session_state[seen_key] = stamp
    target = data.get("target_id")
    return str(target) if target is not None else None
