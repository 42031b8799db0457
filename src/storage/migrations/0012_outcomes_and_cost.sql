-- What each channel earns and costs (issue 14): money cost per turn, outcomes (conversions), feedback and
-- sentiment. The ledger itself is unchanged: what a turn carries beyond quota lives in turn_details, written
-- only for turns that have a model, a token split or a sentiment, so a plain turn costs nothing more.

-- The operator's price list: one currency (OMNIMETER_CURRENCY), prices per million tokens with at most 6
-- decimals, each in force from effective_from until the model's next row. Shared by every tenant.
CREATE TABLE model_prices (
  model text NOT NULL,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  effective_from timestamptz NOT NULL,
  input_per_million numeric(18, 6) NOT NULL CHECK (input_per_million >= 0),
  output_per_million numeric(18, 6) NOT NULL CHECK (output_per_million >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, currency, effective_from)
);

-- Per turn: the model (consume or settle), the token split and the money cost fixed at settlement or import
-- (micro-units, exact), and the sentiment of the end user's message (consume). Keyed by the ledger id.
CREATE TABLE turn_details (
  usage_id uuid PRIMARY KEY,
  subscription_id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  channel text NOT NULL,
  model text,
  input_tokens bigint CHECK (input_tokens >= 0),
  output_tokens bigint CHECK (output_tokens >= 0),
  cost_micros numeric CHECK (cost_micros >= 0),
  sentiment numeric(5, 4) CHECK (sentiment BETWEEN -1 AND 1)
);
CREATE INDEX turn_details_subscription_created ON turn_details (subscription_id, created_at);

-- An end user reaching a goal. Attribution to a channel is computed when read (three models, a lookback
-- per request), so it is not stored.
CREATE TABLE outcomes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id uuid NOT NULL,
  name text NOT NULL,
  value numeric(20, 6) CHECK (value >= 0),
  currency text CHECK (currency ~ '^[A-Z]{3}$'),
  user_identifier text NOT NULL,
  session_id text,
  channel text,
  occurred_at timestamptz NOT NULL,
  idempotency_key text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (subscription_id, idempotency_key)
);
CREATE INDEX outcomes_subscription_occurred ON outcomes (subscription_id, occurred_at);

-- A rating of a turn or a session: CSAT 1-5 or thumbs up/down, with the channel it was given on.
CREATE TABLE feedback (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id uuid NOT NULL,
  usage_id uuid,
  session_id text,
  channel text NOT NULL,
  csat smallint CHECK (csat BETWEEN 1 AND 5),
  thumbs text CHECK (thumbs IN ('up', 'down')),
  idempotency_key text NOT NULL,
  created_at timestamptz NOT NULL,
  UNIQUE (subscription_id, idempotency_key),
  CHECK ((csat IS NULL) <> (thumbs IS NULL)),
  CHECK (usage_id IS NOT NULL OR session_id IS NOT NULL)
);
CREATE INDEX feedback_subscription_created ON feedback (subscription_id, created_at);

GRANT SELECT, INSERT, UPDATE ON model_prices TO omnimeter_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON turn_details, outcomes, feedback TO omnimeter_app;

ALTER TABLE turn_details ENABLE ROW LEVEL SECURITY;
ALTER TABLE outcomes ENABLE ROW LEVEL SECURITY;
ALTER TABLE feedback ENABLE ROW LEVEL SECURITY;
-- Read once per query, not per row (as the rollups' policies, migration 0005): analytics reads many rows.
CREATE POLICY tenant_isolation ON turn_details
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON outcomes
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON feedback
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));

\ir ../functions/turn_cost.sql
GRANT EXECUTE ON FUNCTION omnimeter_turn_cost(text, text, timestamptz, bigint, bigint) TO omnimeter_app;

-- Settlement takes the model, the token split and the currency to price them in.
DROP FUNCTION omnimeter_settle(uuid, bigint, timestamptz, text, integer);
\ir ../functions/settle.sql
GRANT EXECUTE ON FUNCTION omnimeter_settle(uuid, bigint, timestamptz, text, integer, text, bigint, bigint, text)
  TO omnimeter_app;
