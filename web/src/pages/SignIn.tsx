/** Sign-in: paste an API key (the admin key, or a subscription key); it is checked against GET /api/me. */
import { type FormEvent, useState } from "react"
import { ApiError, createApi } from "../api/client.ts"
import type { MeBody } from "../api/types.ts"

export function SignIn({
  notice,
  onSignedIn,
}: {
  notice: string | null
  onSignedIn: (key: string, me: MeBody) => void
}) {
  const [key, setKey] = useState("")
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  async function submit(event: FormEvent) {
    event.preventDefault()
    const trimmed = key.trim()
    if (!trimmed) {
      setError("Paste an API key first.")
      return
    }
    setBusy(true)
    setError(null)
    try {
      const me = await createApi(trimmed).get<MeBody>("/api/me")
      onSignedIn(trimmed, me)
    } catch (caught) {
      setError(
        caught instanceof ApiError && caught.status === 401
          ? "This key is unknown or revoked."
          : caught instanceof Error
            ? caught.message
            : String(caught),
      )
    } finally {
      setBusy(false)
    }
  }

  return (
    <main className="center" id="main">
      <form className="panel signin" onSubmit={submit} noValidate aria-labelledby="signin-title">
        <div className="brand big">
          <span className="logo" aria-hidden="true">
            ◔
          </span>
          omnimeter
        </div>
        <h1 id="signin-title">Sign in</h1>
        <p className="muted">
          Paste an API key. The admin key (printed by <code>npm run demo</code> and at first start) sees every
          subscription; a subscription key sees its own.
        </p>
        {notice ? (
          <p className="state state-error" role="alert">
            {notice}
          </p>
        ) : null}
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="om_admin_… or om_sk_…"
          value={key}
          onChange={(event) => setKey(event.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? "api-key-error" : undefined}
        />
        {error ? (
          <p id="api-key-error" className="field-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        <p className="muted small">
          The key stays in this browser tab only and is sent to this server alone.
        </p>
      </form>
    </main>
  )
}
