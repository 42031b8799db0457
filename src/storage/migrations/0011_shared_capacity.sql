-- Priority-aware admission (issue 13). A subscription may set a capacity shared by all its channels
-- (requests and tokens per minute; NULL: none), a priority curve (the percent of that capacity each
-- priority 1..10 may fill; NULL: the default curve of src/core/capacity.ts), and a quota reserve (the last
-- quota_reserve_percent of the period's limit, kept for channels of priority quota_reserve_min_priority or
-- more). The capacity is enforced by the rate limiter; the reserve by omnimeter_consume_batch, which now
-- receives each turn's priority.

ALTER TABLE subscriptions
  ADD COLUMN capacity_requests_per_minute integer CHECK (capacity_requests_per_minute >= 1),
  ADD COLUMN capacity_tokens_per_minute integer CHECK (capacity_tokens_per_minute >= 1),
  ADD COLUMN priority_curve smallint[] CHECK (
    priority_curve IS NULL OR (cardinality(priority_curve) = 10 AND 0 <= ALL (priority_curve)
      AND 100 >= ALL (priority_curve))),
  ADD COLUMN quota_reserve_percent smallint NOT NULL DEFAULT 0
    CHECK (quota_reserve_percent BETWEEN 0 AND 50),
  ADD COLUMN quota_reserve_min_priority smallint NOT NULL DEFAULT 8
    CHECK (quota_reserve_min_priority BETWEEN 1 AND 10);

-- The turn's channel priority, for the quota reserve. NULL (a service that predates it) counts as 10.
ALTER TYPE omnimeter_batch_turn ADD ATTRIBUTE priority integer;

DROP FUNCTION omnimeter_turn_context(text, text, text);
\ir ../functions/turn_context.sql
GRANT EXECUTE ON FUNCTION omnimeter_turn_context(text, text, text) TO omnimeter_app;

\ir ../functions/consume_batch.sql

-- capacity.shed: a minute in which a rising share of a channel's turns was shed for higher priorities.
ALTER TABLE alerts DROP CONSTRAINT alerts_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_type_check CHECK (type IN ('quota.threshold_reached',
  'rate_limit.exceeded', 'usage.spike_detected', 'usage.spike_resolved', 'channel.health_degraded',
  'channel.health_recovered', 'capacity.shed', 'webhook.test'));
