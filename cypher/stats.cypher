// Counts for `akg stats` and the explorer's overview.

// name: count_entities
MATCH (e:Entity) RETURN count(e) AS n

// name: count_triples
MATCH (:Entity)-[r]->(:Entity) RETURN count(r) AS n

// name: triples_by_status
// description: triples per curation status (accepted, rejected, pending)
MATCH (:Entity)-[r]->(:Entity) RETURN r.status AS key, count(r) AS n ORDER BY key

// name: triples_by_split
MATCH (:Entity)-[r]->(:Entity) RETURN r.split AS key, count(r) AS n ORDER BY key

// name: triples_by_status_and_split
MATCH (:Entity)-[r]->(:Entity) RETURN r.status AS status, r.split AS split, count(r) AS n ORDER BY status, split

// name: relation_histogram
// description: triples per relation, most frequent first (paste into Neo4j Browser for a bar chart)
MATCH (:Entity)-[r]->(:Entity) RETURN r.relation AS relation, count(r) AS n ORDER BY n DESC, relation

// name: triples_by_source
// description: triples per source file kind (a triple from raw and pruned counts in both)
MATCH (:Entity)-[r]->(:Entity) UNWIND r.sources AS source RETURN source AS key, count(*) AS n ORDER BY key
