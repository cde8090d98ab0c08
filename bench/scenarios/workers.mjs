// `modelgate serve --workers 2` against one process, on the small and the heavy model: req/s and
// p99 at 1 and 16 connections. One server per configuration (each in a workspace of its own), all
// started first; then rounds in which every server is loaded in turn (forward, then backward), as
// rollout-cost does, so the machine's speed drifting during the run lands on each alike. A ratio is
// a round's run over the same round's one-process run; a second one-process server gives the ratio
// noise alone gives. The CPU time of every process of a server (the primary and its workers) is
// read from /proc around each run: CPU per answer, and how the two workers shared the work.
import http from 'node:http'
import { load } from '../lib/load.mjs'
import { copyExample, inputRow, mlp, writeModel } from '../lib/models.mjs'
import { executionOf } from '../lib/promotion.mjs'
import { childPids, cpuSeconds } from '../lib/process-stats.mjs'
import { median, spread, table, writeReport } from '../lib/report.mjs'
import { interleavedRounds } from '../lib/rounds.mjs'
import { startServerProcess } from '../lib/server-process.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

/** 1: a kept-alive connection stays with one worker, so the second can add nothing; 16: both busy. */
const CONNECTIONS = [1, 16]
const ROUNDS = 4
/** A first load run per server, not reported: JIT, first connections. */
const WARMUP_SECONDS = 1
const HEAVY = [256, 1024, 1024, 10]

const CONFIGS = [
  { name: '1 process', workers: 1, baseline: true },
  { name: '--workers 2', workers: 2 },
  { name: '1 process, second server', workers: 1 },
]

const MODELS = [
  {
    name: 'iris',
    label: 'small: iris MLP 4→16→3 (the example)',
    body: JSON.stringify({ inputs: { features: [[6.7, 3.0, 5.2, 2.3]] } }),
    write: (models) => copyExample(models, 'iris', { versions: [2] }),
  },
  {
    name: 'heavy',
    label: `heavy: MLP ${HEAVY.join('→')}`,
    body: JSON.stringify({ inputs: { x: [inputRow(HEAVY[0])] } }),
    write: (models) => writeModel(models, 'heavy', mlp(HEAVY)),
  },
]

export async function workers({ seconds = benchSettings().seconds ?? 3 } = {}) {
  const results = []
  for (const model of MODELS) results.push(await measureModel(model, seconds))
  return report(results, seconds)
}

async function measureModel(model, seconds) {
  const servers = []
  try {
    for (const config of CONFIGS) servers.push(await startConfigured(model, config))
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
      name: (s) => s.config.name,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      async measure(s, connections) {
        const before = s.cpu()
        const result = await run(s, connections, seconds)
        result.cpu = s.cpu().map((t, i) => t - before[i])
        return result
      },
    })
    const execution = await executionOf(servers[0].url, model.name)
    return { model, runs, execution }
  } finally {
    for (const s of servers) await s.stop()
  }
}

/** A server over `model` with `config.workers`, once every worker answers it. */
async function startConfigured(model, config) {
  const ws = createWorkspace('workers')
  let server
  try {
    model.write(ws.models)
    server = await startServerProcess({
      models: ws.models,
      stateDir: ws.stateDir,
      args: ['--workers', String(config.workers)],
    })
    await untilEveryWorkerAnswers(server.url, model, config.workers)
    // The processes serving: the primary's children that are workers (its gate processes are the
    // workers' own children). One process alone serves itself.
    const pids = config.workers > 1 ? childPids(server.pid) : [server.pid]
    if (pids.length !== config.workers)
      throw new Error(`${config.name}: ${pids.length} serving processes, not ${config.workers}`)
    return {
      config,
      url: server.url,
      /** CPU seconds so far: each serving process's with its gate process, then the primary's. */
      cpu: () => [
        ...pids.map(
          (pid) => cpuSeconds(pid) + childPids(pid).reduce((a, c) => a + cpuSeconds(c), 0),
        ),
        ...(config.workers > 1 ? [cpuSeconds(server.pid)] : []),
      ],
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

/**
 * Predictions on connections of their own (the cluster hands each new one to the next worker)
 * until `workers` processes have answered, told apart by the per-process prefix of the prediction
 * ids they make: /readyz said only that one of them was ready.
 */
async function untilEveryWorkerAnswers(url, model, workers, { timeoutMs = 60_000 } = {}) {
  const seen = new Set()
  const deadline = performance.now() + timeoutMs
  while (seen.size < workers) {
    const { status, id } = await predictOnce(`${url}/models/${model.name}/predict`, model.body)
    if (status === 200) seen.add(id.split('-')[0])
    if (performance.now() > deadline)
      throw new Error(
        `${model.name}: ${seen.size} of ${workers} workers answered in ${timeoutMs} ms`,
      )
    if (status !== 200) await new Promise((r) => setTimeout(r, 50))
  }
}

function predictOnce(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume()
        res.on('end', () =>
          resolve({ status: res.statusCode, id: String(res.headers['x-prediction-id'] ?? '') }),
        )
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

function report(results, seconds) {
  const rows = []
  for (const { model, runs } of results) {
    for (const connections of CONNECTIONS) {
      const base = runs[connections][CONFIGS.find((c) => c.baseline).name]
      for (const config of CONFIGS) {
        const own = runs[connections][config.name]
        const ratios = (k) => own.map((r, i) => r[k] / base[i][k])
        const cpuPerAnswer = own.map((r) => (r.cpu.reduce((a, b) => a + b, 0) / r.requests) * 1e6)
        rows.push({
          model: model.label,
          connections,
          server: config.name,
          'req/s (median)': median(own.map((r) => r.rps)),
          'p50 ms': median(own.map((r) => r.p50)),
          'p99 ms': median(own.map((r) => r.p99)),
          'req/s ÷ 1 process': spread(ratios('rps')),
          'p99 ÷ 1 process': spread(ratios('p99')),
          'server CPU µs / answer': median(cpuPerAnswer),
          // The workers' CPU during the run, the busier one's share: 0.5 is an even split.
          'busier worker': config.workers > 1 ? median(own.map(busierShare)) : '',
          errors: own.reduce((a, r) => a + r.errors, 0),
        })
      }
    }
  }
  const tool = results[0].runs[CONNECTIONS[0]][CONFIGS[0].name][0].tool
  return writeReport('workers', {
    title: '--workers 2 against one process, on one 2-core machine',
    command: 'npm run bench -- workers',
    data: {
      seconds,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      runs: results.map(({ model, runs, execution }) => ({ model: model.name, execution, runs })),
    },
    sections: [
      {
        title: `POST /models/{name}/predict at ${CONNECTIONS.join(' and ')} connections (${tool}), ${ROUNDS} rounds of ${seconds} s per server and concurrency`,
        body: [
          table(rows),
          '',
          "One server per configuration, each over a copy of the model in a workspace of its own. Each round loads every server in turn (forward, then backward); a ratio is a round's",
          "run over the same round's one-process run: the median of the rounds, their range in brackets. req/s, p50 and p99: medians.",
          '"1 process, second server" is the baseline again on a server of its own: its ratios are what noise alone gives.',
          'Server CPU µs / answer: the CPU time of every process of the server (the primary, its workers, their gate processes; from /proc) during a run, over the answers.',
          `Where the models ran (GET /models/{name} \`execution\`, one process): ${results.map(({ model, execution }) => `${model.name} ${execution.mode}${execution.workers ? ` (${execution.workers} threads)` : ''}`).join(', ')}.`,
          'The load generator runs on the same 2 cores as the servers.',
        ].join('\n'),
      },
    ],
  })
}

/** The larger of the two workers' CPU shares during a run (r.cpu: the workers', then the primary's). */
function busierShare(r) {
  const [a, b] = r.cpu
  return Math.max(a, b) / (a + b)
}
