-- A turn's money cost in micro-units of the operator's currency (1 micro-unit = 10^-6 of the currency's
-- major unit): input_tokens x input price + output_tokens x output price, the prices per million tokens in
-- force at the turn's time. Tokens times a price per million tokens IS micro-units, so the result is exact
-- numeric (prices have at most 6 decimals, so it has at most 6 fractional digits) and needs no rounding.
-- NULL when the model, the split or a price for that time is unknown: an unpriced turn, never 0.
CREATE OR REPLACE FUNCTION omnimeter_turn_cost(p_model text, p_currency text, p_at timestamptz,
  p_input bigint, p_output bigint)
RETURNS numeric
LANGUAGE sql STABLE AS $$
  SELECT p_input * p.input_per_million + p_output * p.output_per_million
  FROM model_prices p
  WHERE p_model IS NOT NULL AND p_input IS NOT NULL AND p_output IS NOT NULL
    AND p.model = p_model AND p.currency = p_currency AND p.effective_from <= p_at
  ORDER BY p.effective_from DESC
  LIMIT 1
$$;
