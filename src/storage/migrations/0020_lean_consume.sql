-- Fast and light (issue 18): a lone turn's batch spent most of its time in PL/pgSQL statements and nested
-- function calls, not in its few row writes. omnimeter_consume_batch now charges and writes the common
-- batch (keyless charges the quota covers) in one statement, before the fast and exact paths.

\ir ../functions/consume_batch.sql

-- The lean statement writes its own rollups (see consume_batch.sql): the insert trigger skips a statement
-- run while omnimeter.rollups_written is 'on', which only that function sets, around that statement.
DROP TRIGGER token_usage_logs_rollup_insert ON token_usage_logs;
CREATE TRIGGER token_usage_logs_rollup_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT
  WHEN (current_setting('omnimeter.rollups_written', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION omnimeter_rollup_inserted();
