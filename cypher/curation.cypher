// Curation (curation/) and the change log (akg/changelog.py). Triples are addressed by
// (head, relation, tail); __REL__ is the relation's allowlisted type. Every write here runs inside
// a transaction that first takes the graph-state lock (graph_state_lock).

// name: graph_state
// description: the change log's head: the last change's sequence number and the graph's version
MATCH (s:GraphState {id: 1})
RETURN s.seq AS seq, s.version AS version, s.accepted AS accepted

// name: graph_state_init
// description: create the change log's head (once, for a graph that has none: its version computed from the graph)
// example: {"version": "0000000000000000000000000000000000000000000000000000000000000000", "accepted": 0, "now": "2026-01-01T00:00:00+00:00"}
// Idempotent: where the head exists already (the catalogue test's graph) this changes nothing.
MERGE (s:GraphState {id: 1})
ON CREATE SET s.seq = 0, s.version = $version, s.accepted = $accepted, s.created_at = $now
MERGE (v:Version {seq: 0})
ON CREATE SET v.version = $version, v.accepted = $accepted, v.at = $now, v.change = null, v.cause = 'the graph as first found by the change log'

// name: graph_state_lock
// description: taken first by every writing transaction (ingest batch, curation change): on Neo4j it
// serialises them; on ArcadeDB concurrent ones conflict at commit and are retried
// example: {"now": "2026-01-01T00:00:00+00:00"}
MATCH (s:GraphState {id: 1})
SET s.locked_at = $now
RETURN s.seq AS seq, s.version AS version, s.accepted AS accepted

// name: graph_state_advance
// description: move the change log's head to the next change (guarded by the sequence number read under the lock)
// example: {"expected_seq": -1, "seq": 0, "version": "0", "accepted": 0, "now": "2026-01-01T00:00:00+00:00"}
MATCH (s:GraphState {id: 1})
WHERE s.seq = $expected_seq
SET s.seq = $seq, s.version = $version, s.accepted = $accepted, s.updated_at = $now
RETURN s.seq AS seq

// name: changelog_changes
// description: record changes (one node per command: who, when, what, note)
// example: {"changes": []}
UNWIND $changes AS change
CREATE (c:Change)
SET c = change

// name: changelog_items
// description: record the triples a change touched, each with its properties before and after (JSON)
// example: {"items": []}
UNWIND $items AS item
CREATE (i:ChangeItem)
SET i = item

// name: changelog_versions
// description: record version checkpoints (the graph's version after a change)
// example: {"versions": []}
UNWIND $versions AS version
CREATE (v:Version)
SET v = version

// name: change_by_id
// description: one change and the triples it touched
// example: {"id": "c-20260101-000000-000000"}
MATCH (c:Change {id: $id})
OPTIONAL MATCH (i:ChangeItem {change: $id})
WITH c, i ORDER BY i.relation, i.head, i.tail
RETURN properties(c) AS change, collect(properties(i)) AS items

// name: change_mark_reverted
// description: note on a change that a later change reverted it
// example: {"id": "no such change", "by": "c-20260101-000000-000001"}
MATCH (c:Change {id: $id})
SET c.reverted_by = $by

// name: history_of_triple
// description: every recorded change of one triple, oldest first
// example: {"key": "dog\thas parent\tanimal"}
MATCH (i:ChangeItem {key: $key})
MATCH (c:Change {id: i.change})
RETURN properties(c) AS change, properties(i) AS item
ORDER BY i.seq

// name: history_since
// description: the changes recorded since a date (ISO 8601), newest first
// example: {"since": "2026-01-01", "limit": 50}
MATCH (c:Change)
WHERE c.at >= $since
RETURN properties(c) AS change
ORDER BY c.seq DESC
LIMIT $limit

// name: versions_list
// description: the graph's version checkpoints, oldest first
MATCH (v:Version)
RETURN v.seq AS seq, v.version AS version, v.accepted AS accepted, v.at AS at, v.change AS change, v.cause AS cause
ORDER BY v.seq

// name: version_last
// description: the latest version checkpoint
MATCH (v:Version)
RETURN v.seq AS seq, v.version AS version
ORDER BY v.seq DESC
LIMIT 1

// name: change_add_triples
// description: count more triples written by a change that spans several transactions (an ingest's batches)
// example: {"id": "no such change", "n": 0}
MATCH (c:Change {id: $id})
SET c.triples = coalesce(c.triples, 0) + $n

// name: change_last
// description: the most recent change
MATCH (c:Change)
RETURN c.id AS id, c.seq AS seq, c.action AS action, c.summary AS summary
ORDER BY c.seq DESC
LIMIT 1

// name: change_set_summary
// description: write the final counts on a change (an ingest run's, once it has finished)
// example: {"id": "no such change", "summary": "{}", "triples": 0}
MATCH (c:Change {id: $id})
SET c.summary = $summary, c.triples = $triples

// name: accepted_changes_between
// description: the triples whose accepted-ness changed between two points of the change log, in order
// example: {"after": 0, "upto": 10}
MATCH (i:ChangeItem)
WHERE i.seq > $after AND i.seq <= $upto AND i.was_accepted <> i.is_accepted
RETURN i.head AS head, i.relation AS relation, i.tail AS tail, i.was_accepted AS was_accepted,
       i.is_accepted AS is_accepted, i.seq AS seq
ORDER BY i.seq

// name: curation_set_triples
// description: replace the whole property map of existing triples of one relation
// example: {"rows": [], "relation": "has parent"}
UNWIND $rows AS row
MATCH (:Entity {name: row.head})-[r:__REL__]->(:Entity {name: row.tail})
SET r = row.props

// name: curation_create_triples
// description: create triples of one relation (seen missing under the lock; MERGE as a second guard)
// example: {"rows": [], "relation": "has parent"}
UNWIND $rows AS row
MATCH (h:Entity {name: row.head})
MATCH (t:Entity {name: row.tail})
MERGE (h)-[r:__REL__]->(t)
SET r = row.props

// name: curation_delete_triples
// description: delete triples of one relation (a revert of a change that created them)
// example: {"rows": [], "relation": "has parent"}
UNWIND $rows AS row
MATCH (:Entity {name: row.head})-[r:__REL__]->(:Entity {name: row.tail})
DELETE r

// name: curation_queue_page
// description: one page of the curation queue (all relations), filtered (any filter may be null), after a given
// triple (keyset paging: stable while decisions remove rows) and/or skipping rows
// example: {"status": "rejected", "head": null, "verdict": null, "after_head": null, "after_relation": null, "after_tail": null, "skip": 0, "limit": 20}
// The property maps are built for the page's rows only, after the ordering.
MATCH (h:Entity)-[r]->(t:Entity)
WHERE r.relation IS NOT NULL
  AND ($status IS NULL OR r.status = $status)
  AND ($head IS NULL OR h.name = $head)
  AND ($verdict IS NULL OR r.verdict = $verdict)
  AND ($after_head IS NULL OR h.name > $after_head
       OR (h.name = $after_head AND (r.relation > $after_relation
                                     OR (r.relation = $after_relation AND t.name > $after_tail))))
WITH h, r, t
ORDER BY h.name, r.relation, t.name
SKIP $skip LIMIT $limit
RETURN h.name AS head, r.relation AS relation, t.name AS tail, properties(r) AS props

// name: curation_queue_page_of_relation
// description: one page of the curation queue of one relation (its relationship type: far fewer rows to scan)
// example: {"status": null, "head": null, "verdict": null, "after_head": null, "after_relation": null, "after_tail": null, "skip": 0, "limit": 20, "relation": "has parent"}
MATCH (h:Entity)-[r:__REL__]->(t:Entity)
WHERE ($status IS NULL OR r.status = $status)
  AND ($head IS NULL OR h.name = $head)
  AND ($verdict IS NULL OR r.verdict = $verdict)
  AND ($after_head IS NULL OR h.name > $after_head
       OR (h.name = $after_head AND (r.relation > $after_relation
                                     OR (r.relation = $after_relation AND t.name > $after_tail))))
WITH h, r, t
ORDER BY h.name, t.name
SKIP $skip LIMIT $limit
RETURN h.name AS head, r.relation AS relation, t.name AS tail, properties(r) AS props

// name: curation_queue_count
// description: how many triples the curation queue's filters select
// example: {"status": "rejected", "head": null, "verdict": null}
MATCH (h:Entity)-[r]->(t:Entity)
WHERE r.relation IS NOT NULL
  AND ($status IS NULL OR r.status = $status)
  AND ($head IS NULL OR h.name = $head)
  AND ($verdict IS NULL OR r.verdict = $verdict)
RETURN count(r) AS n

// name: curation_queue_count_of_relation
// description: how many triples of one relation the curation queue's filters select
// example: {"status": null, "head": null, "verdict": null, "relation": "has parent"}
MATCH (h:Entity)-[r:__REL__]->(t:Entity)
WHERE ($status IS NULL OR r.status = $status)
  AND ($head IS NULL OR h.name = $head)
  AND ($verdict IS NULL OR r.verdict = $verdict)
RETURN count(r) AS n

// name: known_tails_any_status
// description: every tail of one head and relation whatever its status (what an unknown-triple error lists)
// example: {"head": "dog", "relation": "has parent"}
MATCH (:Entity {name: $head})-[r:__REL__]->(t:Entity)
RETURN collect(t.name) AS tails
