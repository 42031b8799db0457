-- Which tenant the current transaction may see: '*' for the trusted service (the library, the admin
-- key), a subscription id for a subscription key, unset (nothing visible) otherwise.
CREATE OR REPLACE FUNCTION omnimeter_tenant_allows(subscription uuid) RETURNS boolean
  LANGUAGE sql STABLE
  AS $$ SELECT coalesce(current_setting('omnimeter.tenant', true) IN ('*', subscription::text), false) $$;
