"""Knowledge-refined zero-shot audio classification (the iKnow-audio pipeline, post hoc: CLAP is
never fine-tuned): CLAP's top-k labels, known tails from the graph and predicted tails from the
KGE, enriched prompts, cached prompt embeddings, fused scores, and an explanation."""
