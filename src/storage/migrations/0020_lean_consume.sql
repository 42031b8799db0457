-- Fast and light (issue 18): a lone turn's batch spent most of its time in PL/pgSQL statements and nested
-- function calls, not in its few row writes. omnimeter_consume_batch now charges and writes the common
-- batch (keyless charges the quota covers) in one statement, before the fast and exact paths.

\ir ../functions/consume_batch.sql
