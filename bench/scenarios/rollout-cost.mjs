// Issue #13's request-path costs: the active version's req/s, p50 and p99 with a shadow candidate
// mirroring every request (fraction 1), with drift counting on, and with the payload log at 0.1 and
// 1, each against a baseline with none of them. One server per configuration, all started first;
// then rounds in which every configuration is loaded in turn (forward, then backward), so that the
// machine's speed drifting during the run lands on every configuration alike. Each ratio is a
// round's run over the same round's baseline run; the table gives the median and the spread.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { load } from '../lib/load.mjs'
import { copyExample, inputRow, mlp, writeModel } from '../lib/models.mjs'
import { stageVersion, untilActive } from '../lib/promotion.mjs'
import { interleavedRounds } from '../lib/rounds.mjs'
import { median, spread, table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { payloadLinesWritten } from '../lib/server-metrics.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

/**
 * 1: nothing queues, so the shadow can mirror most requests (its copy runs between one answer and
 * the next request); 16: the server is saturated, and the shadow takes what is left.
 */
const CONNECTIONS = [1, 16]
const ROUNDS = 4
/** A first load run per server, not reported: JIT, the drift reference's first window, file creation. */
const WARMUP_SECONDS = 1
const HEAVY = [256, 1024, 1024, 10]
const IRIS_V2 = fileURLToPath(new URL('../../models/iris/2/model.onnx', import.meta.url))

/** What each configuration adds to model.json; `shadow` gets the model's agreement rule. */
const CONFIGS = {
  baseline: () => ({}),
  // The same as the baseline on a server of its own: its ratio is the noise floor of the others.
  'baseline, second server': () => ({}),
  // minRequests out of reach: the shadow neither promotes nor rejects during the measurement.
  'shadow, fraction 1': (agreement) => ({
    rollout: { mode: 'shadow', fraction: 1, minRequests: 10_000_000, agreement },
  }),
  drift: () => ({ drift: { threshold: 0.2, window: 1000, intervalSeconds: 10 } }),
  'payload log 0.1': () => ({ payloadLog: { fraction: 0.1, maxMegabytes: 100 } }),
  'payload log 1': () => ({ payloadLog: { fraction: 1, maxMegabytes: 100 } }),
}

const MODELS = [
  {
    name: 'iris',
    label: 'iris MLP 4→16→3 (the example)',
    body: JSON.stringify({ inputs: { features: [[6.7, 3.0, 5.2, 2.3]] } }),
    agreement: { min: 0.98, output: 'label' },
    configs: [
      'baseline',
      'shadow, fraction 1',
      'drift',
      'baseline, second server',
      'payload log 0.1',
      'payload log 1',
    ],
    /** Version 1 as shipped, with `extra` merged into the example's model.json. */
    write(ws, extra) {
      const dir = copyExample(ws.models, 'iris', { versions: [1] })
      const shipped = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'))
      writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...shipped, ...extra }))
    },
    candidate: () => readFileSync(IRIS_V2),
  },
  {
    name: 'heavy',
    label: `MLP ${HEAVY.join('→')}`,
    body: JSON.stringify({ inputs: { x: [inputRow(HEAVY[0])] } }),
    agreement: { min: 0.98 },
    configs: ['baseline', 'shadow, fraction 1', 'baseline, second server', 'drift'],
    write(ws, extra) {
      writeModel(ws.models, 'heavy', mlp(HEAVY, 1), { modelJson: extra })
    },
    candidate: () => mlp(HEAVY, 2),
  },
]

export async function rolloutCost({ seconds = benchSettings().seconds ?? 2 } = {}) {
  const results = []
  for (const model of MODELS) results.push(await measureModel(model, seconds))
  return report(results, seconds)
}

/** Every configuration of one model on a server of its own, loaded in interleaved rounds. */
async function measureModel(model, seconds) {
  const servers = []
  try {
    for (const config of model.configs) servers.push(await startConfigured(model, config))
    const run = (s, connections, runSeconds) =>
      load({
        url: `${s.url}/models/${model.name}/predict`,
        body: model.body,
        connections,
        seconds: runSeconds,
      })
    for (const s of servers) await run(s, CONNECTIONS.at(-1), WARMUP_SECONDS)
    const runs = await interleavedRounds({
      servers,
      name: (s) => s.config,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      async measure(s, connections) {
        const before = s.shadow && (await shadowCounts(s.url, model.name))
        const result = await run(s, connections, seconds)
        if (s.shadow) result.shadow = delta(await shadowCounts(s.url, model.name), before)
        return result
      },
    })
    for (const s of servers) await s.confirm()
    return { model, runs }
  } finally {
    for (const s of servers) await s.stop()
  }
}

/**
 * A server over version 1 of `model` with `config`'s model.json, once the configuration is in
 * effect: for the shadow, version 2 dropped in and loaded as the shadow candidate. `confirm()`,
 * after the load, checks that the configuration did its work (drift rows counted, payload lines
 * written), so a key the server ignored cannot pass for a cost of zero.
 */
async function startConfigured(model, config) {
  const ws = createWorkspace('rollout')
  let server
  try {
    model.write(ws, CONFIGS[config](model.agreement))
    const candidate = stageVersion(ws, model.name, 2, model.candidate())
    server = await startServerProcess({ models: ws.models, stateDir: ws.stateDir })
    await untilActive(server.url, model.name, 1)
    const shadow = config.startsWith('shadow')
    if (shadow) {
      candidate.drop()
      await untilShadow(server.url, model.name, 2)
    }
    return {
      config,
      url: server.url,
      shadow,
      confirm: () => confirmInEffect(server.url, model.name, config),
      async stop() {
        await server.stop()
        ws.remove()
      },
    }
  } catch (e) {
    await server?.stop()
    ws.remove()
    throw e
  }
}

async function modelView(url, model) {
  const r = await fetch(`${url}/models/${model}`)
  const body = await r.json()
  if (!r.ok)
    throw new Error(
      `GET /models/${model} answered ${r.status}: ${JSON.stringify(body).slice(0, 200)}`,
    )
  return body
}

/** Polls GET /models/<model> until `version` is a shadow candidate; a rejection is thrown. */
async function untilShadow(url, model, version, { timeoutMs = 60_000 } = {}) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const body = await modelView(url, model)
    const state = body.versions.find((v) => v.version === version)
    if (state?.status === 'shadow' && body.rollout?.mode === 'shadow') return
    if (state?.status === 'rejected')
      throw new Error(
        `${model} version ${version} rejected: ${JSON.stringify(state).slice(0, 300)}`,
      )
    if (performance.now() > deadline)
      throw new Error(
        `${model} version ${version} not in shadow after ${timeoutMs} ms (${state?.status ?? 'not listed'})`,
      )
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function shadowCounts(url, model) {
  const body = await modelView(url, model)
  if (body.rollout?.mode !== 'shadow' || !body.rollout.shadow)
    throw new Error(
      `${model}: the shadow ended during the measurement: ${JSON.stringify(body.rollout)}`,
    )
  const { mirrored, dropped, failed, agreed } = body.rollout.shadow
  return { mirrored, dropped, failed, agreed }
}

function delta(after, before) {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k]]))
}

async function confirmInEffect(url, model, config) {
  if (config === 'drift') {
    const { drift } = await modelView(url, model)
    if (!drift || drift.referenceRows + drift.liveRows === 0)
      throw new Error(`${model}: drift counted nothing: ${JSON.stringify(drift).slice(0, 300)}`)
  }
  if (config.startsWith('payload log') && (await payloadLinesWritten(url, model)) === 0)
    throw new Error(`${model}: the payload log wrote no line`)
}

function report(results, seconds) {
  const rows = []
  const shadowRows = []
  for (const { model, runs } of results) {
    for (const connections of CONNECTIONS) {
      const base = runs[connections].baseline
      for (const config of model.configs) {
        const own = runs[connections][config]
        const ratios = (k) => own.map((r, i) => r[k] / base[i][k])
        rows.push({
          model: model.label,
          connections,
          configuration: config,
          'req/s (median)': median(own.map((r) => r.rps)),
          'p50 ms': median(own.map((r) => r.p50)),
          'p99 ms': median(own.map((r) => r.p99)),
          'req/s ÷ baseline': spread(ratios('rps')),
          'p50 ÷ baseline': spread(ratios('p50')),
          'p99 ÷ baseline': spread(ratios('p99')),
          errors: own.reduce((a, r) => a + r.errors, 0),
        })
        if (own[0].shadow) {
          const sum = (k) => own.reduce((a, r) => a + r.shadow[k], 0)
          const answered = own.reduce((a, r) => a + r.requests, 0)
          shadowRows.push({
            model: model.label,
            connections,
            'requests answered': answered,
            mirrored: sum('mirrored'),
            dropped: sum('dropped'),
            'mirrored ÷ answered': sum('mirrored') / answered,
            agreed: sum('agreed'),
            failed: sum('failed'),
          })
        }
      }
    }
  }
  const tool = results[0].runs[CONNECTIONS[0]].baseline[0].tool
  return writeReport('rollout-cost', {
    title: 'Rollout, drift and payload log: the cost on the active path',
    command: 'npm run bench -- rollout-cost',
    data: {
      seconds,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      runs: results.map(({ model, runs }) => ({ model: model.name, runs })),
    },
    sections: [
      {
        title: `POST /models/{name}/predict at ${CONNECTIONS.join(' and ')} connections (${tool}), ${ROUNDS} rounds of ${seconds} s per configuration and concurrency`,
        body: [
          table(rows),
          '',
          'One server per configuration, version 1 active; the shadow configuration has version 2 loaded as its shadow',
          "candidate. Each round loads every server in turn (forward, then backward); a ratio is a round's run over the",
          "same round's baseline run: the median of the rounds, their range in brackets. req/s, p50 and p99: medians.",
          '"baseline, second server" has the same model.json as the baseline: its ratios are what noise alone gives.',
        ].join('\n'),
      },
      {
        title:
          'How much of the traffic the shadow got (the measured runs, from GET /models/{name} `rollout.shadow`)',
        body: [
          table(shadowRows),
          '',
          'At most one mirrored copy runs per model at a time; a request arriving meanwhile is `dropped`, not queued.',
        ].join('\n'),
      },
    ],
  })
}
