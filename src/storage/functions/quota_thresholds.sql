-- quota.threshold_reached, detected where the quota changes: the counter. Runs in the consume/settle
-- transaction, so the alert (and its outbox rows) commit with the tokens that crossed the threshold, or
-- not at all. The counter row is locked by the update that fires this, and UNIQUE (subscription,
-- dedupe_key) makes each threshold fire once per billing period even if settlement refunds below it and a
-- later turn crosses it again. The common case (no threshold between OLD and NEW) costs one primary-key
-- lookup and returns. Counters of periods that began more than 31 days ago are history (a usage import
-- backfilling past months): they raise nothing.
CREATE OR REPLACE FUNCTION omnimeter_quota_thresholds() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_old bigint := CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.used_tokens END;
  v_limit bigint;
  v_thresholds numeric[];
  v_threshold numeric;
  v_mark bigint;
BEGIN
  IF NEW.period_start < now() - interval '31 days' THEN
    RETURN NULL;
  END IF;
  SELECT s.token_limit, coalesce(a.quota_thresholds, '{0.5,0.8,0.95,1.0}')
    INTO v_limit, v_thresholds
  FROM subscriptions s LEFT JOIN alert_settings a ON a.subscription_id = s.id
  WHERE s.id = NEW.subscription_id;
  IF v_limit IS NULL OR v_limit = 0 THEN
    RETURN NULL;
  END IF;
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
    END IF;
  END LOOP;
  RETURN NULL;
END $$;
