-- The same rule as omnimeter_tenant_allows, written so that the tenant setting is read once per query (two
-- InitPlans) instead of once per row: analytics reads tens of thousands of rollup rows per answer, and the
-- per-row form cost more than the rest of the query.
CREATE OR REPLACE FUNCTION omnimeter_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN nullif(current_setting('omnimeter.tenant', true), '*')::uuid;
EXCEPTION WHEN invalid_text_representation THEN
  RETURN NULL;
END $$;
