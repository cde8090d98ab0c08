import { readFileSync } from 'node:fs'
import type { Context, Hono } from 'hono'
import type { DriftMonitor } from '../../dataplane/drift/drift-monitor.js'
import { describeModel, type ModelDetail } from '../../dataplane/model-views.js'
import type { Lifecycle } from '../../lifecycle/lifecycle.js'
import type { ModelRegistry } from '../../lifecycle/versions/model-registry.js'
import type { LiveFigures } from '../../metrics/live-figures.js'
import type { RequestRates } from '../../metrics/request-rates.js'
import { ModelNotFoundError } from '../../errors.js'
import { VERSION } from '../../version.js'
import { adminAccess } from '../admin-auth.js'
import { pathParam, route } from '../method-routes.js'
import { NotFoundPage } from '../ui/layout.js'
import { ModelPage } from '../ui/model-page.js'
import { OverviewPage } from '../ui/overview.js'

export interface UiRoutesOptions {
  readonly registry: ModelRegistry
  readonly live: LiveFigures
  readonly lifecycle: Lifecycle
  readonly adminToken: string | undefined
  readonly drift?: DriftMonitor | undefined
  readonly rates?: RequestRates | undefined
}

/** Entries of the history a model page shows, newest first. */
const HISTORY_SHOWN = 50

/**
 * Every file a page loads comes from here: the script cannot fetch, nor the page embed, anything
 * from another origin (the test checks every request the browser makes).
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

const ASSETS = {
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
} as const

/**
 * The dashboard: `/ui` (every model) and `/ui/models/{name}`, server-rendered from the views
 * `GET /models/{name}` answers, readable without JavaScript; `GET /` leads browsers there.
 * Reading it needs what GET /models needs; the history and the actions are admin (the page's
 * script sends the token).
 */
export function registerUiRoutes(app: Hono, o: UiRoutesOptions): void {
  const accessOf = adminAccess(o.adminToken)
  const assets = new Map(
    Object.entries(ASSETS).map(([file, type]) => [
      file,
      { type, body: readFileSync(new URL(`../ui/assets/${file}`, import.meta.url)) },
    ]),
  )
  const detail = (name: string) => describeModel(o.registry, o.live, name, o.drift, o.rates)
  const lastMinute = (d: ModelDetail) =>
    o.rates?.lastMinute(d.active === null ? undefined : o.live.find(d.name, d.active)) ?? []

  route(app, '/', {
    GET: (c) => {
      c.header('Vary', 'Accept')
      if (wantsHtml(c)) return c.redirect('/ui', 303)
      return c.json({
        name: 'modelgate',
        version: VERSION,
        ui: '/ui',
        models: '/models',
        docs: '/docs',
        openapi: '/openapi.json',
      })
    },
  })
  route(app, '/ui', {
    GET: async (c) => {
      const models = o.registry.list().map((m) => {
        const d = detail(m.name)
        return { detail: d, lastMinute: lastMinute(d) }
      })
      const replicas = await o.lifecycle.replicas()
      return page(c, OverviewPage({ models, replicas, access: accessOf(c) }))
    },
  })
  route(app, '/ui/models/:name', {
    GET: (c) => {
      const access = accessOf(c)
      let d: ModelDetail
      try {
        d = detail(pathParam(c, 'name'))
      } catch (e) {
        // A browser gets a page; any other client the API's JSON error, like every route.
        if (!(e instanceof ModelNotFoundError) || !wantsHtml(c)) throw e
        return page(c, NotFoundPage({ message: e.message, access }), 404)
      }
      const history =
        access === 'open' ? o.lifecycle.historyOf(d.name, HISTORY_SHOWN).reverse() : undefined
      return page(c, ModelPage({ detail: d, access, lastMinute: lastMinute(d), history }))
    },
  })
  route(app, '/ui/assets/:file', {
    GET: (c) => {
      const asset = assets.get(pathParam(c, 'file'))
      if (!asset) return c.notFound()
      return c.body(asset.body, 200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' })
    },
  })
}

/** A browser names text/html in Accept; curl and API clients send `*\/*` or JSON. */
function wantsHtml(c: Context): boolean {
  for (const range of (c.req.header('accept') ?? '').split(',')) {
    const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase())
    if (type !== 'text/html') continue
    const q = params.find((p) => p.startsWith('q='))
    return q === undefined || Number(q.slice(2)) > 0
  }
  return false
}

function page(
  c: Context,
  element: { toString(): string | Promise<string> },
  status: 200 | 404 = 200,
) {
  c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
  // Live figures: a page read from a cache would show the past as the present.
  c.header('Cache-Control', 'no-store')
  return c.html(`<!doctype html>${element}`, status)
}
