-- The credits of outcomes under each attribution model from complete sets of their touches (migration
-- 0021): per outcome, its touches as omnimeter_outcome_touches_refresh writes them (one statement holds all
-- of an outcome's touches), signed. Last touch credits the channel of the latest touch, first touch the
-- earliest's (ties by turn id), linear each channel touches / all touches; the outcome's value follows
-- the share. The same expressions as storage/outcomes.ts's per-outcome reading, so that sums agree exactly.
-- Each credited outcome also leaves the "not credited" row ('' channel), where its outcomes trigger put it.
CREATE OR REPLACE FUNCTION omnimeter_outcome_touch_credits(p_touches outcome_touches[], p_sign integer)
RETURNS omnimeter_credit_change[]
LANGUAGE sql STABLE AS $$
  WITH t AS (SELECT * FROM unnest(p_touches)),
  o AS (
    SELECT o.id, o.subscription_id, o.occurred_at, o.name, coalesce(o.value, 0) AS value
    FROM outcomes o WHERE o.id IN (SELECT DISTINCT outcome_id FROM t)
  )
  SELECT coalesce(array_agg(c), '{}') FROM (
    SELECT ROW(o.subscription_id, o.occurred_at, m.attribution, '', o.name, -p_sign::numeric,
      -p_sign * o.value)::omnimeter_credit_change AS c
    FROM o CROSS JOIN (VALUES ('last_touch'), ('first_touch'), ('linear')) AS m (attribution)
    UNION ALL
    SELECT ROW(o.subscription_id, o.occurred_at, 'last_touch', w.channel, o.name, p_sign::numeric,
      p_sign * (o.value * 1::numeric))::omnimeter_credit_change
    FROM o JOIN (
      SELECT DISTINCT ON (outcome_id) outcome_id, channel FROM t ORDER BY outcome_id, last_at DESC, last_id DESC
    ) AS w ON w.outcome_id = o.id
    UNION ALL
    SELECT ROW(o.subscription_id, o.occurred_at, 'first_touch', w.channel, o.name, p_sign::numeric,
      p_sign * (o.value * 1::numeric))::omnimeter_credit_change
    FROM o JOIN (
      SELECT DISTINCT ON (outcome_id) outcome_id, channel FROM t ORDER BY outcome_id, first_at, first_id
    ) AS w ON w.outcome_id = o.id
    UNION ALL
    SELECT ROW(o.subscription_id, o.occurred_at, 'linear', s.channel, o.name, p_sign * s.share,
      p_sign * (o.value * s.share))::omnimeter_credit_change
    FROM o JOIN (
      SELECT outcome_id, channel, touches::numeric / sum(touches) OVER (PARTITION BY outcome_id) AS share FROM t
    ) AS s ON s.outcome_id = o.id
  ) AS changes;
$$;
