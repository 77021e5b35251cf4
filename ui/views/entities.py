"""Entity explorer: search with completion, the neighbourhood as an interactive graph, the facts."""

import pandas as pd
import streamlit as st

from akg.names import normalise_name
from ui import common, graphview, resources

QUERY = "entity_query"   # the search box
GOTO = "entity_goto"     # set by a click on a node: the next run puts it in the search box
GRAPH = "entity_graph"   # the graph component

st.title("Entity explorer")
key = common.require_graph()

# A widget's state can only be set before the widget is drawn: a clicked node arrives here.
if GOTO in st.session_state:
    st.session_state[QUERY] = st.session_state.pop(GOTO)

with common.shown_errors():
    query = st.text_input("Search an entity", key=QUERY, placeholder="part of a name, e.g. dog barking",
                          help="Names are matched as the AKG writes them (lower case, spaces); shortest first.")
    if not query.strip():
        st.info("Type part of an entity's name: the matching entities are offered below.")
        st.stop()
    matches = resources.search(key, query, 25)
    if not matches:
        st.warning(f"No entity name contains {normalise_name(query)!r}.")
        st.stop()
    exact = normalise_name(query)
    name = st.selectbox(f"{len(matches)}{'+' if len(matches) == 25 else ''} matching entities", matches,
                        index=matches.index(exact) if exact in matches else 0)

    c1, c2, c3 = st.columns([1, 1, 3])
    depth = c1.radio("Depth", [1, 2], horizontal=True, help="Facts one hop away, or two.")
    max_nodes = int(c2.number_input("Node limit", min_value=10, max_value=2000, value=200, step=50))
    present = resources.neighbourhood(key, name, depth, None, max_nodes * 5)
    relations = sorted({e["relation"] for e in present["edges"]})
    chosen = c3.multiselect("Relations", relations, placeholder="all relations",
                            help="Show only facts of these relations (at every hop).")
    hood = present if not chosen else resources.neighbourhood(key, name, depth, tuple(sorted(chosen)), max_nodes * 5)

    st.subheader(name)
    if not hood["edges"]:
        st.info(f"{name!r} has no facts{' of these relations' if chosen else ''}.")
    else:
        elements, info = graphview.neighbourhood_elements(hood, max_nodes=max_nodes)
        shown = f"{info['nodes']} entities, {info['edges']} facts"
        if info["nodes"] < info["nodes_found"] or info["edges_found"] >= max_nodes * 5:
            shown += " (limited: raise the node limit to see more)"
        st.caption(f"{shown}. Click an entity to move to it; click a fact for its provenance. "
                   "Green: accepted, red: rejected, yellow: pending.")
        target = graphview.render(elements, key=GRAPH, clickable=True)
        if target and target != name:
            st.session_state[GOTO] = target
            st.rerun()

    st.subheader("Facts")
    rows = resources.facts(key, name)
    if rows:
        table = pd.DataFrame([{
            "direction": "→" if r["direction"] == "out" else "←", "relation": r["relation"], "entity": r["other"],
            "status": r["status"], "split": r["split"], "sources": ", ".join(r["sources"] or []),
            "verdict": r["verdict"],
        } for r in rows])
        st.dataframe(table, hide_index=True)
        st.caption(f"{len(rows)} facts. → {name} is the head; ← {name} is the tail. Sources: the AKG files the "
                   "fact came from; verdict: the LLM's answer when the AKG was generated.")
    else:
        st.info("No facts.")
