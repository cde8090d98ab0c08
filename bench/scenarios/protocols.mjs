// Issue #15's protocol comparison, all in one run on one server (REST and gRPC listeners): the
// KServe V2 infer route with JSON tensors (the baseline), the same route with binary tensors
// (Triton's extension, tritonclient's default), gRPC ModelInfer with raw contents, and the simple
// /predict route, on the small and the heavy model at 1 and 16 connections. Every client is a Node
// closed-loop generator in a child process (node-load-worker.mjs, grpc-load-worker.mjs), so the
// client side costs the same language for all of them. Before any timing, every protocol must give
// the REST JSON answer bit for bit. Rounds load every protocol in turn (forward, then backward), as
// rollout-cost does; a ratio is a round's run over the same round's REST JSON run; a second REST
// JSON entry gives the ratio noise alone gives. The server's CPU time per answer is measured too:
// on 2 cores the client shares the machine, and a client that takes more CPU per call leaves the
// server less, so req/s alone cannot say which side a protocol costs.
import { grpcChannel, modelInfer, untilConnected } from '../lib/grpc-client.mjs'
import { grpcLoad, load } from '../lib/load.mjs'
import { copyExample, inputRow, mlp, writeModel } from '../lib/models.mjs'
import { cpuSeconds } from '../lib/process-stats.mjs'
import { median, spread, table, writeReport } from '../lib/report.mjs'
import { freePort, startServerProcess } from '../lib/server-process.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

const CONNECTIONS = [1, 16]
const ROUNDS = 4
/** A first load run per protocol and model, not reported: JIT on both sides, first connections. */
const WARMUP_SECONDS = 1
const HEAVY = [256, 1024, 1024, 10]

const MODELS = [
  {
    name: 'iris',
    label: 'small: iris MLP 4→16→3 (the example)',
    input: 'features',
    row: [6.7, 3.0, 5.2, 2.3],
    write: (models) => copyExample(models, 'iris', { versions: [2] }),
  },
  {
    name: 'heavy',
    label: `heavy: MLP ${HEAVY.join('→')}`,
    input: 'x',
    row: inputRow(HEAVY[0]),
    write: (models) => writeModel(models, 'heavy', mlp(HEAVY)),
  },
]

/** One request per protocol for `model`, and how to read its answer as {output: {datatype, bytes}}. */
function requestsFor(model) {
  const shape = [1, model.row.length]
  const raw = Buffer.from(Float32Array.from(model.row).buffer)
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: model.input,
          shape,
          datatype: 'FP32',
          parameters: { binary_data_size: raw.length },
        },
      ],
      parameters: { binary_data_output: true },
    }),
  )
  return {
    v2Json: JSON.stringify({
      inputs: [{ name: model.input, shape, datatype: 'FP32', data: model.row }],
    }),
    v2Binary: {
      body: Buffer.concat([header, raw]),
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
    },
    simple: JSON.stringify({ inputs: { [model.input]: [model.row] } }),
    grpc: {
      model_name: model.name,
      inputs: [{ name: model.input, datatype: 'FP32', shape }],
      raw_input_contents: [raw],
    },
  }
}

/**
 * The protocols in a round's forward order. Each loads `model` on `server` with `connections`
 * clients for `seconds`; `baseline` marks the one every ratio divides by.
 */
const PROTOCOLS = [
  {
    name: 'REST JSON',
    route: 'POST /v2/models/{m}/infer, JSON tensors',
    baseline: true,
    run: (s, m, connections, seconds) =>
      load({
        url: `${s.url}/v2/models/${m.name}/infer`,
        body: m.requests.v2Json,
        connections,
        seconds,
        tool: 'node',
      }),
  },
  {
    name: 'REST binary',
    route: 'POST /v2/models/{m}/infer, binary tensors in and out',
    run: (s, m, connections, seconds) =>
      load({
        url: `${s.url}/v2/models/${m.name}/infer`,
        ...m.requests.v2Binary,
        connections,
        seconds,
        tool: 'node',
      }),
  },
  {
    name: 'gRPC',
    route: 'ModelInfer, raw_input_contents',
    run: (s, m, connections, seconds) =>
      grpcLoad({ target: s.grpcTarget, request: m.requests.grpc, connections, seconds }),
  },
  {
    name: 'REST simple',
    route: 'POST /models/{m}/predict',
    run: (s, m, connections, seconds) =>
      load({
        url: `${s.url}/models/${m.name}/predict`,
        body: m.requests.simple,
        connections,
        seconds,
        tool: 'node',
      }),
  },
  {
    name: 'REST JSON, again',
    route: 'the baseline once more: its ratio is the noise floor',
    run: (s, m, connections, seconds) => PROTOCOLS[0].run(s, m, connections, seconds),
  },
]

export async function protocols({ seconds = benchSettings().seconds ?? 2 } = {}) {
  const ws = createWorkspace('protocols')
  let server
  try {
    for (const model of MODELS) model.write(ws.models)
    const grpcPort = await freePort()
    server = await startServerProcess({
      models: ws.models,
      stateDir: ws.stateDir,
      args: ['--grpc-port', String(grpcPort)],
    })
    const s = { url: server.url, grpcTarget: `127.0.0.1:${grpcPort}`, pid: server.pid }
    const results = []
    for (const model of MODELS) {
      const m = { ...model, requests: requestsFor(model) }
      const outputs = await sameAnswers(s, m)
      results.push({ model: m, outputs, runs: await measureModel(s, m, seconds) })
    }
    return report(results, seconds)
  } finally {
    await server?.stop()
    ws.remove()
  }
}

async function measureModel(s, m, seconds) {
  for (const p of PROTOCOLS) await p.run(s, m, CONNECTIONS.at(-1), WARMUP_SECONDS)
  // runs[connections][protocol]: one result per round
  const runs = Object.fromEntries(
    CONNECTIONS.map((c) => [c, Object.fromEntries(PROTOCOLS.map((p) => [p.name, []]))]),
  )
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...PROTOCOLS].reverse() : PROTOCOLS
    for (const p of order) {
      for (const c of CONNECTIONS) {
        const cpuBefore = cpuSeconds(s.pid)
        const result = await p.run(s, m, c, seconds)
        result.serverCpuSeconds = cpuSeconds(s.pid) - cpuBefore
        runs[c][p.name].push(result)
      }
    }
  }
  return runs
}

/**
 * One request per protocol; every answer must hold the REST JSON answer's outputs, same datatype,
 * same bytes, or the bench fails before timing anything.
 * @returns {string[]} the outputs compared
 */
async function sameAnswers(s, m) {
  const json = await post(`${s.url}/v2/models/${m.name}/infer`, m.requests.v2Json)
  const expected = Object.fromEntries(
    json.outputs.map((o) => [o.name, { datatype: o.datatype, bytes: bytesOf(o.datatype, o.data) }]),
  )
  const simple = await post(`${s.url}/models/${m.name}/predict`, m.requests.simple)
  const answers = {
    'REST binary': await binaryAnswer(s, m),
    gRPC: await grpcAnswer(s, m),
    'REST simple': Object.fromEntries(
      Object.entries(simple.outputs).map(([name, data]) => {
        const datatype = expected[name]?.datatype
        return [name, { datatype, bytes: bytesOf(datatype, [data].flat(Infinity)) }]
      }),
    ),
  }
  for (const [protocol, got] of Object.entries(answers)) {
    const names = Object.keys(expected).sort()
    if (JSON.stringify(Object.keys(got).sort()) !== JSON.stringify(names))
      throw new Error(`${m.name}: ${protocol} answered outputs ${Object.keys(got)}, not ${names}`)
    for (const name of names) {
      const [a, b] = [expected[name], got[name]]
      if (a.datatype !== b.datatype || !a.bytes.equals(b.bytes))
        throw new Error(
          `${m.name}: ${protocol}'s ${name} (${b.datatype}, ${b.bytes.toString('hex')}) is not REST JSON's (${a.datatype}, ${a.bytes.toString('hex')})`,
        )
    }
  }
  return Object.keys(expected)
}

async function post(url, body, headers = { 'content-type': 'application/json' }) {
  const r = await fetch(url, { method: 'POST', body, headers })
  if (!r.ok) throw new Error(`POST ${url} answered ${r.status}: ${(await r.text()).slice(0, 300)}`)
  return r
    .json()
    .catch((e) => Promise.reject(new Error(`POST ${url}: the answer is not JSON: ${e.message}`)))
}

function bytesOf(datatype, data) {
  if (datatype === 'FP32') return Buffer.from(Float32Array.from(data).buffer)
  if (datatype === 'INT64') return Buffer.from(BigInt64Array.from(data, BigInt).buffer)
  throw new Error(`the protocols bench compares FP32 and INT64 outputs, not ${datatype}`)
}

async function binaryAnswer(s, m) {
  const url = `${s.url}/v2/models/${m.name}/infer`
  const r = await fetch(url, { method: 'POST', ...m.requests.v2Binary })
  const body = Buffer.from(await r.arrayBuffer())
  if (!r.ok)
    throw new Error(`POST ${url} (binary) answered ${r.status}: ${body.toString().slice(0, 300)}`)
  const headerLength = Number(r.headers.get('inference-header-content-length'))
  const header = JSON.parse(body.subarray(0, headerLength).toString())
  let offset = headerLength
  const outputs = {}
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size
    if (size === undefined) throw new Error(`${m.name}: binary answer's ${o.name} is not binary`)
    outputs[o.name] = { datatype: o.datatype, bytes: body.subarray(offset, offset + size) }
    offset += size
  }
  return outputs
}

async function grpcAnswer(s, m) {
  const channel = grpcChannel(s.grpcTarget)
  try {
    await untilConnected(channel, new Date(Date.now() + 5000))
    const r = await modelInfer(channel, m.requests.grpc)
    return Object.fromEntries(
      r.outputs.map((o, i) => [o.name, { datatype: o.datatype, bytes: r.raw_output_contents[i] }]),
    )
  } finally {
    channel.close()
  }
}

function report(results, seconds) {
  const rows = []
  for (const { model, runs } of results) {
    for (const connections of CONNECTIONS) {
      const base = runs[connections][PROTOCOLS.find((p) => p.baseline).name]
      for (const p of PROTOCOLS) {
        const own = runs[connections][p.name]
        const ratios = (k) => own.map((r, i) => r[k] / base[i][k])
        rows.push({
          model: model.label,
          connections,
          protocol: p.name,
          'req/s (median)': median(own.map((r) => r.rps)),
          'p50 ms': median(own.map((r) => r.p50)),
          'p99 ms': median(own.map((r) => r.p99)),
          'req/s ÷ REST JSON': spread(ratios('rps')),
          'p50 ÷ REST JSON': spread(ratios('p50')),
          'p99 ÷ REST JSON': spread(ratios('p99')),
          'server CPU µs / answer': median(own.map((r) => (r.serverCpuSeconds / r.requests) * 1e6)),
          errors: own.reduce((a, r) => a + r.errors, 0),
        })
      }
    }
  }
  return writeReport('protocols', {
    title: 'Protocols: REST JSON, REST binary, gRPC and the simple route, one server, one run',
    command: 'npm run bench -- protocols',
    data: {
      seconds,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      runs: results.map(({ model, outputs, runs }) => ({ model: model.name, outputs, runs })),
    },
    sections: [
      {
        title: `At ${CONNECTIONS.join(' and ')} connections (Node generators), ${ROUNDS} rounds of ${seconds} s per protocol and concurrency`,
        body: [
          table(rows),
          '',
          ...PROTOCOLS.map((p) => `- **${p.name}**: ${p.route}`),
          '',
          "One server with both listeners. Each round loads every protocol in turn (forward, then backward); a ratio is a round's",
          "run over the same round's REST JSON run: the median of the rounds, their range in brackets. req/s, p50 and p99: medians.",
          "Server CPU µs / answer: the server process's CPU time (all threads, from /proc) during a run over the answers it gave, median.",
          `Checked before timing: every protocol answers ${results.map(({ model, outputs }) => `${model.name} (${outputs.join(', ')})`).join(' and ')} with REST JSON's bytes.`,
        ].join('\n'),
      },
    ],
  })
}
