"""Loading the AKG into the graph and getting it out again: TSV parsing, ingest, stats, export, dataset fetch."""
