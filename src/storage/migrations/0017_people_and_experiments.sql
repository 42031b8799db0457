-- People across channels and experiments on channels (issue 15). Design notes in ARCHITECTURE.md
-- ("People, journeys and experiments").
--
-- person_identifiers  which (channel, user_identifier) pairs are one person. At most one person per pair
--                     (the primary key); an identifier without a row is a person of its own. Journeys and
--                     experiment results join the ledger to it when they are read, so a link made today
--                     applies to every past turn too: nothing is frozen at write time.
-- experiments         an experiment on one or more channels: its variants (name, weight, overrides, label)
--                     as JSON, its primary metric and its status (draft, running, stopped). Consume reads
--                     the running ones with the subscription's context.

CREATE TABLE person_identifiers (
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  channel         text NOT NULL CHECK (channel IN ('website', 'whatsapp', 'messenger', 'instagram', 'telegram', 'api')),
  user_identifier text NOT NULL CHECK (length(user_identifier) BETWEEN 1 AND 255),
  person_id       text NOT NULL CHECK (length(person_id) BETWEEN 1 AND 64),
  linked_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subscription_id, channel, user_identifier)
);
CREATE INDEX person_identifiers_person ON person_identifiers (subscription_id, person_id);

CREATE TABLE experiments (
  id              uuid PRIMARY KEY,
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  channels        text[] NOT NULL CHECK (cardinality(channels) >= 1),
  variants        jsonb NOT NULL,
  primary_metric  text NOT NULL CHECK (primary_metric IN ('conversion_rate', 'tokens_per_turn',
                    'cost_per_conversion', 'sentiment_avg', 'csat_avg')),
  status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'running', 'stopped')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  stopped_at      timestamptz
);
CREATE INDEX experiments_subscription ON experiments (subscription_id, created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON person_identifiers, experiments TO omnimeter_app;

ALTER TABLE person_identifiers ENABLE ROW LEVEL SECURITY;
ALTER TABLE experiments ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON person_identifiers
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
CREATE POLICY tenant_isolation ON experiments
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
