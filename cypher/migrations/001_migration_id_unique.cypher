// The migration log itself: one node per applied migration.
// name: m001_migration_id_unique
CREATE CONSTRAINT migration_id_unique IF NOT EXISTS FOR (m:Migration) REQUIRE m.id IS UNIQUE
