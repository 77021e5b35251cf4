// The curation change log (curation/, akg/changelog.py): one GraphState node holding the change
// sequence and the graph's version, Change nodes (one per command), ChangeItem nodes (one per
// triple a change touched), Version checkpoints. Ids unique; the lookups by triple, change and
// sequence number indexed.
// name: m004_graph_state_unique
CREATE CONSTRAINT graph_state_id_unique IF NOT EXISTS FOR (s:GraphState) REQUIRE s.id IS UNIQUE
// name: m004_change_id_unique
CREATE CONSTRAINT change_id_unique IF NOT EXISTS FOR (c:Change) REQUIRE c.id IS UNIQUE
// name: m004_change_item_key
CREATE INDEX change_item_key IF NOT EXISTS FOR (i:ChangeItem) ON (i.key)
// name: m004_change_item_change
CREATE INDEX change_item_change IF NOT EXISTS FOR (i:ChangeItem) ON (i.change)
// name: m004_change_item_seq
CREATE INDEX change_item_seq IF NOT EXISTS FOR (i:ChangeItem) ON (i.seq)
// name: m004_version_seq
CREATE INDEX version_seq IF NOT EXISTS FOR (v:Version) ON (v.seq)
