-- quota.threshold_reached, detected where the quota changes: the counter. Runs in the consume/settle
-- transaction, so the alert (and its outbox rows) commit with the tokens that crossed the threshold, or
-- not at all. The counter row is locked by the update that fires this, and UNIQUE (subscription,
-- dedupe_key) makes each threshold fire once per billing period even if settlement refunds below it and a
-- later turn crosses it again. Counters of periods that began more than 31 days ago are history (a usage
-- import backfilling past months): they raise nothing.
-- Since migration 0020 it runs AFTER INSERT (a period's first charge) and BEFORE UPDATE, where it also
-- sets the counter's next_alert_tokens to the lowest mark above the new count (NULL: none will come). The
-- update trigger's WHEN clause (NEW.used_tokens >= OLD.next_alert_tokens) lets a change that reaches no
-- mark pass without starting this function: before, every counter move ran it and its lookup. A change
-- of the subscription's limit or alert settings sets next_alert_tokens back to 0
-- (omnimeter_quota_marks_reset). A refund leaves it where it is: a mark below it was crossed already, so
-- crossing it again would raise nothing (the alert exists).
CREATE OR REPLACE FUNCTION omnimeter_quota_thresholds() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_old bigint := CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.used_tokens END;
  v_limit bigint;
  v_thresholds numeric[];
  v_threshold numeric;
  v_mark bigint;
  v_next bigint;
BEGIN
  IF NEW.period_start >= now() - interval '31 days' THEN
    SELECT s.token_limit, coalesce(a.quota_thresholds, '{0.5,0.8,0.95,1.0}')
      INTO v_limit, v_thresholds
    FROM subscriptions s LEFT JOIN alert_settings a ON a.subscription_id = s.id
    WHERE s.id = NEW.subscription_id;
    IF v_limit > 0 THEN
      FOREACH v_threshold IN ARRAY v_thresholds LOOP
        v_mark := ceil(v_threshold * v_limit);
        IF v_old < v_mark AND NEW.used_tokens >= v_mark THEN
          INSERT INTO alerts (subscription_id, type, dedupe_key, data, occurred_at)
          VALUES (NEW.subscription_id, 'quota.threshold_reached',
            'quota:' || extract(epoch FROM NEW.period_start)::bigint || ':' || v_threshold::text,
            jsonb_build_object('threshold', v_threshold, 'used_tokens', NEW.used_tokens, 'token_limit', v_limit,
              'period_start', NEW.period_start),
            now())
          ON CONFLICT (subscription_id, dedupe_key) DO NOTHING;
        ELSIF v_mark > NEW.used_tokens THEN
          v_next := least(v_next, v_mark);
        END IF;
      END LOOP;
    END IF;
  END IF;
  IF TG_WHEN = 'BEFORE' THEN
    NEW.next_alert_tokens := v_next;
    RETURN NEW;
  END IF;
  RETURN NULL;
END $$;
