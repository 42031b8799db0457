-- API keys: the operator's admin keys and per-subscription keys. Only a SHA-256 hash of each key is kept
-- (keys are 192-bit random strings, so a fast hash is enough: there is nothing to brute-force); the prefix
-- lets a person recognise a key in a list.
CREATE TABLE api_keys (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind            text NOT NULL CHECK (kind IN ('admin', 'subscription')),
  subscription_id uuid REFERENCES subscriptions (id) ON DELETE CASCADE,
  key_hash        text NOT NULL UNIQUE,
  prefix          text NOT NULL,
  label           text CHECK (length(label) <= 200),
  created_at      timestamptz NOT NULL DEFAULT now(),
  revoked_at      timestamptz,
  CHECK ((kind = 'admin') = (subscription_id IS NULL))
);
CREATE INDEX api_keys_subscription ON api_keys (subscription_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO omnimeter_app;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
-- A subscription sees its own keys; admin keys are visible to the trusted service only.
CREATE POLICY tenant_isolation ON api_keys
  USING (CASE WHEN subscription_id IS NULL THEN current_setting('omnimeter.tenant', true) = '*'
              ELSE omnimeter_tenant_allows(subscription_id) END)
  WITH CHECK (CASE WHEN subscription_id IS NULL THEN current_setting('omnimeter.tenant', true) = '*'
                   ELSE omnimeter_tenant_allows(subscription_id) END);
