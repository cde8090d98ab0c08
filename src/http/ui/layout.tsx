import type { Child } from 'hono/jsx'
import type { LiveView } from '../../dataplane/model-views.js'
import type { AdminAccess } from '../admin-auth.js'
import { formatMs, formatShare } from './format.js'

export interface PageProps {
  readonly title: string
  /** What the admin routes would answer this request: which actions and data the page offers. */
  readonly access: AdminAccess
  /** The model page's model: the script follows its events only. */
  readonly model?: string | undefined
  readonly children: Child
}

/**
 * The shell of every dashboard page. It is complete without JavaScript; `/ui/assets/app.js`
 * refreshes each `data-live` element in place and sends the admin actions (`html.js` shows them).
 */
export function Page({ title, access, model, children }: PageProps) {
  return (
    <html lang="en" class="no-js">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · modelgate`}</title>
        <link rel="icon" type="image/svg+xml" href="/ui/assets/favicon.svg" />
        <link rel="stylesheet" href="/ui/assets/style.css" />
        <script type="module" src="/ui/assets/app.js" />
      </head>
      <body data-access={access} data-model={model}>
        <header class="top">
          <a class="brand" href="/ui">
            modelgate
          </a>
          <nav aria-label="Elsewhere">
            <a href="/ui">Models</a>
            <a href="/docs">API</a>
            <a href="/metrics">Metrics</a>
          </nav>
          <span id="live-state" class="live-state">
            Reload the page to update it
          </span>
        </header>
        <main data-live="main">{children}</main>
        <noscript>
          <p class="note">
            Without JavaScript this page shows the state when it was loaded; reload it to update.
            Rollback, promote and abort need JavaScript (they send the admin token from this page),
            or the admin API: <code>POST /models/NAME/rollback</code>.
          </p>
        </noscript>
        <p id="action-status" class="action-status" role="status" aria-live="polite" />
        <dialog id="token-dialog" aria-labelledby="token-title">
          <form method="dialog">
            <h2 id="token-title">Admin token</h2>
            <p>
              This server needs its admin token for this. It is kept in this tab only
              (sessionStorage) and sent as <code>Authorization: Bearer</code>.
            </p>
            <label for="token-input">Token</label>
            <input id="token-input" name="token" type="password" autocomplete="off" required />
            <div class="buttons">
              <button type="submit" value="ok">
                Use this token
              </button>
              <button type="submit" value="cancel" formnovalidate>
                Cancel
              </button>
            </div>
          </form>
        </dialog>
      </body>
    </html>
  )
}

/** What the page says about admin actions when this client cannot use them. */
export function AccessNote({ access }: { access: AdminAccess }) {
  if (access === 'loopback_only')
    return (
      <p class="note">
        No admin token is set on this server: rollback, promote, abort and the history answer
        clients on its own machine only.
      </p>
    )
  return null
}

/** A header cell: a text column, or `{ num }` for a column of figures (right-aligned). */
export type Column = string | { readonly num: string }

/** A table's header row. */
export function HeaderRow({ columns }: { columns: readonly Column[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) =>
          typeof c === 'string' ? (
            <th scope="col">{c}</th>
          ) : (
            <th scope="col" class="num">
              {c.num}
            </th>
          ),
        )}
      </tr>
    </thead>
  )
}

/** The figures of a version's live window, as the overview and the versions table show them. */
export const LIVE_COLUMNS: readonly Column[] = [
  { num: 'Requests' },
  { num: 'Errors' },
  { num: 'p99' },
  { num: 'Accuracy' },
]

/** A version's error rate, p99 and accuracy (the cells after its rate), dashes before any request. */
export function LiveCells({ live }: { live: LiveView | null | undefined }) {
  return (
    <>
      <td class="num">{formatShare(live?.errorRate)}</td>
      <td class="num">{formatMs(live?.p99Ms)}</td>
      <td class="num">{formatShare(live?.accuracy)}</td>
    </>
  )
}

/** A model page for a model the server does not have (a stale link, a typo). */
export function NotFoundPage({ message, access }: { message: string; access: AdminAccess }) {
  return (
    <Page title="Not found" access={access}>
      <h1>Not found</h1>
      <p>{message}.</p>
      <p>
        <a href="/ui">Every model</a>
      </p>
    </Page>
  )
}
