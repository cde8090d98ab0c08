// Issue #4's main comparison, all in one run: the HTTP ceiling (the server's own no-op route),
// the runtime limit (session.run() in-process), the hand-written per-request wrapper, and
// /predict on a small and a compute-heavy model with batching off and on, at 1, 16, 64 connections.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Tensor } from 'onnxruntime-node'
import { createSession, runLatency, runThroughput } from '../lib/in-process.mjs'
import { load } from '../lib/load.mjs'
import { copyExample, inputRow, mlp, writeModel } from '../lib/models.mjs'
import { fmt, table, writeReport } from '../lib/report.mjs'
import { freePort, startServerProcess } from '../lib/server-process.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

const PLAIN = fileURLToPath(new URL('../baselines/plain-wrapper.mjs', import.meta.url))
const POST_NOOP = fileURLToPath(new URL('../baselines/hono-post-noop.mjs', import.meta.url))
const CONNECTIONS = [1, 16, 64]

const MODELS = {
  small: {
    label: 'small: iris MLP 4→16→3 (the example model)',
    input: 'features',
    row: [6.7, 3.0, 5.2, 2.3],
  },
  heavy: { label: 'heavy: MLP 256→1024→1024→10', input: 'x', row: inputRow(256) },
}

function body(kind) {
  const m = MODELS[kind]
  return JSON.stringify({ inputs: { [m.input]: [m.row] } })
}

async function batchStats(url, model) {
  const r = await fetch(`${url}/metrics`)
  const text = await r.text()
  if (!r.ok) throw new Error(`GET /metrics answered ${r.status}: ${text.slice(0, 200)}`)
  const get = (k) =>
    Number(
      new RegExp(`^modelgate_batch_size_${k}\\{model="${model}"\\} (\\S+)`, 'm').exec(text)?.[1] ??
        0,
    )
  return { sum: get('sum'), count: get('count') }
}

async function startBaseline(script, ...args) {
  const port = await freePort()
  const child = spawn(process.execPath, [script, ...args, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve)
    child.once('exit', (code) => reject(new Error(`plain wrapper exited ${code}`)))
  })
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))),
  }
}

export async function throughput({ seconds = benchSettings().seconds ?? 5 } = {}) {
  const ws = createWorkspace('tp')
  try {
    return report(await measure(ws.models, ws.stateDir, seconds))
  } finally {
    ws.remove()
  }
}

async function measure(models, stateDir, seconds) {
  // small-on is the example as shipped (version 2 only); small-off the same with batching off.
  for (const name of ['small-on', 'small-off']) copyExample(models, name, { versions: [2] })
  const exampleConfig = JSON.parse(readFileSync(join(models, 'small-on', 'model.json'), 'utf8'))
  writeFileSync(
    join(models, 'small-off', 'model.json'),
    JSON.stringify({ ...exampleConfig, batching: { enabled: false } }),
  )
  const heavyBytes = mlp([256, 1024, 1024, 10])
  const heavyFile = writeModel(models, 'heavy-on', heavyBytes)
  writeModel(models, 'heavy-off', heavyBytes, { modelJson: { batching: { enabled: false } } })
  const smallFile = join(models, 'small-on', '2', 'model.onnx')

  const data = { seconds, ceiling: [], predict: {}, plain: {}, runtime: {}, batches: {} }
  const server = await startServerProcess({ models, stateDir, args: ['--max-body-size', '64mb'] })
  try {
    for (const c of CONNECTIONS)
      data.ceiling.push(await load({ url: `${server.url}/healthz`, connections: c, seconds }))
    for (const kind of ['small', 'heavy']) {
      for (const mode of ['off', 'on']) {
        const name = `${kind}-${mode}`
        data.predict[name] = []
        for (const c of CONNECTIONS) {
          const before = await batchStats(server.url, name)
          data.predict[name].push(
            await load({
              url: `${server.url}/models/${name}/predict`,
              body: body(kind),
              connections: c,
              seconds,
            }),
          )
          const after = await batchStats(server.url, name)
          if (mode === 'on')
            data.batches[`${name}@${c}`] =
              (after.sum - before.sum) / Math.max(1, after.count - before.count)
        }
      }
    }
  } finally {
    await server.stop()
  }

  for (const [kind, file] of [
    ['small', smallFile],
    ['heavy', heavyFile],
  ]) {
    const plain = await startBaseline(PLAIN, file)
    try {
      data.plain[kind] = []
      for (const c of CONNECTIONS)
        data.plain[kind].push(
          await load({ url: plain.url, body: body(kind), connections: c, seconds }),
        )
    } finally {
      await plain.stop()
    }
  }

  const postNoop = await startBaseline(POST_NOOP)
  try {
    data.postNoop = []
    for (const c of CONNECTIONS)
      data.postNoop.push(
        await load({ url: `${postNoop.url}/noop`, body: body('small'), connections: c, seconds }),
      )
  } finally {
    await postNoop.stop()
  }

  // The runtime limit, in this process, with the server stopped: batch 1, and the batch size the
  // batcher formed at 64 connections.
  for (const [kind, file, options] of [
    ['small', smallFile, { intraOpNumThreads: 1 }],
    ['heavy', heavyFile, {}],
  ]) {
    const session = await createSession(file, options)
    const m = MODELS[kind]
    const feedsOf = (n) => ({
      [m.input]: new Tensor(
        'float32',
        Float32Array.from({ length: n * m.row.length }, (_, i) => m.row[i % m.row.length]),
        [n, m.row.length],
      ),
    })
    const formed = Math.max(1, Math.round(data.batches[`${kind}-on@64`] ?? 1))
    const one = feedsOf(1)
    data.runtime[kind] = {
      batch1: {
        ...(await runLatency(session, one, { gapMs: 0.2 })),
        runsPerSec: await runThroughput(session, one, { seconds: 2 }),
      },
      formedBatch: formed,
      batchedSamplesPerSec:
        formed * (await runThroughput(session, feedsOf(formed), { seconds: 2 })),
    }
    await session.release()
  }
  return data
}

function report(data) {
  const at = (rows, c) => rows[CONNECTIONS.indexOf(c)]
  const ceiling64 = at(data.ceiling, 64).rps
  const rows = []
  for (const c of CONNECTIONS) {
    const ceil = at(data.ceiling, c)
    rows.push({
      route: 'HTTP ceiling: GET /healthz',
      connections: c,
      'req/s': ceil.rps,
      'p50 ms': ceil.p50,
      'p99 ms': ceil.p99,
      errors: ceil.errors,
      '÷ ceiling': 1,
    })
  }
  for (const c of CONNECTIONS) {
    const p = at(data.postNoop, c)
    rows.push({
      route: 'reference: bare Hono POST route, same body',
      connections: c,
      'req/s': p.rps,
      'p50 ms': p.p50,
      'p99 ms': p.p99,
      errors: p.errors,
      '÷ ceiling': p.rps / at(data.ceiling, c).rps,
    })
  }
  for (const kind of ['small', 'heavy']) {
    for (const c of CONNECTIONS) {
      const p = at(data.plain[kind], c)
      rows.push({
        route: `plain wrapper, ${kind}`,
        connections: c,
        'req/s': p.rps,
        'p50 ms': p.p50,
        'p99 ms': p.p99,
        errors: p.errors,
        '÷ ceiling': p.rps / at(data.ceiling, c).rps,
      })
    }
    for (const mode of ['off', 'on']) {
      for (const c of CONNECTIONS) {
        const p = at(data.predict[`${kind}-${mode}`], c)
        rows.push({
          route: `/predict ${kind}, batching ${mode}`,
          connections: c,
          'req/s': p.rps,
          'p50 ms': p.p50,
          'p99 ms': p.p99,
          errors: p.errors,
          '÷ ceiling': p.rps / at(data.ceiling, c).rps,
        })
      }
    }
  }
  const rt = data.runtime
  const runtimeRows = ['small', 'heavy'].map((kind) => ({
    model: MODELS[kind].label,
    'batch 1 p50 ms (0.2 ms gap)': rt[kind].batch1.p50,
    'batch 1 runs/s': rt[kind].batch1.runsPerSec,
    'batch formed at 64 conn': rt[kind].formedBatch,
    'samples/s at that batch': rt[kind].batchedSamplesPerSec,
  }))

  const small64 = at(data.predict['small-on'], 64).rps
  const heavy64 = at(data.predict['heavy-on'], 64).rps
  const heavyLimit = 1 / (1 / ceiling64 + 1 / rt.heavy.batchedSamplesPerSec)
  const plainHeavy64 = at(data.plain.heavy, 64).rps
  const p50Budget = at(data.ceiling, 1).p50 + rt.small.batch1.p50 + 0.05
  const small1 = at(data.predict['small-on'], 1).p50
  const targets = [
    {
      target: 'small model at 64 connections ≥ 0.8 × ceiling',
      measured: `${fmt(small64)} req/s = ${fmt(small64 / ceiling64)} × ${fmt(ceiling64)}`,
      met: small64 >= 0.8 * ceiling64,
    },
    {
      target: 'heavy model, batching, 64 conn ≥ 0.6 × 1/(1/ceiling + 1/batched samples/s)',
      measured: `${fmt(heavy64)} req/s = ${fmt(heavy64 / heavyLimit)} × ${fmt(heavyLimit)}`,
      met: heavy64 >= 0.6 * heavyLimit,
    },
    {
      target: 'heavy model, batching, 64 conn ≥ 2 × plain wrapper',
      measured: `${fmt(heavy64 / plainHeavy64)} × (${fmt(plainHeavy64)} req/s)`,
      met: heavy64 >= 2 * plainHeavy64,
    },
    {
      target: '1 connection: /predict p50 ≤ ceiling p50 + run p50 + 0.05 ms (small)',
      measured: `${fmt(small1)} ms vs ${fmt(at(data.ceiling, 1).p50)} + ${fmt(rt.small.batch1.p50)} + 0.05 = ${fmt(p50Budget)} ms`,
      met: small1 <= p50Budget,
    },
  ].map((t) => ({ ...t, met: t.met ? 'yes' : 'NO' }))

  return writeReport('throughput', {
    title: 'Throughput: /predict vs the HTTP ceiling, the runtime limit and a hand-written wrapper',
    command: 'npm run bench -- throughput',
    data: { ...data, targets },
    sections: [
      { title: 'Targets', body: table(targets) },
      { title: `HTTP (${at(data.ceiling, 1).tool}, ${data.seconds} s per row)`, body: table(rows) },
      {
        title: 'Runtime limit: session.run() in-process, same model and input',
        body: table(runtimeRows),
      },
    ],
  })
}
