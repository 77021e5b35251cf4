// Entity names are the AKG's identity: unique, and indexed by the constraint for every lookup.
// name: m002_entity_name_unique
CREATE CONSTRAINT entity_name_unique IF NOT EXISTS FOR (e:Entity) REQUIRE e.name IS UNIQUE
