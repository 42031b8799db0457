/**
 * The dashboard's shell: sign-in, the admin's subscription picker, then one subscription's pages under a
 * header with navigation. Everything comes from the public HTTP API with the key the user pasted.
 */
import { useCallback, useEffect, useMemo, useState } from "react"
import { type Api, createApi } from "./api/client.ts"
import type { ChannelCatalog, MeBody, SubscriptionBody } from "./api/types.ts"
import { Alerts } from "./pages/Alerts.tsx"
import { Breakdown } from "./pages/Breakdown.tsx"
import { ChannelDetail } from "./pages/ChannelDetail.tsx"
import { Configuration } from "./pages/Configuration.tsx"
import { DashboardList, DashboardView, NewDashboard } from "./pages/Dashboards.tsx"
import { Experiments } from "./pages/Experiments.tsx"
import { Forecast } from "./pages/Forecast.tsx"
import { Journeys } from "./pages/Journeys.tsx"
import { Outcomes } from "./pages/Outcomes.tsx"
import { Overview } from "./pages/Overview.tsx"
import { Playground } from "./pages/Playground.tsx"
import { SignIn } from "./pages/SignIn.tsx"
import { SubscriptionPicker } from "./pages/SubscriptionPicker.tsx"
import { TurnDetail } from "./pages/TurnDetail.tsx"
import { Turns } from "./pages/Turns.tsx"
import { href, navigate, useLinkHandler, useLocation } from "./router.ts"
import { storedKey, storeKey, type Workspace, WorkspaceContext } from "./session.ts"
import { ErrorMessage, Loading, useAsync } from "./ui/async.tsx"
import { DemoHistoryBanner } from "./ui/DemoHistoryBanner.tsx"

interface Session {
  key: string
  api: Api
  me: MeBody
}

export function App() {
  const [session, setSession] = useState<Session | null>(null)
  const [restoring, setRestoring] = useState(() => storedKey() !== null)
  const [notice, setNotice] = useState<string | null>(null)

  const signIn = useCallback((key: string, me: MeBody) => {
    storeKey(key)
    setNotice(null)
    setSession({ key, api: createApi(key), me })
  }, [])
  const signOut = useCallback((message: string | null = null) => {
    storeKey(null)
    setSession(null)
    setNotice(message)
    navigate("/", true)
  }, [])

  if (restoring) {
    return (
      <RestoreSession
        onDone={(key, me, message) => {
          setRestoring(false)
          if (key && me) signIn(key, me)
          else signOut(message)
        }}
      />
    )
  }
  if (!session) return <SignIn notice={notice} onSignedIn={signIn} />
  return <SignedIn session={session} onSignOut={() => signOut()} />
}

function RestoreSession({
  onDone,
}: {
  onDone: (key: string | null, me: MeBody | null, message: string | null) => void
}) {
  const key = storedKey() ?? ""
  const [state] = useAsync(() => createApi(key).get<MeBody>("/api/me"), "restore")
  useEffect(() => {
    if (state.status === "ready") onDone(key, state.data, null)
    else if (state.status === "error") {
      const expired = state.error.status === 401
      onDone(
        null,
        null,
        expired ? "Your saved key is no longer valid (revoked or unknown)." : state.error.message,
      )
    }
  }, [state, key, onDone])
  return (
    <main className="center">
      <Loading label="Signing you in…" />
    </main>
  )
}

function SignedIn({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const location = useLocation()
  const chosen = session.me.subscription_id ?? location.query.get("subscription")
  if (!chosen) {
    return (
      <Frame session={session} onSignOut={onSignOut} subscription={null}>
        <SubscriptionPicker api={session.api} onPick={(id) => navigate(href("/", { subscription: id }))} />
      </Frame>
    )
  }
  return <SubscriptionView key={chosen} session={session} subscriptionId={chosen} onSignOut={onSignOut} />
}

function SubscriptionView({
  session,
  subscriptionId,
  onSignOut,
}: {
  session: Session
  subscriptionId: string
  onSignOut: () => void
}) {
  const location = useLocation()
  const [version, setVersion] = useState(0)
  const [catalogState, retryCatalog] = useAsync(
    () => session.api.get<ChannelCatalog>("/api/onboarding/channels"),
    "catalog",
  )
  const [subscriptionState, retrySubscription] = useAsync(
    () => session.api.get<SubscriptionBody>(`/api/subscriptions/${encodeURIComponent(subscriptionId)}`),
    `${subscriptionId}:${version}`,
  )
  const refreshSubscription = useCallback(() => setVersion((v) => v + 1), [])
  const last = useLastReady(subscriptionState.status === "ready" ? subscriptionState.data : null)

  const workspace = useMemo<Workspace | null>(
    () =>
      last && catalogState.status === "ready"
        ? {
            api: session.api,
            me: session.me,
            subscription: last,
            catalog: catalogState.data,
            refreshSubscription,
          }
        : null,
    [last, catalogState, session, refreshSubscription],
  )

  let body: React.ReactNode
  if (catalogState.status === "error") body = <ErrorMessage error={catalogState.error} retry={retryCatalog} />
  else if (subscriptionState.status === "error" && !last) {
    body = <ErrorMessage error={subscriptionState.error} retry={retrySubscription} />
  } else if (!workspace) body = <Loading label="Loading the subscription…" />
  else body = <Page path={location.path} />

  return (
    <Frame session={session} onSignOut={onSignOut} subscription={last}>
      {workspace ? <WorkspaceContext.Provider value={workspace}>{body}</WorkspaceContext.Provider> : body}
    </Frame>
  )
}

/** Keeps showing the last loaded value while a refresh is in flight, so pages do not flash. */
function useLastReady<T>(value: T | null): T | null {
  const [last, setLast] = useState<T | null>(value)
  if (value !== null && value !== last) setLast(value)
  return value ?? last
}

function Page({ path }: { path: string }) {
  const channel = /^\/channels\/([a-z]+)\/?$/.exec(path)?.[1]
  if (channel) return <ChannelDetail channel={channel} />
  const dashboard = /^\/dashboards\/([\w-]+)\/?$/.exec(path)?.[1]
  if (dashboard === "new") return <NewDashboard />
  if (dashboard) return <DashboardView id={dashboard} />
  const usageId = /^\/turns\/([0-9a-fA-F-]{36})\/?$/.exec(path)?.[1]
  if (usageId) return <TurnDetail usageId={usageId} />
  switch (path.replace(/\/$/, "") || "/") {
    case "/":
      return <Overview />
    case "/breakdown":
      return <Breakdown />
    case "/turns":
      return <Turns />
    case "/forecast":
      return <Forecast />
    case "/outcomes":
      return <Outcomes />
    case "/alerts":
      return <Alerts />
    case "/dashboards":
      return <DashboardList />
    case "/journeys":
      return <Journeys />
    case "/experiments":
      return <Experiments />
    case "/configuration":
      return <Configuration />
    case "/playground":
      return <Playground />
    default:
      return (
        <section className="panel">
          <h1>Page not found</h1>
          <p>There is no dashboard page at {path}.</p>
        </section>
      )
  }
}

const NAV = [
  { path: "/", label: "Overview" },
  { path: "/breakdown", label: "Breakdown" },
  { path: "/turns", label: "Turns" },
  { path: "/outcomes", label: "Outcomes" },
  { path: "/forecast", label: "Forecast" },
  { path: "/alerts", label: "Alerts" },
  { path: "/dashboards", label: "Dashboards" },
  { path: "/journeys", label: "Journeys" },
  { path: "/experiments", label: "Experiments" },
  { path: "/configuration", label: "Configuration" },
  { path: "/playground", label: "Playground" },
] as const

function Frame({
  session,
  subscription,
  onSignOut,
  children,
}: {
  session: Session
  subscription: SubscriptionBody | null
  onSignOut: () => void
  children: React.ReactNode
}) {
  const location = useLocation()
  const onLink = useLinkHandler()
  const keep = (path: string) =>
    href(path, {
      subscription: session.me.kind === "admin" ? (subscription?.id ?? undefined) : undefined,
      from: location.query.get("from") ?? undefined,
      to: location.query.get("to") ?? undefined,
    })
  const active = (path: string) =>
    path === "/"
      ? location.path === "/" || location.path.startsWith("/channels/")
      : location.path.startsWith(path)
  return (
    <div className="layout">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">
            ◔
          </span>
          omnimeter
        </div>
        {subscription ? (
          <nav aria-label="Pages">
            <ul>
              {NAV.map((item) => (
                <li key={item.path}>
                  <a
                    href={keep(item.path)}
                    onClick={onLink}
                    aria-current={active(item.path) ? "page" : undefined}
                  >
                    {item.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        ) : null}
        <div className="who">
          {subscription ? (
            <span className="subscription-name" title={subscription.id}>
              <strong>{subscription.entity_id}</strong>{" "}
              <span className={`plan plan-${subscription.plan}`}>{subscription.plan}</span>
              {subscription.status !== "active" ? (
                <span className="badge badge-warn">{subscription.status}</span>
              ) : null}
            </span>
          ) : null}
          {session.me.kind === "admin" && location.query.get("subscription") ? (
            <a href="/" onClick={onLink} className="button-link">
              Switch subscription
            </a>
          ) : null}
          <button type="button" className="secondary" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <DemoHistoryBanner api={session.api} />
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  )
}
