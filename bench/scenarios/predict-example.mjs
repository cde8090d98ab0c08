// /predict on the bundled example model vs session.run() in-process on the same model and input.
import { fileURLToPath } from 'node:url'
import { Tensor } from 'onnxruntime-node'
import { createSession, runLatency, runThroughput } from '../lib/in-process.mjs'
import { load } from '../lib/load.mjs'
import { table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'

const MODELS = fileURLToPath(new URL('../../models', import.meta.url))
const ROW = [6.7, 3.0, 5.2, 2.3]

export async function predictExample({ seconds = Number(process.env.BENCH_SECONDS ?? 8) } = {}) {
  const session = await createSession(`${MODELS}/iris/2/model.onnx`, { intraOpNumThreads: 1 })
  const feeds = { features: new Tensor('float32', Float32Array.from(ROW), [1, 4]) }
  const runtime = {
    ...(await runLatency(session, feeds, { gapMs: 0.2 })),
    runsPerSec: await runThroughput(session, feeds, { seconds: 2 }),
  }
  await session.release()

  const server = await startServerProcess({ models: MODELS })
  const body = JSON.stringify({ inputs: { features: [ROW] } })
  const http = []
  try {
    for (const connections of [1, 16]) {
      http.push(await load({ url: `${server.url}/predict`, body, connections, seconds }))
    }
  } finally {
    await server.stop()
  }
  const rows = http.map((h) => ({
    connections: h.connections,
    'req/s': h.rps,
    'p50 ms': h.p50,
    'p99 ms': h.p99,
    errors: h.errors,
    'req/s ÷ runs/s': h.rps / runtime.runsPerSec,
    'p50 ÷ run p50': h.p50 / runtime.p50,
  }))
  return writeReport('predict-example', {
    title: '/predict on the example model (iris v2) vs session.run() in-process',
    command: 'npm run bench -- predict-example',
    data: { runtime, http },
    sections: [
      {
        title: 'session.run() in-process (batch 1, 0.2 ms idle gap before each timed run)',
        body: table([{ 'p50 ms': runtime.p50, 'p99 ms': runtime.p99, 'runs/s back to back': runtime.runsPerSec }]),
      },
      { title: `POST /predict (${http[0]?.tool}, ${seconds} s each)`, body: table(rows) },
    ],
  })
}
