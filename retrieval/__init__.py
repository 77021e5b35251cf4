"""Knowledge-enhanced audio-text retrieval over whole collections (issue 15).

A layer above reasoning: it reuses reasoning's fusion and fact gathering and kge's predictions.
- `embedding`: embedding a collection's clips, in this process, in local worker processes or on Ray.
- `store`: the vector index of a collection under AKG_HOME/indexes/NAME (FAISS, manifest, incremental).
- `linking`: AKG entities of a text (names in it, and nearest entity names by text embedding).
- `enrich`: the query variants a text's entities give (entity, relation+tail, parent), their reliability.
- `search`: text to audio over an index, audio to text over a caption set, with explanations.
- `tag`: a clip against every AKG entity.
- `metrics` and `evaluation`: R@k and mAP@10 on Clotho / AudioCaps layouts, baseline against enhanced.
"""
