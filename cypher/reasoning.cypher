// Queries of the reasoning package (reasoning/).

// name: accepted_tails_of
// description: accepted facts of these heads for these relations (the known tails of enrichment)
// example: {"heads": ["dog", "rain"], "relations": ["has parent", "occurs in"]}
UNWIND $heads AS head
MATCH (:Entity {name: head})-[r]->(t:Entity)
WHERE r.status = 'accepted' AND r.relation IN $relations
RETURN head, r.relation AS relation, collect(t.name) AS tails
