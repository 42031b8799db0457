-- omnimeter schema, version 1. Applied by src/storage/migrator.ts only, in one transaction, under the
-- migrator's advisory lock; identical on PGlite and PostgreSQL.

-- The application's role. Every query the service runs goes through it, so row level security applies
-- (the table owner and superusers bypass RLS). Roles are cluster-wide: another database may have made it.
DO $$
BEGIN
  CREATE ROLE omnimeter_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
GRANT omnimeter_app TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO omnimeter_app;

-- Which tenant the current transaction may see: '*' for the trusted service (the library, the admin
-- key), a subscription id for a subscription key, unset (nothing visible) otherwise.
CREATE FUNCTION omnimeter_tenant_allows(subscription uuid) RETURNS boolean
  LANGUAGE sql STABLE
  AS $$ SELECT coalesce(current_setting('omnimeter.tenant', true) IN ('*', subscription::text), false) $$;

CREATE TABLE subscriptions (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  entity_id      text NOT NULL CHECK (length(entity_id) BETWEEN 1 AND 255),
  entity_type    text NOT NULL CHECK (length(entity_type) BETWEEN 1 AND 64),
  plan           text NOT NULL CHECK (plan IN ('basic', 'professional', 'enterprise')),
  token_limit    bigint NOT NULL CHECK (token_limit >= 0),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'cancelled')),
  timezone       text NOT NULL DEFAULT 'UTC',
  -- Billing periods are whole months counted from this instant (src/core/period.ts).
  period_anchor  timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  -- The middleware identifies a subscription by its entity: one subscription per entity.
  UNIQUE (entity_type, entity_id)
);

-- Per-subscription overrides of the channel defaults in src/core/channels.ts; NULL means "the default".
CREATE TABLE channel_configurations (
  subscription_id     uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  channel             text NOT NULL CHECK (channel IN ('website', 'whatsapp', 'messenger', 'instagram', 'telegram', 'api')),
  enabled             boolean,
  requests_per_minute integer CHECK (requests_per_minute >= 0),
  tokens_per_minute   integer CHECK (tokens_per_minute >= 0),
  max_message_length  integer CHECK (max_message_length >= 1),
  token_multiplier    numeric(6, 2) CHECK (token_multiplier > 0 AND token_multiplier <= 10),
  priority            smallint CHECK (priority BETWEEN 1 AND 10),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subscription_id, channel)
);

-- Billed tokens granted per billing period. The only place quota is decided: the consume statement adds to
-- used_tokens only WHERE used_tokens + billed <= token_limit, so concurrent turns can never overspend.
-- Invariant: used_tokens = sum(billed_tokens) of the period's allowed ledger rows.
CREATE TABLE quota_counters (
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  period_start    timestamptz NOT NULL,
  used_tokens     bigint NOT NULL CHECK (used_tokens >= 0),
  PRIMARY KEY (subscription_id, period_start)
);

-- The durable ledger: one row per metered turn, allowed or denied. Append-only except for settlement.
-- No foreign key to subscriptions: it would add a lookup and a row lock to every hot-path insert, and
-- subscriptions are cancelled, never deleted.
CREATE TABLE token_usage_logs (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id  uuid NOT NULL,
  channel          text NOT NULL,
  chatbot_id       text,
  session_id       text,
  user_identifier  text,
  operation_type   text NOT NULL,
  status           text NOT NULL CHECK (status IN ('estimated', 'settled', 'denied')),
  denial_reason    text CHECK ((status = 'denied') = (denial_reason IS NOT NULL)),
  estimated_tokens bigint NOT NULL CHECK (estimated_tokens >= 0),
  -- raw and billed tokens hold the estimate until settlement, then what the LLM really used.
  raw_tokens       bigint NOT NULL CHECK (raw_tokens >= 0),
  billed_tokens    bigint NOT NULL CHECK (billed_tokens >= 0),
  token_multiplier numeric(6, 2) NOT NULL,
  message_length   integer,
  idempotency_key  text,
  -- The billing period the turn was charged to (NULL for denials): settlement adjusts that period's counter.
  period_start     timestamptz,
  created_at       timestamptz NOT NULL,
  settled_at       timestamptz,
  outcome          text CHECK (outcome IN ('ok', 'error')),
  latency_ms       integer CHECK (latency_ms >= 0)
);

-- Idempotency: one charged turn per key and subscription. A race between two calls with one key ends in a
-- unique violation for the loser, whose whole statement (counter increment included) rolls back.
-- Denials do not hold the key, so a retry after a denial is decided afresh.
CREATE UNIQUE INDEX token_usage_logs_idempotency
  ON token_usage_logs (subscription_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL AND status <> 'denied';

-- Period and range reads of one subscription's ledger (quota audits, analytics over raw rows).
CREATE INDEX token_usage_logs_subscription_time ON token_usage_logs (subscription_id, created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON subscriptions, channel_configurations, quota_counters, token_usage_logs
  TO omnimeter_app;

ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE channel_configurations ENABLE ROW LEVEL SECURITY;
ALTER TABLE quota_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE token_usage_logs ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON subscriptions
  USING (omnimeter_tenant_allows(id)) WITH CHECK (omnimeter_tenant_allows(id));
CREATE POLICY tenant_isolation ON channel_configurations
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
CREATE POLICY tenant_isolation ON quota_counters
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
CREATE POLICY tenant_isolation ON token_usage_logs
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
