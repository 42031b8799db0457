import { DEFAULT_CURRENCY } from "../core/money.js"
import { GROUP_COMMIT_DEFAULTS } from "../storage/group-commit.js"

/**
 * Every default of a meter, in one place: {@link createMeter} (the library) and the server's composition
 * root (src/container.ts, which calls createMeter with its configuration) both build through here, and
 * src/config.ts reads the ones the environment may override from this light module.
 */
export const METER_DEFAULTS = Object.freeze({
  defaultTimezone: "UTC",
  /** The operator's ISO 4217 currency: prices, costs and outcome values are in it. */
  currency: DEFAULT_CURRENCY,
  /** One process owns the database (the embedded one): every change goes through this meter and is seen. */
  contextCacheTtlMsSingleProcess: 60_000,
  /** Other instances may change a subscription; this bounds how long this one decides with the old settings. */
  contextCacheTtlMsShared: 1_000,
  /** Batches in flight at once, at most the transactions the database can run at once. */
  groupCommitInFlight: GROUP_COMMIT_DEFAULTS.maxInFlight,
  /** Turns per batch at most. */
  groupCommitMaxBatch: GROUP_COMMIT_DEFAULTS.maxBatch,
})
