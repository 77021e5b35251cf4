"""Retrieval: search an indexed collection by text and hear the top clips with why they rank there;
drop a clip and see its AKG tags. The same library functions as `akg search` and `akg tag`."""

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from akg.config import Settings
from akg.errors import ConfigError
from ui import common, resources, uploads

st.title("Retrieval")
key = common.require_graph()
workdir = Path(tempfile.mkdtemp(prefix="akg-ui-upload-"))


def moved(items: list[dict]) -> str:
    return "; ".join(f"{m['text']!r} {m['effect']:+.4f} ({m['kind']})" for m in items if m["effect"]) or "-"


try:
    with common.shown_errors():
        spec = resources.encoder_spec()
        try:
            encoder = resources.encoder(spec)
        except ConfigError as e:
            st.warning("**No CLAP model is configured**: start the explorer with `AKG_CLAP_MODEL=DIR akg ui` "
                       "(see the Audio page).")
            st.caption(f"Details: {e}")
            st.stop()
        from reasoning.fusion import FusionSettings
        from retrieval.search import DEFAULT_FUSION, search_text, tag_clip
        from retrieval.store import load_index

        c1, c2, c3 = st.columns([1, 1, 2])
        k = int(c1.number_input("Results", min_value=1, max_value=50, value=10))
        method = c2.selectbox("Weighting", ["reliability", "lse"], help="reliability: variants weighed by their "
                              "consistency with the query, the clips they retrieve, and known over predicted facts.")
        use_kge = c3.checkbox("Add predicted facts (the latest KGE model)", value=True)
        fusion = FusionSettings(method=method, temperature=DEFAULT_FUSION.temperature)
        enricher = resources.enricher(key, spec, use_kge)
        search_tab, tag_tab = st.tabs(["Search a collection", "Tag a clip"])
        with search_tab:
            names = resources.indexes()
            if not names:
                st.info("No collection is indexed yet: `akg index AUDIO_DIR --name NAME` makes one.")
            else:
                name = st.selectbox("Collection", names)
                text = st.text_input("Query", placeholder="a dog barking in a park")
                if text.strip():
                    index = load_index(Settings.from_env().home, name)
                    index.check_encoder(encoder.identity)
                    result = search_text(index, enricher, text, k=k, fusion=fusion)
                    links = ", ".join(f"{l['entity']} ({l['how']})" for l in result.links) or "none"
                    st.caption(f"{len(index)} clips; linked to {links}; {len(result.variants)} variants")
                    for h in result.hits:
                        was = f"#{h['baseline_rank']}" if h["baseline_rank"] else "not in CLAP's pool"
                        st.markdown(f"**{h['rank']}. {Path(h['clip']).name}** · {h['score']:.4f} "
                                    f"(CLAP {was}, {h['change']:+.4f})")
                        st.audio(h["clip"])
                        st.caption("moved by: " + moved(h["moved_by"]))
                    if result.variants:
                        with st.expander("The query's variants and their weights"):
                            st.dataframe(pd.DataFrame(result.variants), hide_index=True)
        with tag_tab:
            uploaded = st.file_uploader(f"An audio clip ({', '.join(uploads.UPLOAD_TYPES)}; at most "
                                        f"{uploads.MAX_UPLOAD_MB} MB)", type=list(uploads.UPLOAD_TYPES))
            if uploaded is not None:
                path = uploads.stage_upload(uploaded.name, uploaded.getvalue(), workdir)
                st.audio(str(path))
                from retrieval.session import embed_one

                emb = embed_one(encoder, Settings.from_env(), path, max_seconds=600.0)
                tags = tag_clip(emb, enricher, k=k, fusion=fusion)
                st.dataframe(pd.DataFrame([{"rank": t["rank"], "entity": t["entity"], "score": round(t["score"], 4),
                                            "CLAP rank": t["baseline_rank"], "parents": ", ".join(t["parents"]),
                                            "occurs in": ", ".join(t["occurs_in"]), "moved by": moved(t["moved_by"])}
                                           for t in tags]), hide_index=True)
finally:
    shutil.rmtree(workdir, ignore_errors=True)
