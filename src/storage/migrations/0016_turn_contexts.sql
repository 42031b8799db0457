-- Fast and light (issue 18). The meter's context cache holds a subscription with every channel's
-- overrides, read at once by omnimeter_turn_contexts: with the 1 s cache of PostgreSQL mode, a subscription
-- whose turns come over three channels was read three times as often (omnimeter_turn_context, one
-- channel per read, stays for callers of older builds during a rolling upgrade).

\ir ../functions/turn_contexts.sql

GRANT EXECUTE ON FUNCTION omnimeter_turn_contexts(text, text) TO omnimeter_app;
