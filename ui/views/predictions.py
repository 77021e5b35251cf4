"""Predictions: known tails (the graph) and predicted tails (a KGE model); the model card."""

from datetime import datetime

import pandas as pd
import streamlit as st

from kge.workflows import staleness
from ui import common, resources


def show_predictions(key, stored, predictor, head: str, relation: str, k: int) -> None:
    """Known tails from the graph beside the model's top k."""
    pair = predictor.resolve_pair(head, relation)
    known = resources.known_tails(key, *pair)
    predictions = predictor.predict(*pair, k=k, known=known)
    left, right = st.columns(2)
    with left:
        st.subheader("Known tails")
        st.caption(f"Accepted facts ({pair[0]}, {pair[1]}, ?) in the graph now.")
        if known:
            st.dataframe(pd.DataFrame({"tail": sorted(known)}), hide_index=True)
        else:
            st.info("The graph holds no accepted fact for this head and relation.")
    with right:
        st.subheader("Predicted tails")
        st.caption(f"Top {k} of model {stored.name}, by score (higher is more plausible).")
        st.dataframe(pd.DataFrame([{"rank": i, "tail": p.tail, "score": round(p.score, 4),
                                    "status": "known" if p.known else "predicted"}
                                   for i, p in enumerate(predictions, 1)]), hide_index=True)


st.title("Predictions")
key = common.require_graph()

with common.shown_errors():
    models = resources.list_models()
    if not models:
        st.info(f"No trained model under {resources.models_root()}: run `akg train` (about 20 s), then reload.")
        st.stop()
    names = [m.name for m in models]
    chosen = st.selectbox("Model", names, index=len(names) - 1, help="Stored models, the latest last.")
    stored = models[names.index(chosen)]
    stale = staleness(stored, resources.train_hash(key))
    if stale:
        st.warning(stale)

    predictor = resources.predictor(stored)
    relations = sorted(stored.relation_to_id)
    c1, c2, c3 = st.columns([2, 2, 1])
    head = c1.text_input("Head entity", value="dog")
    relation = c2.selectbox("Relation", relations,
                            index=relations.index("has parent") if "has parent" in relations else 0)
    k = int(c3.number_input("Top k", min_value=1, max_value=100, value=10))

    if head.strip():
        with common.shown_errors():  # an unknown name is a message (with suggestions); the card still shows
            show_predictions(key, stored, predictor, head, relation, k)

    st.subheader(f"Model card: {stored.name}")
    cfg, trained_on = stored.config, stored.trained_on
    training = cfg.get("training", {})
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Model", training.get("model", "?"))
    c2.metric("Preset", training.get("preset") or "—")
    c3.metric("Training time", f"{cfg['train_seconds']:.1f} s" if cfg.get("train_seconds") is not None else "—")
    created = cfg.get("created_at")
    c4.metric("Trained", datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M") if created else "—")

    st.markdown("**Metrics** (filtered link prediction on the graph's test split, both sides)")
    if stored.metrics:
        rows = []
        for part in ("known", "all"):
            m = stored.metrics.get(part)
            if m:
                rows.append({"test triples": part, "count": m.get("triples"), "MRR": m.get("mrr"),
                             **{f"Hits@{n}": m.get(f"hits@{n}") for n in (1, 3, 5, 10)}})
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        st.caption("known: the test triples whose entities the model saw; all: the rest counted as misses.")
        table = stored.metrics.get("per_relation")
        if table:
            st.markdown("**Per relation** (weakest first: where the model is weak)")
            from kge.evaluate import per_relation_rows

            st.dataframe(pd.DataFrame(per_relation_rows(table)), hide_index=True)
    else:
        st.info("This model was not evaluated (trained with --no-evaluate, or without a test split): `akg evaluate`.")

    loss = stored.path / "loss.png"
    if loss.is_file():
        st.image(str(loss), caption="training loss per epoch")

    st.markdown("**Graph state it was trained on**")
    now = resources.train_hash(key)
    state = pd.DataFrame([
        {"": "training triples (accepted, train split)", "value": str(trained_on.get("train_triples", "—"))},
        {"": "their sha256", "value": trained_on.get("train_sha256", "—")},
        {"": "the graph's now", "value": now},
        {"": "entities / relations", "value": f"{trained_on.get('entities', '—')} / {trained_on.get('relations', '—')}"},
        {"": "graph version", "value": (trained_on.get("graph_version") or "—")[:12]},
    ])
    st.dataframe(state, hide_index=True)
    if stale:
        st.caption("Stale: curation or ingest changed the training triples since; `akg train` trains a new model.")
    else:
        st.caption("Up to date: the graph's training triples are the ones this model saw.")
    with st.expander("Training settings"):
        st.json(training)

