-- One quota charge (issue 12): omnimeter_charge_quota is the one place a quota counter grows. The batch's
-- fast path (whole groups), its exact path (one turn) and the usage import (uncapped) call it, instead of
-- writing the counter upsert three times.

\ir ../functions/charge_quota.sql
\ir ../functions/consume_batch.sql

GRANT EXECUTE ON FUNCTION omnimeter_charge_quota(uuid[], timestamptz[], bigint[], boolean, bigint) TO omnimeter_app;
