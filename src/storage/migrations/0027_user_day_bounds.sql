-- The first and last day of each users' day map (issue 18, target 5). The unique-users read tested every
-- row's bit(366) map against each range's days, four ANDs of 366 bits a row, a third of the comprehensive
-- answer's longest statement. With the bounds stored beside the map, a range decides most rows by two
-- integer comparisons: a row whose first or last day falls in the range's days (contiguous within a year)
-- has a day in it, one whose days all lie outside has none, and only a map that spans the whole range
-- without a day at either bound is ANDed. Generated from `days`, so every writer (the rollup upsert, the
-- users a deletion forgets, the rebuild) keeps them right without knowing of them. 0-based like the bits;
-- a map without a day (deleted at once by omnimeter_rollup_forget_users) has -1 for both.
ALTER TABLE channel_user_days
  ADD COLUMN first_day smallint NOT NULL GENERATED ALWAYS AS (position(B'1' IN days) - 1) STORED,
  ADD COLUMN last_day smallint NOT NULL GENERATED ALWAYS AS (length(rtrim(days::text, '0')) - 1) STORED;
