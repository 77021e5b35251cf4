// Queries for label sets (reasoning.labels): which label names are AKG entities.

// name: existing_entities
// description: which of the names are AKG entities (for choosing each label's entity)
// example: {"names": ["dog", "nope"]}
UNWIND $names AS name
MATCH (e:Entity {name: name})
RETURN collect(e.name) AS names
