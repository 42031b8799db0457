-- Alerts and signed webhooks (issue 7). Design note in ARCHITECTURE.md ("Alerts and the webhook outbox").
--
-- alerts             every event that happened (quota threshold, rate limit, spike, channel health, test),
--                    unique per (subscription, dedupe_key): "once per threshold per billing period" and
--                    "once per channel per minute" are constraints, not hopes.
-- webhook_endpoints  where a subscription wants events sent, with the secret that signs them.
-- webhook_deliveries the outbox: one row per (alert, endpoint), written by a trigger in the same
--                    transaction as the alert, so an event is never lost between "it happened" and "send it".

-- Per-subscription alert settings. No row means the defaults.
CREATE TABLE alert_settings (
  subscription_id  uuid PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
  -- Fractions of the period's token limit; each fires quota.threshold_reached once per billing period.
  quota_thresholds numeric[] NOT NULL DEFAULT '{0.5,0.8,0.95,1.0}'
    CHECK (cardinality(quota_thresholds) BETWEEN 1 AND 10 AND 0 < ALL (quota_thresholds) AND 1 >= ALL (quota_thresholds)),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alerts (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Insertion order: deliveries to one endpoint follow it.
  seq             bigserial NOT NULL UNIQUE,
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  type            text NOT NULL CHECK (type IN ('quota.threshold_reached', 'rate_limit.exceeded',
                    'usage.spike_detected', 'usage.spike_resolved', 'channel.health_degraded',
                    'channel.health_recovered', 'webhook.test')),
  channel         text CHECK (channel IN ('website', 'whatsapp', 'messenger', 'instagram', 'telegram', 'api')),
  -- What makes an event the same event: e.g. quota:<period epoch>:<threshold>, rate_limit:<channel>:<minute>.
  dedupe_key      text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 200),
  data            jsonb NOT NULL,
  occurred_at     timestamptz NOT NULL,
  UNIQUE (subscription_id, dedupe_key)
);
CREATE INDEX alerts_subscription_seq ON alerts (subscription_id, seq);

CREATE TABLE webhook_endpoints (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  url             text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
  description     text CHECK (length(description) <= 200),
  event_types     text[] NOT NULL CHECK (cardinality(event_types) >= 1),
  -- Kept in plain text because signing needs it (a hash would not do); only the owning subscription and
  -- the trusted service can read it (row level security), and the API shows it once, at creation.
  secret          text NOT NULL,
  enabled         boolean NOT NULL DEFAULT true,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_subscription ON webhook_endpoints (subscription_id);

CREATE TABLE webhook_deliveries (
  id               bigserial PRIMARY KEY,
  alert_id         uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
  endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  subscription_id  uuid NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  -- '-infinity' = due now, whatever the clock of the worker that picks it up.
  next_attempt_at  timestamptz NOT NULL DEFAULT '-infinity',
  -- A worker owns a row while lease_until is in the future; several instances can run workers.
  lease_owner      text,
  lease_until      timestamptz,
  last_attempt_at  timestamptz,
  last_status_code integer,
  last_error       text,
  delivered_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (alert_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

-- Outbox fan-out: an alert becomes one delivery per enabled endpoint that asked for its type, in the
-- alert's own transaction. Test events are addressed to one endpoint by the service instead.
CREATE FUNCTION omnimeter_alert_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.type <> 'webhook.test' THEN
    INSERT INTO webhook_deliveries (alert_id, endpoint_id, subscription_id)
    SELECT NEW.id, e.id, e.subscription_id FROM webhook_endpoints e
    WHERE e.subscription_id = NEW.subscription_id AND e.enabled AND NEW.type = ANY (e.event_types);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER alerts_fan_out AFTER INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION omnimeter_alert_fan_out();

-- quota.threshold_reached, detected where the quota changes: the counter. Runs in the consume/settle
-- transaction, so the alert (and its outbox rows) commit with the tokens that crossed the threshold, or
-- not at all. The counter row is locked by the update that fires this, and UNIQUE (subscription,
-- dedupe_key) makes each threshold fire once per billing period even if settlement refunds below it and a
-- later turn crosses it again. The common case (no threshold between OLD and NEW) costs one primary-key
-- lookup and returns. Counters of periods that began more than 31 days ago are history (a usage import
-- backfilling past months): they raise nothing.
CREATE FUNCTION omnimeter_quota_thresholds() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER quota_counters_thresholds
  AFTER INSERT OR UPDATE OF used_tokens ON quota_counters
  FOR EACH ROW WHEN (NEW.used_tokens > 0)
  EXECUTE FUNCTION omnimeter_quota_thresholds();

GRANT SELECT, INSERT, UPDATE, DELETE ON alert_settings, alerts, webhook_endpoints, webhook_deliveries
  TO omnimeter_app;
GRANT USAGE, SELECT ON SEQUENCE alerts_seq_seq, webhook_deliveries_id_seq TO omnimeter_app;

ALTER TABLE alert_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON alert_settings
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
CREATE POLICY tenant_isolation ON alerts
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
CREATE POLICY tenant_isolation ON webhook_endpoints
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
CREATE POLICY tenant_isolation ON webhook_deliveries
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
