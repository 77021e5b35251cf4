"""The explorer's entry script: `akg ui` runs `streamlit run` on this file (see ui/cli.py)."""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "views"  # not "pages": Streamlit would also read that folder as pages

st.set_page_config(page_title="AKG explorer", page_icon=":material/graphic_eq:", layout="wide")
page = st.navigation([
    st.Page(PAGES / "overview.py", title="Overview", icon=":material/insights:", default=True),
    st.Page(PAGES / "entities.py", title="Entity explorer", icon=":material/hub:"),
    st.Page(PAGES / "console.py", title="Cypher console", icon=":material/terminal:"),
    st.Page(PAGES / "predictions.py", title="Predictions", icon=":material/online_prediction:"),
    # curate.py, not curation.py: run on its own (as AppTest does) it would shadow the curation package
    st.Page(PAGES / "curate.py", title="Curation", icon=":material/rule:", url_path="curation"),
    st.Page(PAGES / "audio.py", title="Audio", icon=":material/graphic_eq:"),
    st.Page(PAGES / "retrieval.py", title="Retrieval", icon=":material/manage_search:"),
])
st.sidebar.caption("AKG knowledge service · the same graph, models and reasoning as the `akg` command")
page.run()
