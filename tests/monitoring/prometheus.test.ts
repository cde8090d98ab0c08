import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { admin, postJson, predict, waitActive, waitStatus } from '../support/api-client.js'
import { dashboardQueries } from '../support/grafana-dashboard.js'
import { addConstModel, writeModelFile, writeVersion } from '../support/models.js'
import {
  deployConfig,
  HAS_PROMETHEUS,
  PROMETHEUS,
  PROMETHEUS_DIR,
  promApi,
  promQuery,
  startPrometheus,
} from '../support/prometheus.js'
import { serve } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'

/**
 * A real Prometheus scrapes a live server with deploy/prometheus/: the dashboard's queries return
 * data and an alert of alerts.yml fires when a version is rejected, and not before.
 */

type Obj = Record<string, any>

/**
 * deploy/prometheus/prometheus.yml for one test server: its job for a server outside Kubernetes
 * (the one with static targets) pointed at `target`, scraped and evaluated every second, with
 * alerts.yml unchanged (the alert seen firing below has no `for:` to shorten).
 */
function configFor(target: string): Obj {
  const deploy = deployConfig()
  const job = (deploy.scrape_configs as Obj[]).find((j) => j.static_configs !== undefined)!
  return {
    global: { ...deploy.global, scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: (deploy.rule_files as string[]).map((f) => join(PROMETHEUS_DIR, f)),
    scrape_configs: [
      {
        ...job,
        static_configs: (job.static_configs as Obj[]).map((s) => ({ ...s, targets: [target] })),
      },
    ],
  }
}

/**
 * A dashboard query as Grafana sends it: one model and one instance picked (regex-escaped, as
 * Grafana does for a variable inside `=~`), `$__rate_interval` 1m (Grafana's value for a data
 * source at the default 15 s scrape interval: 4 × 15 s) and `$__range` 6h (the time picker's default).
 */
function grafanaExpr(expr: string, model: string, instance: string): string {
  const values: Record<string, string> = {
    __rate_interval: '1m',
    __range: '6h',
    model,
    instance: instance.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&'),
  }
  return expr.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => {
    const value = values[name]
    if (value === undefined) throw new Error(`no value for the Grafana variable ${whole}`)
    return value
  })
}

/** A series with a number Grafana can draw (NaN, from 0/0 or a quantile of no requests, draws nothing). */
const drawable = (series: Obj[]) => series.some((s) => Number.isFinite(Number(s.value[1])))

async function traffic(url: string): Promise<void> {
  for (let i = 0; i < 3; i++) expect((await predict(url, 'adder')).status).toBe(200)
  const bad = await postJson(`${url}/models/adder/predict`, { inputs: [[1, 2, 3]] })
  expect(bad.status).toBe(400)
}

describe.skipIf(!HAS_PROMETHEUS)(
  `a real Prometheus (${PROMETHEUS}; skipped where it is missing)`,
  () => {
    it('scrapes the server, every dashboard query draws, and a rejected version fires its alert', {
      timeout: 60_000,
    }, async () => {
      const t = await serve(async (dir) => {
        await writeVersion(dir, 'adder', 1, addConstModel(1))
        await writeVersion(dir, 'adder', 2, addConstModel(2))
        // Batching on: the batch size and queue time panels.
        await writeModelFile(
          join(dir, 'adder', 'model.json'),
          JSON.stringify({ batching: { enabled: true } }),
        )
      })
      // Before the first scrape: a rate sees only what a series counts after Prometheus first saw it.
      await traffic(t.url)

      const target = new URL(t.url).host
      const prom = await startPrometheus(configFor(target))
      let scraped: Obj | undefined
      await waitFor(async () => {
        const targets = (await promApi(prom, 'targets')).activeTargets as Obj[]
        scraped = targets.find((x) => x.labels.instance === target && x.health === 'up')
        return scraped !== undefined
      }, 'Prometheus to scrape the server')
      // The rules evaluated on what was scraped: a healthy server fires nothing, pending included.
      await waitFor(async () => {
        const groups = (await promApi(prom, 'rules')).groups as Obj[]
        return (
          groups.length > 0 &&
          groups.every((g) => Date.parse(g.lastEvaluation) > Date.parse(scraped!.lastScrape))
        )
      }, 'the alert rules to be evaluated after a scrape')
      expect((await promApi(prom, 'alerts')).alerts).toEqual([])

      await traffic(t.url)
      // A version that is not a model: rejected at load; the one serving keeps serving.
      await dropVersion(t.modelsDir, 'adder', 3, 'not a model')
      await waitStatus(t.url, 'adder', 3, 'rejected')
      // A promotion (a gate run, a swap), then at once a rollback (a swap back): both inside one
      // scrape, which the dashboard's swap marks still show (they count swaps, not version changes).
      await dropVersion(t.modelsDir, 'adder', 4, addConstModel(4))
      await waitActive(t.url, 'adder', 4)
      const rollback = await admin(t.url, '/models/adder/rollback', { version: 2 })
      expect(rollback.status, JSON.stringify(rollback.body)).toBe(200)
      await traffic(t.url)

      let firing: Obj[] = []
      await waitFor(async () => {
        const alerts = (await promApi(prom, 'alerts')).alerts as Obj[]
        firing = alerts.filter((a) => a.state === 'firing')
        return firing.length > 0
      }, 'an alert to fire')
      expect(firing).toEqual([
        expect.objectContaining({
          labels: expect.objectContaining({
            alertname: 'ModelgateVersionRejected',
            model: 'adder',
            severity: 'warning',
          }),
        }),
      ])

      const queries = dashboardQueries().map((q) => ({
        ...q,
        expr: grafanaExpr(q.expr, 'adder', target),
      }))
      let blank: string[] = []
      await waitFor(
        async () => {
          blank = []
          for (const q of queries) if (!drawable(await promQuery(prom, q.expr))) blank.push(q.where)
          return blank.length === 0
        },
        'every dashboard query to return a series with a value',
        20_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; still blank: ${blank.join('; ')}`)
      })
      expect(queries.length).toBeGreaterThan(20)
    })
  },
)
