// Getting triples out of the graph (akg_loader.export).

// name: graph_state_triples
// description: every AKG triple with its status and split, in one read: exports filter it, and its
// hash is the graph's version (relationships without an AKG relation, added by hand, are left out)
MATCH (h:Entity)-[r]->(t:Entity)
WHERE r.relation IS NOT NULL
RETURN h.name AS head, r.relation AS relation, t.name AS tail, r.status AS status, r.split AS split
