/** The last line of defence: a rendering bug shows a message and a way out, not a blank page. */
import { Component, type ReactNode } from "react"

export class ErrorBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  override state: { error: Error | null } = { error: null }

  static getDerivedStateFromError(error: Error) {
    return { error }
  }

  override render() {
    if (!this.state.error) return this.props.children
    return (
      <main className="center">
        <div className="state state-error" role="alert">
          <strong>The dashboard hit a bug</strong>
          <p>{this.state.error.message}</p>
          <button type="button" onClick={() => window.location.assign("/")}>
            Reload
          </button>
        </div>
      </main>
    )
  }
}
