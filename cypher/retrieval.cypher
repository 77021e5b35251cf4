// Queries for knowledge-enhanced retrieval (retrieval/): the entities a text or a clip is linked to.

// name: entity_names
// description: every entity's name, in order (what queries are linked to and clips tagged against)
// example: {}
MATCH (e:Entity)
RETURN e.name AS name
ORDER BY name
