"""Ordered schema migrations: NNN_description.cypher, one statement per `// name:` block."""
