/**
 * Saved dashboards (issue 16): a subscription's named views, each an ordered list of widgets from the
 * catalog in core/dashboards.ts with their filters. Handlers call it with the caller's tenant scope; row
 * level security holds the line beneath.
 *
 * Concurrency: every change bumps `version`. A change that names the version it was made from is refused
 * with `conflict` when the dashboard moved on since (optimistic concurrency); one that names none replaces
 * what it sets (last write wins). Creation is serialised per subscription, so the per-subscription limit
 * holds under concurrent creations.
 */
import type { Clock } from "../core/clock.js"
import {
  DASHBOARD_LIMITS,
  DEFAULT_PERIOD_PRESET,
  type PeriodPreset,
  presetDays,
  type Widget,
  type WidgetKind,
  widgetProblem,
} from "../core/dashboards.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import type { Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import { type LocalDate, todayIn } from "../core/time-zones.js"
import { validate } from "../core/validate.js"
import {
  type DashboardRow,
  deleteDashboard,
  findDashboard,
  insertDashboard,
  listDashboards,
  lockAndCountDashboards,
  updateDashboard,
} from "../storage/dashboards.js"
import type { Database } from "../storage/database.js"
import { withVisibleSubscription } from "../storage/scoped.js"
import { isUniqueViolation } from "../storage/subscriptions.js"
import {
  type CreateDashboardInput,
  CreateDashboardSchema,
  type UpdateDashboardInput,
  UpdateDashboardSchema,
  type WidgetInput,
} from "./inputs.js"

/** A widget as stored and answered: every filter present, and the local days its preset covers today. */
export interface SavedWidget {
  kind: WidgetKind
  title: string | null
  period: PeriodPreset
  channels: Widget["channels"] & object
  chatbotId: string | null
  /** First and last local day of `period` now, in the subscription's timezone. */
  from: LocalDate
  to: LocalDate
}

export interface Dashboard extends Omit<DashboardRow, "widgets"> {
  /** The subscription's timezone, which the widgets' days are in. */
  timezone: string
  widgets: SavedWidget[]
}

export interface DashboardServiceOptions {
  database: Database
  clock: Clock
}

/** The stored form of validated widgets: defaults written out, so a later default change moves nothing. */
function normalise(widgets: readonly WidgetInput[]): Widget[] {
  const problem = widgetProblem(widgets)
  if (problem) throw new ValidationError(problem[0], problem[1])
  return widgets.map((w) => ({
    kind: w.kind,
    title: w.title ?? null,
    period: w.period ?? DEFAULT_PERIOD_PRESET,
    channels: [...(w.channels ?? [])],
    chatbotId: w.chatbotId ?? null,
  }))
}

function nameTaken(name: string): OmnimeterError {
  return new OmnimeterError("conflict", `name: a dashboard named "${name}" already exists.`, {
    field: "name",
  })
}

function dashboardNotFound(dashboardId: string): OmnimeterError {
  return new OmnimeterError("not_found", `No dashboard ${dashboardId} for this subscription.`)
}

export class DashboardService {
  constructor(private readonly options: DashboardServiceOptions) {}

  async list(subscriptionId: string, scope?: TenantScope): Promise<Dashboard[]> {
    return this.inScope(scope, subscriptionId, async (db, subscription) =>
      (await listDashboards(db, subscriptionId)).map((row) => this.answer(row, subscription)),
    )
  }

  async get(subscriptionId: string, dashboardId: string, scope?: TenantScope): Promise<Dashboard> {
    return this.inScope(scope, subscriptionId, async (db, subscription) => {
      const row = await findDashboard(db, subscriptionId, dashboardId)
      if (!row) throw dashboardNotFound(dashboardId)
      return this.answer(row, subscription)
    })
  }

  /** Saves a new view. A name in use is `conflict`; past the per-subscription limit, `conflict` too. */
  async create(subscriptionId: string, input: CreateDashboardInput, scope?: TenantScope): Promise<Dashboard> {
    const valid = validate(CreateDashboardSchema, input)
    const widgets = normalise(valid.widgets)
    return this.inScope(scope, subscriptionId, async (db, subscription) => {
      const count = await lockAndCountDashboards(db, subscriptionId)
      if (count >= DASHBOARD_LIMITS.dashboardsPerSubscription) {
        throw new OmnimeterError(
          "conflict",
          `This subscription has ${count} dashboards, the most it may keep; delete one first.`,
        )
      }
      try {
        return this.answer(
          await insertDashboard(db, { subscriptionId, name: valid.name, widgets }),
          subscription,
        )
      } catch (error) {
        if (isUniqueViolation(error)) throw nameTaken(valid.name)
        throw error
      }
    })
  }

  /** Renames it, replaces its widgets (their order is the display order), or both. */
  async update(
    subscriptionId: string,
    dashboardId: string,
    input: UpdateDashboardInput,
    scope?: TenantScope,
  ): Promise<Dashboard> {
    const valid = validate(UpdateDashboardSchema, input)
    if (valid.name === undefined && valid.widgets === undefined)
      throw new ValidationError("", "change name, widgets or both")
    const widgets = valid.widgets === undefined ? undefined : normalise(valid.widgets)
    return this.inScope(scope, subscriptionId, async (db, subscription) => {
      let row: DashboardRow | undefined
      try {
        row = await updateDashboard(
          db,
          subscriptionId,
          dashboardId,
          { ...(valid.name !== undefined ? { name: valid.name } : {}), ...(widgets ? { widgets } : {}) },
          valid.version,
        )
      } catch (error) {
        if (isUniqueViolation(error) && valid.name !== undefined) throw nameTaken(valid.name)
        throw error
      }
      if (row) return this.answer(row, subscription)
      const current = await findDashboard(db, subscriptionId, dashboardId)
      if (!current) throw dashboardNotFound(dashboardId)
      throw new OmnimeterError(
        "conflict",
        `version: the dashboard is at version ${current.version}, not ${valid.version}; it changed since you read it. Reload it and apply your change again.`,
        { field: "version", currentVersion: current.version },
      )
    })
  }

  async delete(subscriptionId: string, dashboardId: string, scope?: TenantScope): Promise<void> {
    await this.inScope(scope, subscriptionId, async (db) => {
      if (!(await deleteDashboard(db, subscriptionId, dashboardId))) throw dashboardNotFound(dashboardId)
    })
  }

  private answer(row: DashboardRow, subscription: Subscription): Dashboard {
    const today = todayIn(subscription.timezone, new Date(this.options.clock.now()))
    return {
      ...row,
      timezone: subscription.timezone,
      widgets: row.widgets.map((w) => {
        const period = w.period ?? DEFAULT_PERIOD_PRESET
        return {
          kind: w.kind,
          title: w.title ?? null,
          period,
          channels: [...(w.channels ?? [])],
          chatbotId: w.chatbotId ?? null,
          ...presetDays(period, today),
        }
      }),
    }
  }

  private inScope<T>(
    scope: TenantScope | undefined,
    subscriptionId: string,
    fn: Parameters<typeof withVisibleSubscription<T>>[3],
  ): Promise<T> {
    return withVisibleSubscription(this.options.database, scope, subscriptionId, fn)
  }
}
