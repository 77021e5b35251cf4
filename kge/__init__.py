"""Knowledge-graph embeddings of the AKG: PyKEEN models trained on triples exported from the graph,
a fast filtered evaluator, safe model storage and tail prediction."""
