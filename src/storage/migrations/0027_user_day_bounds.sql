-- The first and last day of each users' day map (issue 18, target 5). The unique-users read tested every
-- row's bit(366) map against each range's days, four ANDs of 366 bits a row, a third of the comprehensive
-- answer's longest statement. With the bounds stored beside the map, a range decides most rows by two
-- integer comparisons: a row whose first or last day falls in the range's days (contiguous within a year)
-- has a day in it, one whose days all lie outside has none, and only a map that spans the whole range
-- without a day at either bound is ANDed. 0-based like the bits. Written by every writer of the maps: the
-- upsert (least and greatest of the one-day bits it adds), the deletions' forget function (recomputed from
-- the bits left) and the rebuild (src/storage/rollups.ts). Not generated columns: on PGlite, deriving the
-- last day from the bits in every upsert (a text cast of 366 bits) cost about 25 us a row, 10% of the
-- demo's history.
\ir ../functions/first_day.sql
\ir ../functions/last_day.sql
GRANT EXECUTE ON FUNCTION omnimeter_first_day(bit), omnimeter_last_day(bit) TO omnimeter_app;
ALTER TABLE channel_user_days ADD COLUMN first_day smallint, ADD COLUMN last_day smallint;
UPDATE channel_user_days SET first_day = omnimeter_first_day(days), last_day = omnimeter_last_day(days);
ALTER TABLE channel_user_days ALTER COLUMN first_day SET NOT NULL, ALTER COLUMN last_day SET NOT NULL;
\ir ../functions/rollup_add_user_days.sql
\ir ../functions/rollup_forget_users.sql
