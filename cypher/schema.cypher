// Bookkeeping of the schema migrations (akg.migrations).

// name: migrations_applied
// description: ids of the schema migrations already applied, in order
MATCH (m:Migration) RETURN m.id AS id, m.name AS name, m.applied_at AS applied_at ORDER BY id

// name: migration_record
// description: record one applied migration (idempotent)
// example: {"id": 1, "name": "001_migration_id_unique", "applied_at": "2026-01-01T00:00:00+00:00"}
MERGE (m:Migration {id: $id}) ON CREATE SET m.name = $name, m.applied_at = $applied_at
