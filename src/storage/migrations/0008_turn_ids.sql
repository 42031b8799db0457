-- Turn ids assigned by the service, and idempotent twins that are always replayed (issue 10). Design
-- note: src/storage/group-commit.ts ("Commit-unknown") and ARCHITECTURE.md's invariants.
--
-- * omnimeter_consume_batch takes each turn's id from the payload ("id", a UUIDv7 the service makes from
--   the turn's created_at before the batch first runs) instead of gen_random_uuid(). When the connection
--   dies during a batch, the service looks those ids up after the reconnect: a turn with a row was
--   decided as that row says; a turn without one was not written and may run again, and a re-run that
--   meets its first run collides on the primary key (id, created_at) instead of charging twice.
-- * A keyed turn that is to be denied (over quota, or a denial the service decided: rate limit, channel
--   off, ...) first asks omnimeter_twin_charged: when a twin with the same key was charged, or is being
--   charged by a transaction still open, it waits for that twin and answers 'duplicate' (the service
--   replays the twin), and writes no denial row. Before, a twin that had checked the key just before the
--   other committed was denied 402 and a denial row was written.
-- * omnimeter_settle finds a UUIDv7 turn in the one partition of its time: the id's first 48 bits are its
--   created_at in milliseconds. Other ids (imports, rows from before this migration) are found as before.
--
-- The functions are applied from their source files (src/storage/functions, ARCHITECTURE.md "Database
-- functions"): a database migrated from empty gets their current definitions here, and 0009 applies
-- consume_batch again beside the omnimeter_write_turns it calls.

ALTER TYPE omnimeter_batch_turn ADD ATTRIBUTE id uuid;

\ir ../functions/uuid7_time.sql

\ir ../functions/twin_charged.sql

\ir ../functions/consume_batch.sql

\ir ../functions/settle.sql
