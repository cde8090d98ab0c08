// The figures behind `auto` execution (issue #10): when a model's sessions belong on the main
// thread and when in workers.
//  - Run cost: /predict on MLPs from ~0.01 to ~1 ms per run (batch 1, in-process), each served
//    twice by one server, model.json execution "main" and "workers" (2): req/s at 64 connections,
//    median latency at 1. Where workers beat main is the run cost above which `auto` picks them.
//  - Model size: versions of ~1, 8, 32 and 70 MB promoted one at a time on an idle server started
//    with `--execution main`, and on one with `--execution workers`: the event loop's max lag meanwhile.
//    Where main's lag passes 20 ms is the size above which `auto` creates sessions in workers.
import { Tensor } from 'onnxruntime-node'
import { createSession, runLatency } from '../lib/in-process.mjs'
import { load } from '../lib/load.mjs'
import { inputRow, mlp, writeModel } from '../lib/models.mjs'
import { executionOf, stageVersion, untilActive } from '../lib/promotion.mjs'
import { fmt, table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'
import { eventLoopLag } from '../lib/server-metrics.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

const ROW = inputRow(256)
const BODY = JSON.stringify({ inputs: { x: [ROW] } })
const MODES = ['main', 'workers']
const WORKERS = 2
const CONNECTIONS = 64
/** batching.maxBatchSize's default: the largest run serving makes at 64 connections. */
const MAX_BATCH = 64
/** Batch-1 run time on this machine from about 0.01 ms to about 1 ms (the report measures it). */
const COMPUTE = [
  [256, 64, 10],
  [256, 512, 512, 10],
  [256, 1024, 1024, 10],
  [256, 2048, 2048, 10],
  [256, 3072, 3072, 10],
]
/** 256→w→w→10 for w in these: 1.1, 8.4, 33.7 and 71.5 MB. */
const SIZE_WIDTHS = [400, 1320, 2770, 4096]
const SIZE_BEFORE = [256, 16, 10]
/** Each size is promoted this many times (other bytes each time); the median is reported, and the worst. */
const SIZE_REPEATS = 3
/** After a version is active, this long more: whatever the promotion leaves to do counts too. */
const SETTLE_MS = 500
/** The stall a promotion may cost the main thread (issue #10's target for the event-loop lag). */
const STALL_MS = 20

export async function execution({ seconds = benchSettings().seconds ?? 3 } = {}) {
  const compute = await measureCompute(seconds)
  // Other bytes for each repeat (seed): a version is always new to the server, never one it holds.
  const versions = Array.from({ length: SIZE_REPEATS }, (_, r) =>
    SIZE_WIDTHS.map((w) => mlp([256, w, w, 10], 2 + r)),
  )
  const sizes = {}
  for (const mode of MODES) sizes[mode] = await measureSizes(mode, versions)
  return report({ seconds, compute, sizes })
}

const modelName = (sizes, mode) => `mlp-${sizes.slice(1, -1).join('-')}-${mode}`

async function measureCompute(seconds) {
  const ws = createWorkspace('exec')
  try {
    const files = COMPUTE.map((sizes) => {
      const bytes = mlp(sizes)
      const [file] = MODES.map((mode) =>
        writeModel(ws.models, modelName(sizes, mode), bytes, {
          modelJson: { execution: mode === 'workers' ? { mode, workers: WORKERS } : { mode } },
        }),
      )
      writeModel(ws.models, modelName(sizes, 'auto'), bytes) // not loaded with requests: where auto puts it
      return { sizes, bytes: bytes.length, file }
    })
    const http = await measureHttp(ws, seconds)
    // The run cost in this process, with the server stopped (on the same file it served): one row,
    // each run after an idle gap as between requests on one connection; and MAX_BATCH rows, the
    // runs serving makes at 64 connections.
    const rows = []
    for (const { sizes, bytes, file } of files) {
      const session = await createSession(file)
      rows.push({
        sizes,
        bytes,
        run: await runLatency(session, feedsOf(1), { runs: 500, gapMs: 0.2 }),
        runMaxBatch: await runLatency(session, feedsOf(MAX_BATCH), { runs: 20, warmup: 3 }),
        ...http[sizes.join()],
      })
      await session.release()
    }
    return rows
  } finally {
    ws.remove()
  }
}

const feedsOf = (rows) => ({
  x: new Tensor(
    'float32',
    Float32Array.from({ length: rows * ROW.length }, (_, i) => ROW[i % ROW.length]),
    [rows, ROW.length],
  ),
})

async function measureHttp(ws, seconds) {
  const server = await startServerProcess({ models: ws.models, stateDir: ws.stateDir })
  const out = {}
  try {
    for (const sizes of COMPUTE) {
      for (const mode of MODES) {
        const { mode: runs } = await executionOf(server.url, modelName(sizes, mode))
        if (runs !== mode)
          throw new Error(`${modelName(sizes, mode)} runs in ${runs}, not as its model.json says`)
      }
      const url = (mode) => `${server.url}/models/${modelName(sizes, mode)}/predict`
      const many = { main: [], workers: [] }
      // main, workers, workers, main: a drift of the shared machine's speed weighs on both alike.
      for (const mode of [...MODES, ...[...MODES].reverse()])
        many[mode].push(
          await load({ url: url(mode), body: BODY, connections: CONNECTIONS, seconds }),
        )
      const one = {}
      for (const mode of MODES)
        one[mode] = await load({
          url: url(mode),
          body: BODY,
          connections: 1,
          seconds: oneSeconds(seconds),
        })
      out[sizes.join()] = {
        http: Object.fromEntries(MODES.map((mode) => [mode, { many: many[mode], one: one[mode] }])),
        auto: await executionOf(server.url, modelName(sizes, 'auto')),
      }
    }
  } finally {
    await server.stop()
  }
  return out
}

const oneSeconds = (seconds) => Math.max(1, Math.round(seconds / 3))

/** An idle server with `--execution <mode>`: each size promoted in turn over a small first version, SIZE_REPEATS times. */
async function measureSizes(mode, versions) {
  const ws = createWorkspace('exec-size')
  try {
    for (const i of SIZE_WIDTHS.keys()) writeModel(ws.models, `size-${i}`, mlp(SIZE_BEFORE))
    const staged = versions.map((round, r) =>
      round.map((bytes, i) => stageVersion(ws, `size-${i}`, 2 + r, bytes)),
    )
    const server = await startServerProcess({
      models: ws.models,
      stateDir: ws.stateDir,
      args: ['--execution', mode],
    })
    try {
      const idle = []
      const promoted = SIZE_WIDTHS.map((_, i) => ({ bytes: versions[0][i].length, runs: [] }))
      for (const round of staged) {
        await eventLoopLag(server.url)
        await settle()
        idle.push(await eventLoopLag(server.url))
        for (const [i, version] of round.entries()) {
          await eventLoopLag(server.url)
          const dropped = performance.now()
          version.drop()
          const served = await untilActive(server.url, version.model, version.version)
          await settle()
          promoted[i].runs.push({
            promotionMs: served - dropped,
            lag: await eventLoopLag(server.url),
          })
          const runs = (await executionOf(server.url, version.model)).mode
          if (runs !== mode)
            throw new Error(
              `${version.model} version ${version.version} runs in ${runs}, not as --execution ${mode} says`,
            )
        }
      }
      return { idle, promoted }
    } finally {
      await server.stop()
    }
  } finally {
    ws.remove()
  }
}

const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS))

function report({ seconds, compute, sizes }) {
  const computeRows = compute.map(({ sizes: s, bytes, run, runMaxBatch, http, auto }) => ({
    model: s.join('→'),
    MB: bytes / 1e6,
    'run p50 ms, batch 1': run.p50,
    [`run p50 ms, batch ${MAX_BATCH}`]: runMaxBatch.p50,
    'auto picks': autoPick(auto),
    'main req/s': rps(http.main.many),
    'workers req/s': rps(http.workers.many),
    'workers ÷ main': rps(http.workers.many) / rps(http.main.many),
    'run-to-run spread': `${fmt(100 * Math.max(spread(http.main.many), spread(http.workers.many)), 2)} %`,
    'main p99 ms': Math.max(...http.main.many.map((r) => r.p99)),
    'workers p99 ms': Math.max(...http.workers.many.map((r) => r.p99)),
    'main p50 ms @1': http.main.one.p50,
    'workers p50 ms @1': http.workers.one.p50,
    errors: MODES.reduce(
      (n, m) => n + http[m].one.errors + http[m].many.reduce((k, r) => k + r.errors, 0),
      0,
    ),
  }))
  const medianWorst = (xs) => `${fmt(median(xs))} (${fmt(Math.max(...xs))})`
  const sizeRows = [
    {
      version: `none (idle ${SETTLE_MS} ms)`,
      'main: loop lag max ms': medianWorst(sizes.main.idle.map((l) => l.maxMs)),
      'workers: loop lag max ms': medianWorst(sizes.workers.idle.map((l) => l.maxMs)),
      'main: drop → active ms': '',
      'workers: drop → active ms': '',
    },
    ...sizes.main.promoted.map((main, i) => {
      const workers = sizes.workers.promoted[i]
      return {
        version: `${fmt(main.bytes / 1e6)} MB`,
        'main: loop lag max ms': medianWorst(main.runs.map((r) => r.lag.maxMs)),
        'workers: loop lag max ms': medianWorst(workers.runs.map((r) => r.lag.maxMs)),
        'main: drop → active ms': median(main.runs.map((r) => r.promotionMs)),
        'workers: drop → active ms': median(workers.runs.map((r) => r.promotionMs)),
      }
    }),
  ]
  const findings = [sizeFinding(sizes.main.promoted), computeFinding(compute)]
  return writeReport('execution', {
    title: 'Execution: main thread vs inference workers, by run cost and by model size',
    command: 'npm run bench -- execution',
    data: { seconds, workers: WORKERS, connections: CONNECTIONS, compute, sizes, findings },
    sections: [
      { title: 'Findings', body: findings.join('\n\n') },
      {
        title: `Run cost: /predict with model.json execution "main" vs "workers" (${WORKERS}), one server (${compute[0].http.main.one.tool})`,
        body: [
          table(computeRows),
          '',
          `req/s: ${CONNECTIONS} connections, two runs of ${seconds} s per mode in the order main, workers, workers, main; spread: the larger`,
          `difference between a mode's two runs, ÷ their mean (the machine's noise); p99: the worse run. p50 @1: one connection, ${oneSeconds(seconds)} s.`,
          'run p50: session.run() in the bench process on the same file (the server stopped): batch 1 after a 0.2 ms idle gap, and',
          `batch ${MAX_BATCH} (batching is on, the default, so at ${CONNECTIONS} connections a run holds up to ${MAX_BATCH} rows).`,
          'auto picks: where a third copy of the model, with no execution in its model.json, runs on the same server (and the run time',
          "its gate measured, when auto's reason gives one).",
        ].join('\n'),
      },
      {
        title: `Model size: the event loop's max lag while one version is promoted, idle servers with --execution main and --execution workers`,
        body: [
          table(sizeRows),
          '',
          `Median of ${SIZE_REPEATS} promotions (the worst in brackets). Each model's first version is a ${SIZE_BEFORE.join('→')} MLP; the promoted`,
          `ones are 256→w→w→10, w = ${SIZE_WIDTHS.join(', ')}, other weights each time, one at a time, smallest first. Loop lag:`,
          `\`modelgate_event_loop_lag_seconds{stat="max"}\`, scraped before the drop and ${SETTLE_MS} ms after the version is active (each`,
          'scrape resets it); the idle row is the same over an idle interval, the floor of the measure.',
        ].join('\n'),
      },
    ],
  })
}

function autoPick(auto) {
  const ms = /a run takes ([\d.]+) ms/.exec(auto.reason)?.[1]
  return ms === undefined ? auto.mode : `${auto.mode} (gate: ${ms} ms)`
}

const rps = (runs) =>
  runs.reduce((n, r) => n + r.requests, 0) / runs.reduce((n, r) => n + r.seconds, 0)
const spread = (runs) =>
  (Math.max(...runs.map((r) => r.rps)) - Math.min(...runs.map((r) => r.rps))) / rps(runs)

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** (a): the smallest model whose promotion on the main thread stalls it more than STALL_MS (median of the repeats). */
function sizeFinding(promoted) {
  const sizes = promoted.map((p) => ({
    bytes: p.bytes,
    lagMs: median(p.runs.map((r) => r.lag.maxMs)),
  }))
  const over = sizes.findIndex((r) => r.lagMs > STALL_MS)
  const measured = sizes.map((r) => `${fmt(r.bytes / 1e6)} MB: ${fmt(r.lagMs)} ms`).join(', ')
  const head = `(a) Session creation on the main thread (--execution main), median loop lag max of ${SIZE_REPEATS} promotions:`
  if (over === -1)
    return `${head} no size measured stalls the event loop more than ${STALL_MS} ms (${measured}).`
  if (over === 0)
    return `${head} even the smallest model measured stalls the event loop more than ${STALL_MS} ms (${measured}).`
  const [below, above] = [sizes[over - 1], sizes[over]]
  // Creating a session is mostly work per byte (parse, copy, prepack), so a straight line between
  // the two measured sizes estimates where the lag crosses the bound.
  const estimate =
    below.bytes +
    ((STALL_MS - below.lagMs) / (above.lagMs - below.lagMs)) * (above.bytes - below.bytes)
  return (
    `${head} it passes ${STALL_MS} ms between ${fmt(below.bytes / 1e6)} MB and ${fmt(above.bytes / 1e6)} MB ` +
    `(about ${fmt(estimate / 1e6)} MB on a straight line between them; ${measured}). Above that size, sessions belong in workers.`
  )
}

/** (b): the smallest run cost from which on workers serve more req/s than the main thread. */
function computeFinding(compute) {
  const ratio = (r) => rps(r.http.workers.many) / rps(r.http.main.many)
  const cost = (r) => `${fmt(r.run.p50)} ms (${fmt(r.runMaxBatch.p50)} ms at batch ${MAX_BATCH})`
  const measured = compute.map((r) => `${cost(r)}: ${fmt(ratio(r))} ×`).join('; ')
  const head = `(b) Workers (${WORKERS}) ÷ main thread, req/s at ${CONNECTIONS} connections, by run cost at batch 1:`
  const first = compute.findIndex((_, i) => compute.slice(i).every((later) => ratio(later) > 1))
  const noise = Math.max(...compute.flatMap((r) => MODES.map((m) => spread(r.http[m].many))))
  const within = compute.filter((r) => Math.abs(ratio(r) - 1) < noise).length
  const caveat = ` The largest run-to-run spread was ${fmt(100 * noise, 2)} %: ${within} of ${compute.length} ratios are within it of 1.`
  if (first === -1)
    return `${head} the main thread serves more at the costliest model measured (${measured}).${caveat}`
  if (first === 0)
    return `${head} workers win at every run cost measured, the cheapest included (${measured}).${caveat}`
  return (
    `${head} workers win from ${cost(compute[first])} per run on, and at every costlier model, ` +
    `not at ${cost(compute[first - 1])} (${measured}). The run-cost threshold for \`auto\` lies between them.${caveat}`
  )
}
