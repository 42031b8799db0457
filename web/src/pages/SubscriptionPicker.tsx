/** The admin's list of subscriptions: pick one to open its dashboard. */
import type { Api } from "../api/client.ts"
import type { SubscriptionPage } from "../api/types.ts"
import { formatInteger, formatLocalTime } from "../format.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"

export function SubscriptionPicker({ api, onPick }: { api: Api; onPick: (id: string) => void }) {
  const [state, retry] = useAsync(
    () => api.get<SubscriptionPage>("/api/subscriptions", { limit: 500 }),
    "list",
  )
  return (
    <section className="panel" aria-labelledby="picker-title">
      <h1 id="picker-title">Subscriptions</h1>
      <p className="muted">Signed in with the admin key. Choose a subscription to see its channels.</p>
      <AsyncView state={state} retry={retry} label="Loading subscriptions…">
        {(page) =>
          page.subscriptions.length === 0 ? (
            <Empty title="No subscriptions yet">
              Create one with <code>POST /api/subscriptions</code>, or run <code>npm run demo</code> for
              sample data.
            </Empty>
          ) : (
            <div className="table-scroll">
              <table>
                <caption className="sr-only">Subscriptions</caption>
                <thead>
                  <tr>
                    <th scope="col">Entity</th>
                    <th scope="col">Plan</th>
                    <th scope="col">Status</th>
                    <th scope="col">Timezone</th>
                    <th scope="col" className="num">
                      Token limit
                    </th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {page.subscriptions.map((s) => (
                    <tr key={s.id}>
                      <th scope="row">
                        <button type="button" className="link" onClick={() => onPick(s.id)}>
                          {s.entity_id}
                        </button>
                        <div className="muted small">{s.entity_type}</div>
                      </th>
                      <td>
                        <span className={`plan plan-${s.plan}`}>{s.plan}</span>
                      </td>
                      <td>{s.status}</td>
                      <td>{s.timezone}</td>
                      <td className="num">{formatInteger(s.token_limit)}</td>
                      <td>{formatLocalTime(s.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </AsyncView>
    </section>
  )
}
