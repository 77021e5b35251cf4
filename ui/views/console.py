"""Cypher console: read-only, through the same gate as `akg query`; the saved queries of cypher/."""

import json
from datetime import datetime

import pandas as pd
import streamlit as st

from akg.relations import RELATIONS
from ui import common, graphview, resources

TEXT, PARAMS, SAVED, RELATION, LAST = "console_text", "console_params", "console_saved", "console_relation", "console_last"
OWN = "(your own query)"
FIRST = "entity_neighbourhood"

st.title("Cypher console")
st.caption("Read-only: the gate of `akg query` refuses writes and schema commands before they reach the server, "
           "and runs the rest in a transaction that is always rolled back.")
key = common.require_graph()

saved = {q.name: q for q in resources.saved_queries()}


def _load_saved() -> None:
    """Put the chosen saved query's text and example parameters into the editors."""
    q = saved.get(st.session_state[SAVED])
    if q is None:
        return
    params = dict(q.example)
    relation = params.pop("relation", None)
    if q.needs_relation:
        st.session_state[RELATION] = relation or RELATIONS[0]
        st.session_state[TEXT] = q.render(st.session_state[RELATION])
    else:
        st.session_state[TEXT] = q.text
    st.session_state[PARAMS] = json.dumps(params, ensure_ascii=False)


def _set_relation() -> None:
    q = saved.get(st.session_state[SAVED])
    if q is not None and q.needs_relation:
        st.session_state[TEXT] = q.render(st.session_state[RELATION])


if SAVED not in st.session_state:  # first visit: start from a saved query
    st.session_state[SAVED] = FIRST if FIRST in saved else OWN
    _load_saved()
st.session_state.setdefault(TEXT, "")
st.session_state.setdefault(PARAMS, "{}")

choice = st.selectbox("Saved queries (cypher/)", [OWN, *saved], key=SAVED, on_change=_load_saved,
                      format_func=lambda n: n if n == OWN else f"{n} — {saved[n].description or saved[n].source}")
current = saved.get(choice)
if current is not None and current.needs_relation:
    st.session_state.setdefault(RELATION, RELATIONS[0])
    st.selectbox("Relation (the relationship type comes from the allowlist)", RELATIONS, key=RELATION,
                 on_change=_set_relation)

with st.form("console"):
    text = st.text_area("Cypher", key=TEXT, height=160)
    params_text = st.text_area("Parameters (JSON object)", key=PARAMS, height=68,
                               help='For example {"name": "dog", "limit": 50}: each key is a $parameter.')
    c1, c2 = st.columns(2)
    timeout = c1.number_input("Timeout (s)", min_value=1.0, max_value=300.0, value=30.0, step=5.0)
    limit = int(c2.number_input("Row limit", min_value=1, max_value=10000, value=1000, step=100))
    submitted = st.form_submit_button("Run", type="primary")

if submitted:
    try:
        params = json.loads(params_text) if params_text.strip() else {}
    except ValueError as e:
        st.error(f"The parameters are not valid JSON: {e}")
        params = None
    if params is not None and not isinstance(params, dict):
        st.error('The parameters must be a JSON object, such as {"name": "dog"}.')
        params = None
    if params is not None:
        st.session_state[LAST] = (text, json.dumps(params, sort_keys=True, ensure_ascii=False), float(timeout), limit)
    else:
        st.session_state.pop(LAST, None)

if LAST in st.session_state:
    q_text, q_params, q_timeout, q_limit = st.session_state[LAST]
    with common.shown_errors():
        out = resources.run_query(key, q_text, q_params, q_timeout, q_limit)
        result = out["result"]
        note = f"{len(result.rows)} row(s) in {result.seconds:.3f} s"
        if result.truncated:
            note += f"; truncated at the row limit ({q_limit})"
        note += f"; ran at {datetime.fromtimestamp(out['ran_at']).strftime('%H:%M:%S')}"
        st.caption(note)
        if result.truncated:
            st.warning(f"Only the first {q_limit} rows are shown: raise the row limit, or add LIMIT to the query.")
        if not result.rows:
            st.info("No rows.")
        else:
            table = pd.DataFrame([{c: common.cell(row.get(c)) for c in result.columns} for row in result.rows],
                                 columns=result.columns)
            elements = graphview.result_elements(result.rows)
            if elements is not None:
                tab_table, tab_graph = st.tabs(["Table", "Graph"])
                with tab_table:
                    st.dataframe(table, hide_index=True)
                with tab_graph:
                    st.caption(f"{len(elements['nodes'])} nodes, {len(elements['edges'])} relationships")
                    graphview.render(elements, key="console_graph")
            else:
                st.dataframe(table, hide_index=True)
