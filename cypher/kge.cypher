// Queries of the KGE package (kge/).

// name: known_tails
// description: accepted tails of one head and relation: what a prediction marks as known
// example: {"head": "dog", "relation": "has parent"}
MATCH (:Entity {name: $head})-[r:__REL__]->(t:Entity)
WHERE r.status = 'accepted'
RETURN collect(t.name) AS tails

// name: entity_names
// description: every entity name (for suggestions when a name is unknown)
MATCH (e:Entity) RETURN collect(e.name) AS names

// name: entity_triple_counts
// description: how many triples (any status, either direction) each of these entities has
// example: {"names": ["dog"]}
UNWIND $names AS name
MATCH (e:Entity {name: name})
RETURN name, COUNT { (e)--() } AS n
