-- Custom dashboards (issue 16): a subscription's saved views, each a name and an ordered list of widgets
-- picked from the catalog in src/core/dashboards.ts, with their filters. The service validates the widgets
-- (kind, period, channels) before it writes; the checks here are the last line, so that no path (SQL by
-- hand, a future import) can store a view the dashboard could not draw.
CREATE TABLE dashboards (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
  -- An ordered JSON array of widgets: { kind, title, period, channels, chatbotId }.
  widgets         jsonb NOT NULL CHECK (jsonb_typeof(widgets) = 'array' AND jsonb_array_length(widgets) <= 12),
  -- Bumped by every change; a PATCH that names the version it read is refused (409) when it moved since.
  version         integer NOT NULL DEFAULT 1 CHECK (version >= 1),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (subscription_id, name)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON dashboards TO omnimeter_app;

ALTER TABLE dashboards ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dashboards
  USING (omnimeter_tenant_allows(subscription_id)) WITH CHECK (omnimeter_tenant_allows(subscription_id));
