"""Every Cypher query the project runs, one named query per `// name:` block (see akg.queries)."""
