// Issue #10's promotion stall: the example model under load at 4 connections while a ~70 MB model
// is promoted beside it. Run twice in one go: a server with the default execution (auto) and one
// with `--execution main` (every session created and run on the main thread, as before workers).
// Each reports the example model's p99 and max latency during the promotion against its own steady
// phase, the event loop's max lag meanwhile, and the time from the drop to the new version serving.
import { load } from '../lib/load.mjs'
import { copyExample, inputRow, mlp, writeModel } from '../lib/models.mjs'
import { executionOf, expectServes, stageVersion, untilActive } from '../lib/promotion.mjs'
import { fmt, table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'
import { eventLoopLag, untilRequests } from '../lib/server-metrics.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

const CONNECTIONS = 4
const IRIS_BODY = JSON.stringify({ inputs: { features: [[6.7, 3.0, 5.2, 2.3]] } })
const BIG_BODY = JSON.stringify({ inputs: { x: [inputRow(256)] } })
/** 71.5 MB of weights; the version it replaces is a small MLP with the same signature. */
const BIG = [256, 4096, 4096, 10]
const BIG_BEFORE = [256, 16, 10]
/** The window goes on this long after the new version serves: its first requests, the old version's retirement. */
const AFTER_SERVED_MS = 2000
/** Requests answered under load before the drop: the load generator is running. */
const LOADED = 100
const SERVERS = [
  { label: 'default (auto)', args: [] },
  { label: '--execution main', args: ['--execution', 'main'] },
]
const TARGETS = { p99Ratio: 1.5, maxOverMs: 30, lagMs: 20 }

export async function promotionStall({ seconds = benchSettings().seconds ?? 10 } = {}) {
  const bigBytes = mlp(BIG, 2)
  const runs = []
  for (const server of SERVERS)
    runs.push({ server: server.label, ...(await measure(server.args, bigBytes, seconds)) })
  return report(runs, bigBytes.length, seconds)
}

async function measure(args, bigBytes, seconds) {
  const ws = createWorkspace('stall')
  try {
    copyExample(ws.models, 'iris', { versions: [2] })
    writeModel(ws.models, 'big', mlp(BIG_BEFORE))
    const big = stageVersion(ws, 'big', 2, bigBytes)
    const server = await startServerProcess({ models: ws.models, stateDir: ws.stateDir, args })
    try {
      const url = `${server.url}/models/iris/predict`
      await eventLoopLag(server.url) // the start's lag is not the steady phase's
      const steady = await load({ url, body: IRIS_BODY, connections: CONNECTIONS, seconds })
      const steadyLag = await eventLoopLag(server.url)
      const promotion = promote(server.url, big)
      // Both awaited together: a failure of either is the scenario's, and neither is left unhandled.
      const [during, promoted] = await Promise.all([
        load({ url, body: IRIS_BODY, connections: CONNECTIONS, seconds: 120, until: promotion }),
        promotion,
      ])
      await expectServes(server.url, 'big', big.version, BIG_BODY)
      return {
        steady,
        steadyLag,
        during,
        ...promoted,
        bigExecution: await executionOf(server.url, 'big'),
      }
    } finally {
      await server.stop()
    }
  } finally {
    ws.remove()
  }
}

/** Under load: reset the lag, drop the big version, wait until it is active and AFTER_SERVED_MS more. */
async function promote(url, big) {
  await untilRequests(url, 'iris', LOADED)
  await eventLoopLag(url)
  const dropped = performance.now()
  big.drop()
  const served = await untilActive(url, big.model, big.version)
  await new Promise((r) => setTimeout(r, AFTER_SERVED_MS))
  return {
    promotionMs: served - dropped,
    lag: await eventLoopLag(url),
    windowMs: performance.now() - dropped,
  }
}

function report(runs, bigBytes, seconds) {
  const rows = runs.map((r) => ({
    server: r.server,
    'steady p99 ms': r.steady.p99,
    'steady max ms': r.steady.max,
    'promotion p99 ms': r.during.p99,
    'promotion max ms': r.during.max,
    'p99 promotion ÷ steady': r.during.p99 / r.steady.p99,
    'max − steady max, ms': r.during.max - r.steady.max,
    'loop lag max ms (promotion)': r.lag.maxMs,
    'loop lag max ms (steady)': r.steadyLag.maxMs,
    'drop → served ms': r.promotionMs,
    'big/2 runs in': r.bigExecution.mode,
    errors: r.steady.errors + r.during.errors,
  }))
  const targets = runs
    .flatMap((r) => [
      {
        server: r.server,
        target: `p99 ≤ ${TARGETS.p99Ratio} × steady p99`,
        measured: `${fmt(r.during.p99)} ms = ${fmt(r.during.p99 / r.steady.p99)} × ${fmt(r.steady.p99)} ms`,
        met: r.during.p99 <= TARGETS.p99Ratio * r.steady.p99,
      },
      {
        server: r.server,
        target: `max ≤ steady max + ${TARGETS.maxOverMs} ms`,
        measured: `${fmt(r.during.max)} ms = ${fmt(r.steady.max)} + ${fmt(r.during.max - r.steady.max)} ms`,
        met: r.during.max <= r.steady.max + TARGETS.maxOverMs,
      },
      {
        server: r.server,
        target: `event-loop lag max ≤ ${TARGETS.lagMs} ms`,
        measured: `${fmt(r.lag.maxMs)} ms`,
        met: r.lag.maxMs <= TARGETS.lagMs,
      },
    ])
    .map((t) => ({ ...t, met: t.met ? 'yes' : 'NO' }))
  const load = runs.map((r) => ({
    server: r.server,
    'steady req/s': r.steady.rps,
    'steady s': r.steady.seconds,
    'promotion req/s': r.during.rps,
    'promotion window s': r.during.seconds,
    'loop lag p99 ms (promotion)': r.lag.p99Ms,
    'loop lag p99 ms (steady)': r.steadyLag.p99Ms,
  }))
  return writeReport('promotion-stall', {
    title:
      'Promotion stall: the example model under load while a ~70 MB model is promoted beside it',
    command: 'npm run bench -- promotion-stall',
    data: {
      seconds,
      connections: CONNECTIONS,
      bigBytes,
      afterServedMs: AFTER_SERVED_MS,
      runs,
      targets,
    },
    sections: [
      {
        title: `POST /models/iris/predict at ${CONNECTIONS} connections (${runs[0].steady.tool}); model big: ${BIG.join('→')} (${fmt(bigBytes / 1e6)} MB) promoted over ${BIG_BEFORE.join('→')}`,
        body: [
          table(rows),
          '',
          `Steady: ${seconds} s of iris load with nothing else going on. Promotion: the same load, from ${LOADED} answers before the`,
          `rename of \`big/2\` (written to a staging folder beforehand) until ${AFTER_SERVED_MS / 1000} s after GET /models/big shows it active; a`,
          'request to big then checks it answers. Loop lag: `modelgate_event_loop_lag_seconds{stat="max"}`, scraped right before the',
          'drop and at the end of the window (each scrape resets it); the steady column is the same over the steady phase.',
        ].join('\n'),
      },
      { title: 'Targets (issue #10)', body: table(targets) },
      { title: 'Load and loop lag p99', body: table(load) },
    ],
  })
}
