-- Fast and light (issue 18), the consume statement again, without a second copy of any rule: the batch's
-- fast path is one statement that calls omnimeter_charge_quota and omnimeter_write_turns, and
-- omnimeter_write_turns adds the rows it writes to the rollups in its own statement
-- (omnimeter_rollup_turns, which the ledger insert trigger now calls too).

\ir ../functions/rollup_add.sql
\ir ../functions/rollup_turns.sql
\ir ../functions/rollup_inserted.sql
\ir ../functions/write_turns.sql
\ir ../functions/consume_batch.sql

-- omnimeter_write_turns rolls its rows up itself and sets omnimeter.rollups_written to 'on' around its
-- statement (transaction-local, and undone with a subtransaction that fails): the insert trigger skips
-- that statement. Any other insert (a test's, a generator's) is rolled up by the trigger as before.
DROP TRIGGER token_usage_logs_rollup_insert ON token_usage_logs;
CREATE TRIGGER token_usage_logs_rollup_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT
  WHEN (current_setting('omnimeter.rollups_written', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION omnimeter_rollup_inserted();
