// Queries for people: paste them into Neo4j Browser (set the parameters with
// `:param name => 'dog'`) or run them with `akg query`.

// name: entity_neighbourhood
// description: an entity's facts in both directions, with provenance
// example: {"name": "dog", "limit": 50}
MATCH (e:Entity {name: $name})-[r]-(other:Entity)
RETURN CASE WHEN startNode(r) = e THEN 'out' ELSE 'in' END AS direction,
       r.relation AS relation, other.name AS other, r.status AS status, r.split AS split,
       r.sources AS sources, r.verdict AS verdict
ORDER BY direction DESC, relation, other
LIMIT $limit

// name: entity_neighbourhood_graph
// description: the neighbourhood as a graph (nodes and relationships) for Neo4j Browser
// example: {"name": "dog", "limit": 50}
MATCH p = (e:Entity {name: $name})-[r]-(other:Entity)
RETURN p LIMIT $limit

// name: taxonomy_path
// description: the chains of `has parent` from an entity up to its ancestors, longest first
// example: {"name": "dog barking", "depth": 6}
MATCH p = (e:Entity {name: $name})-[:HAS_PARENT*1..6]->(ancestor:Entity)
WHERE length(p) <= $depth
RETURN [n IN nodes(p) | n.name] AS path, length(p) AS hops
ORDER BY hops DESC, path
LIMIT 50

// name: triples_by_curation_status
// description: a page of triples in one curation status (accepted, rejected, pending)
// example: {"status": "rejected", "skip": 0, "limit": 25}
MATCH (h:Entity)-[r]->(t:Entity)
WHERE r.status = $status
RETURN h.name AS head, r.relation AS relation, t.name AS tail, r.verdict AS verdict, r.sources AS sources
ORDER BY head, relation, tail
SKIP $skip LIMIT $limit

// name: label_coverage
// description: how many of a dataset's labels (already normalised) are AKG entities, and which are not
// example: {"labels": ["dog", "rain", "no such label"]}
UNWIND $labels AS label
OPTIONAL MATCH (e:Entity {name: label})
RETURN count(label) AS labels, count(e) AS covered,
       collect(CASE WHEN e IS NULL THEN label END) AS missing

// name: entity_search
// description: entity names containing a text, shortest first (completion)
// example: {"text": "dog", "limit": 10}
MATCH (e:Entity)
WHERE e.name CONTAINS $text
RETURN e.name AS name
ORDER BY size(e.name), name
LIMIT $limit

// name: neighbourhood_edges_1
// description: the facts around an entity, one hop, optionally of some relations only ($relations null: all)
// example: {"name": "dog", "relations": null, "limit": 200}
MATCH (e:Entity {name: $name})-[r]-(o:Entity)
WHERE r.relation IS NOT NULL AND ($relations IS NULL OR r.relation IN $relations)
RETURN startNode(r).name AS source, r.relation AS relation, endNode(r).name AS target,
       r.status AS status, r.split AS split, r.sources AS sources
LIMIT $limit

// name: neighbourhood_edges_2
// description: the facts around an entity up to two hops, optionally of some relations only
// example: {"name": "dog", "relations": ["has parent"], "limit": 200}
MATCH (e:Entity {name: $name})-[rs*1..2]-(o:Entity)
WHERE all(r IN rs WHERE r.relation IS NOT NULL AND ($relations IS NULL OR r.relation IN $relations))
UNWIND rs AS r
WITH DISTINCT r
RETURN startNode(r).name AS source, r.relation AS relation, endNode(r).name AS target,
       r.status AS status, r.split AS split, r.sources AS sources
LIMIT $limit
