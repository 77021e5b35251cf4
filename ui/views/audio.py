"""Audio: CLAP's zero-shot labels of a clip, baseline against refined with the AKG, and why; with an
audio-grounded KGE model (`akg train --grounded text,audio`), what the AKG holds for the sound."""

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from akg.errors import ConfigError, InputError
from ui import common, resources, uploads

CONFIGURE = f"""
**No CLAP model is configured**, so this page cannot classify audio. Start the explorer with one:

- `AKG_CLAP_MODEL=DIR akg ui`: a directory saved with `ClapModel.save_pretrained` and
  `ClapProcessor.save_pretrained`, or a Hugging Face hub id already in the local cache
  (for example `laion/clap-htsat-unfused`, the default, after one `akg classify --allow-download`);
- `AKG_CLAP_CHECKPOINT=FILE.pt akg ui`: a laion-clap checkpoint (needs the `laion` extra).

Label sets come from `akg dataset fetch` (or `AKG_LABEL_SETS_DIR`). Clips to pick from:
`AKG_AUDIO_DIR=FOLDER`. Uploads: {", ".join(uploads.UPLOAD_TYPES)}, up to {uploads.MAX_UPLOAD_MB} MB.
"""

st.title("Audio")
key = common.require_graph()
workdir = Path(tempfile.mkdtemp(prefix="akg-ui-upload-"))

try:
    with common.shown_errors():
        spec = resources.encoder_spec()
        try:
            resources.encoder(spec)
        except ConfigError as e:
            st.warning(CONFIGURE)
            st.caption(f"Details: {e}")
            st.stop()

        from reasoning import labels as label_sets

        try:
            mapping = resources.label_mapping()
        except InputError as e:
            st.error(str(e))
            st.stop()
        keys = [r["key"] for r in label_sets.available(mapping)]
        c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
        labels = c1.selectbox("Label set", keys, index=keys.index("esc50") if "esc50" in keys else 0)
        method = c2.selectbox("Fusion", ["lse", "reliability"], help="lse: every prompt alike; reliability: "
                              "prompts weighed by closeness to the label and a prediction's confidence.")
        temperature = c3.number_input("Temperature", min_value=0.001, max_value=10.0, value=0.05, step=0.01, format="%.3f")
        top_k = int(c4.number_input("Top k", min_value=1, max_value=50, value=10))
        use_kge = st.checkbox("Add predicted facts (the latest KGE model)", value=True,
                              help="Off: only the graph's known facts enrich the prompts.")

        folder = uploads.audio_dir()
        sources = ["Upload a clip"] + ([f"Pick one from {folder}"] if folder else [])
        source = st.radio("Clip", sources, horizontal=True, label_visibility="collapsed")
        path, shown = None, None
        if source == sources[0]:
            uploaded = st.file_uploader(f"An audio clip ({', '.join(uploads.UPLOAD_TYPES)}; at most "
                                        f"{uploads.MAX_UPLOAD_MB} MB)", type=list(uploads.UPLOAD_TYPES))
            if not folder:
                st.caption(f"Set `{uploads.AUDIO_DIR_ENV}` to a folder of clips to pick from one instead.")
            if uploaded is not None:
                shown = uploaded.name
                path = uploads.stage_upload(uploaded.name, uploaded.getvalue(), workdir)
        else:
            if not folder.is_dir():
                st.error(f"{uploads.AUDIO_DIR_ENV}={folder}: no such folder.")
                st.stop()
            clips = uploads.list_clips(folder)
            if not clips:
                st.info(f"No audio files ({', '.join(uploads.UPLOAD_TYPES)}, ...) under {folder}.")
                st.stop()
            rel = st.selectbox("Clip", [str(c.relative_to(folder)) for c in clips])
            path, shown = folder / rel, rel
            uploads.probe(path, shown)  # the header must read as audio before the page plays or decodes it

        if path is None:
            st.info("Upload a clip" + (" or pick one" if folder else "") + " to classify it.")
            st.stop()

        st.audio(str(path))
        from reasoning.classify import classify_clips
        from reasoning.fusion import FusionSettings

        session = resources.reasoning_session(key, spec, labels, use_kge)
        fusion = FusionSettings(method=method, temperature=float(temperature))
        # the same function as `akg classify` and akg.classify(): the same rankings for the same clip
        result = classify_clips(session, [path], fusion=fusion, top_k=top_k, per_label=8)[0]
        if result.error:
            st.error(result.error.replace(str(path), shown))
            st.stop()

        cov = session.label_set.coverage()
        st.caption(f"{session.label_set.title}: {cov['with_entity']}/{cov['labels']} labels with an AKG entity; "
                   f"{len(session.bank.prompts)} enriched prompts; KGE "
                   f"{session.predictor.stored.name if session.predictor else 'none'}; encoder {session.encoder.identity}")
        left, right = st.columns(2)
        with left:
            st.subheader("Baseline (CLAP)")
            st.dataframe(pd.DataFrame([{"rank": n, "label": b["label"], "score": round(b["score"], 4)}
                                       for n, b in enumerate(result.baseline, 1)]), hide_index=True)
        with right:
            st.subheader("Refined with the AKG")
            st.dataframe(pd.DataFrame([{"rank": n, "label": r["label"], "score": round(r["score"], 4),
                                        "baseline rank": r["baseline_rank"], "change": round(r["change"], 4)}
                                       for n, r in enumerate(result.refined, 1)]), hide_index=True)

        st.subheader("The prompts that moved each label")
        st.caption("Leave-one-out: how much the refined score changes without each prompt (signed).")
        for label, e in sorted(result.explanation.items(), key=lambda item: -item[1]["fused"]):
            with st.expander(f"{label}: {e['base']:.4f} → {e['fused']:.4f} ({e['change']:+.4f}), "
                             f"{e['prompts_used']} prompts"):
                if e["prompts"]:
                    st.dataframe(pd.DataFrame([{"prompt": p["prompt"], "relation": p["relation"], "tail": p["tail"],
                                                "kind": p["kind"], "score": round(p["score"], 4),
                                                "weight": round(p["weight"], 3), "effect": round(p["effect"], 5)}
                                               for p in e["prompts"]]), hide_index=True)
                else:
                    st.caption("No enriched prompts: the label has no AKG entity or no facts.")

        predictor = session.predictor
        if predictor is not None and predictor.audio_grounded:
            # `akg predict --clip`: the same library function, so the same tails for the same clip
            from akg.config import Settings
            from akg.errors import AkgError
            from reasoning.audio_grounding import predict_clip

            st.subheader(f"What the AKG holds for this sound (model {predictor.stored.name})")
            st.caption("The clip is no entity: its CLAP audio embedding stands for one (no name, no graph "
                       "structure) in the model grounded in example clips.")
            relations = sorted(predictor.relation_to_id)
            relation = st.selectbox("Relation", relations, key="clip-relation",
                                    index=relations.index("has parent") if "has parent" in relations else 0)
            try:
                tails = predict_clip(predictor, path, relation, Settings.from_env(), k=top_k, encoder=session.encoder)
            except AkgError as e:
                st.warning(str(e).replace(str(path), shown))
            else:
                st.dataframe(pd.DataFrame([{"rank": n, "tail": p.tail, "score": round(p.score, 4)}
                                           for n, p in enumerate(tails, 1)]), hide_index=True)
finally:
    shutil.rmtree(workdir, ignore_errors=True)
