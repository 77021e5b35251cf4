// Getting triples out of the graph (akg_loader.export).

// name: export_triples
// description: head, relation, tail of the triples with this split and status (null = any)
// example: {"split": "train", "status": "accepted"}
MATCH (h:Entity)-[r]->(t:Entity)
WHERE ($split IS NULL OR r.split = $split) AND ($status IS NULL OR r.status = $status)
RETURN h.name AS head, r.relation AS relation, t.name AS tail

// name: graph_state_triples
// description: every triple with its status and split: what the graph version hash covers
MATCH (h:Entity)-[r]->(t:Entity)
RETURN h.name AS head, r.relation AS relation, t.name AS tail, r.status AS status, r.split AS split
