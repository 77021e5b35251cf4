// The single lock node that serialises concurrent ingests (akg_loader.ingest) stays single.
// name: m003_ingest_lock_unique
CREATE CONSTRAINT ingest_lock_unique IF NOT EXISTS FOR (l:IngestLock) REQUIRE l.id IS UNIQUE
