// /predict on the bundled example model vs session.run() in-process on the same model and input.
import { join } from 'node:path'
import { Tensor } from 'onnxruntime-node'
import { createSession, runLatency, runThroughput } from '../lib/in-process.mjs'
import { load } from '../lib/load.mjs'
import { copyExample } from '../lib/models.mjs'
import { table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

const ROW = [6.7, 3.0, 5.2, 2.3]

export async function predictExample({ seconds = benchSettings().seconds ?? 8 } = {}) {
  const ws = createWorkspace('predict')
  try {
    // The example as shipped, so iris is the only model and POST /predict its default route.
    const iris = copyExample(ws.models, 'iris')
    const session = await createSession(join(iris, '2', 'model.onnx'), { intraOpNumThreads: 1 })
    const feeds = { features: new Tensor('float32', Float32Array.from(ROW), [1, 4]) }
    const runtime = {
      ...(await runLatency(session, feeds, { gapMs: 0.2 })),
      runsPerSec: await runThroughput(session, feeds, { seconds: 2 }),
    }
    await session.release()

    const server = await startServerProcess({ models: ws.models, stateDir: ws.stateDir })
    const body = JSON.stringify({ inputs: { features: [ROW] } })
    const http = []
    try {
      for (const connections of [1, 16]) {
        http.push(await load({ url: `${server.url}/predict`, body, connections, seconds }))
      }
    } finally {
      await server.stop()
    }
    return report(runtime, http, seconds)
  } finally {
    ws.remove()
  }
}

function report(runtime, http, seconds) {
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
        body: table([
          {
            'p50 ms': runtime.p50,
            'p99 ms': runtime.p99,
            'runs/s back to back': runtime.runsPerSec,
          },
        ]),
      },
      { title: `POST /predict (${http[0]?.tool}, ${seconds} s each)`, body: table(rows) },
    ],
  })
}
