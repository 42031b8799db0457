-- Fast and light (issue 18): the quota-threshold trigger started PL/pgSQL on every counter change, which on
-- a spread workload is once per turn.

-- The quota-threshold trigger runs only when a counter change reaches the next threshold mark, which the
-- counter now keeps (next_alert_tokens; 0 = look at the next change): the WHEN clause is evaluated
-- without starting PL/pgSQL. The period's first charge (an INSERT) still runs it.
ALTER TABLE quota_counters ADD COLUMN next_alert_tokens bigint DEFAULT 0;

\ir ../functions/quota_thresholds.sql
\ir ../functions/quota_marks_reset.sql

DROP TRIGGER quota_counters_thresholds ON quota_counters;
CREATE TRIGGER quota_counters_thresholds_inserted
  AFTER INSERT ON quota_counters
  FOR EACH ROW WHEN (NEW.used_tokens > 0)
  EXECUTE FUNCTION omnimeter_quota_thresholds();
CREATE TRIGGER quota_counters_thresholds
  BEFORE UPDATE OF used_tokens ON quota_counters
  FOR EACH ROW WHEN (NEW.used_tokens >= OLD.next_alert_tokens)
  EXECUTE FUNCTION omnimeter_quota_thresholds();
CREATE TRIGGER subscriptions_quota_marks_reset
  AFTER UPDATE OF token_limit ON subscriptions
  FOR EACH ROW WHEN (OLD.token_limit IS DISTINCT FROM NEW.token_limit)
  EXECUTE FUNCTION omnimeter_quota_marks_reset();
CREATE TRIGGER alert_settings_quota_marks_reset
  AFTER INSERT OR UPDATE OR DELETE ON alert_settings
  FOR EACH ROW EXECUTE FUNCTION omnimeter_quota_marks_reset();
