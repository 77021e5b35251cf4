"""Overview: entity and triple counts, the relation histogram, curation status, label coverage."""

import altair as alt
import pandas as pd
import streamlit as st

from akg.errors import InputError
from ui import common, resources

st.title("Overview")
key = common.require_graph()

with common.shown_errors():
    stats = resources.stats(key)
    by_status = stats["by_status"]
    cols = st.columns(5)
    cols[0].metric("Entities", common.fmt_int(stats["entities"]))
    cols[1].metric("Triples", common.fmt_int(stats["triples"]))
    cols[2].metric("Accepted", common.fmt_int(by_status.get("accepted", 0)))
    cols[3].metric("Rejected", common.fmt_int(by_status.get("rejected", 0)))
    cols[4].metric("Pending", common.fmt_int(by_status.get("pending", 0)))
    st.caption(f"{stats['server']} · database {stats['database']}")

    if not stats["triples"]:
        st.info("The graph holds no triples yet: `akg dataset fetch`, then `akg ingest AKG_dataset/AKG_pruned.tsv`.")
    else:
        st.subheader("Triples per relation")
        hist = pd.DataFrame([{"relation": r, "triples": n} for r, n in stats["by_relation"].items()])
        st.altair_chart(alt.Chart(hist, height=max(300, 16 * len(hist))).mark_bar().encode(
            x=alt.X("triples:Q"), y=alt.Y("relation:N", sort="-x", title=None), tooltip=["relation", "triples"]))

        st.subheader("Curation status")
        status = pd.DataFrame(stats["by_status_and_split"]).fillna("—")
        left, right = st.columns([2, 1])
        with left:
            st.altair_chart(alt.Chart(status, height=260).mark_bar().encode(
                x=alt.X("n:Q", title="triples"), y=alt.Y("split:N", title="split"),
                color=alt.Color("status:N", scale=alt.Scale(domain=["accepted", "rejected", "pending"],
                                                            range=["#2e7d32", "#c62828", "#f9a825"])),
                tooltip=["status", "split", "n"]))
        with right:
            st.dataframe(status.rename(columns={"n": "triples"}), hide_index=True)
            sources = pd.DataFrame([{"source": k, "triples": n} for k, n in stats["by_source"].items()])
            st.dataframe(sources, hide_index=True)

    st.subheader("Label coverage per dataset")
    try:
        mapping = resources.label_mapping()
    except InputError as e:
        st.info(f"Label sets are not installed here, so coverage is left out. {e}")
    else:
        rows = resources.label_coverage(key, str(mapping), resources.file_stamp(mapping))
        coverage = pd.DataFrame([{
            "key": r["key"], "dataset": r["title"], "labels": r["coverage"]["labels"],
            "covered": r["coverage"]["with_entity"], "coverage": round(100 * r["coverage"]["ratio"], 1),
        } for r in rows])
        st.altair_chart(alt.Chart(coverage, height=max(300, 16 * len(coverage))).mark_bar().encode(
            x=alt.X("coverage:Q", title="labels with an AKG entity (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("dataset:N", sort="-x", title=None), tooltip=["dataset", "labels", "covered", "coverage"]))
        st.dataframe(coverage, hide_index=True,
                     column_config={"covered": "with AKG entity", "coverage": st.column_config.NumberColumn("coverage %")})
        st.caption(f"From {mapping}. A label is covered when one of its SALT events (or its own name) is an AKG entity.")
