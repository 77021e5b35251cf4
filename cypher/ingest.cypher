// Batched ingest (akg_loader.ingest). One relationship type per AKG relation: __REL__ is
// replaced by an allowlisted, backticked type; every value is a parameter.

// name: ingest_existing_entities
// description: which of these names already exist as entities
// example: {"names": ["dog", "no such entity"]}
// One row holding a list: far fewer network round trips than a row per name.
UNWIND $names AS name
MATCH (e:Entity {name: name})
RETURN collect(e.name) AS names

// name: ingest_create_entities
// description: create entities known not to exist yet (checked in the same transaction)
// example: {"names": [], "now": "2026-01-01T00:00:00+00:00"}
UNWIND $names AS name
CREATE (:Entity {name: name, created_at: $now})

// name: triple_properties
// description: the properties of these (head, tail) pairs of one relation, where the triple exists (ingest, curation)
// example: {"keys": [{"head": "dog", "tail": "animal"}], "relation": "has parent"}
UNWIND $keys AS k
MATCH (h:Entity {name: k.head})-[r:__REL__]->(t:Entity {name: k.tail})
RETURN collect({head: k.head, tail: k.tail, props: properties(r)}) AS triples

// name: ingest_lock
// description: taken first by every ingest transaction: concurrent ingests then conflict and are
// retried one after the other, instead of both creating the same triple
// example: {"now": "2026-01-01T00:00:00+00:00"}
MERGE (l:IngestLock {id: 1}) SET l.at = $now

// name: ingest_create_triples
// description: create triples of one relation that this transaction saw missing (MERGE as a second guard)
// example: {"rows": [], "relation": "has parent"}
UNWIND $rows AS row
MATCH (h:Entity {name: row.head})
MATCH (t:Entity {name: row.tail})
MERGE (h)-[r:__REL__]->(t)
SET r += row.props

// name: ingest_update_triples
// description: replace the provenance of existing triples of one relation
// example: {"rows": [], "relation": "has parent"}
UNWIND $rows AS row
MATCH (:Entity {name: row.head})-[r:__REL__]->(:Entity {name: row.tail})
SET r += row.props
