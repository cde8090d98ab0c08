// Issue #3's figures: drop-to-live by folder rename and by single-file rename, rollback time,
// /predict p99 at 16 connections during a burst of 20 swaps vs steady, RSS after 10, 50, 200 and 400
// promotions, with the example on the main thread (auto) and in inference workers.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { load } from '../lib/load.mjs'
import { copyExample } from '../lib/models.mjs'
import { childPids, MiB, rssBytes } from '../lib/process-stats.mjs'
import { table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

const ROW = [6.7, 3.0, 5.2, 2.3]
const BODY = JSON.stringify({ inputs: { features: [ROW] } })

/**
 * The version that answered. An error answer (non-2xx, or no X-Model-Version) is thrown, never
 * taken for "another version": polls below wait for a version to change, and an error would pass.
 */
async function predictVersion(url) {
  const r = await fetch(`${url}/models/iris/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
  })
  const text = await r.text()
  const header = r.headers.get('x-model-version')
  const version = Number(header)
  if (!r.ok || header === null || !Number.isInteger(version)) {
    throw new Error(
      `POST /models/iris/predict answered ${r.status}, X-Model-Version ${JSON.stringify(header)}: ${text.slice(0, 200)}`,
    )
  }
  return version
}

/** Polls /predict until an answer's version passes `test`; returns that moment (performance.now()). */
async function firstServed(url, test, { timeoutMs = 30_000, cancelled = () => false } = {}) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (test(await predictVersion(url))) return performance.now()
    if (cancelled()) throw new Error('cancelled')
    if (performance.now() > deadline) throw new Error(`no answer as expected after ${timeoutMs} ms`)
  }
}

/** Polls /predict until it answers with `version`; returns ms since `since`. */
async function untilServed(url, version, since, options) {
  try {
    return (await firstServed(url, (v) => v === version, options)) - since
  } catch (e) {
    throw new Error(`version ${version} not served: ${e.message}`)
  }
}

/** A copy of the example model (v1 and v2), a staging folder beside it, and a server over it. */
async function freshServer(args = []) {
  const ws = createWorkspace('swap')
  const staging = join(ws.root, 'staging') // same file system as models/, so renames are atomic
  mkdirSync(staging)
  const iris = copyExample(ws.models, 'iris', { versionSmoke: false }) // v2's exact cases would fail the copies of v1
  let next = 3
  let server
  try {
    server = await startServerProcess({ models: ws.models, stateDir: ws.stateDir, args })
  } catch (e) {
    ws.remove()
    throw e
  }
  return {
    url: server.url,
    pid: server.pid,
    bytes: (v) => readFileSync(join(iris, String(v), 'model.onnx')),
    promoted: () => next - 3,
    /** A version folder built in staging and renamed in. */
    dropFolder(bytes) {
      const v = next++
      const dir = join(staging, String(v))
      mkdirSync(dir)
      writeFileSync(join(dir, 'model.onnx'), bytes)
      renameSync(dir, join(iris, String(v)))
      return v
    },
    /** A single <v>.onnx written in staging and renamed in. */
    dropFile(bytes) {
      const v = next++
      const tmp = join(staging, `${v}.onnx`)
      writeFileSync(tmp, bytes)
      renameSync(tmp, join(iris, `${v}.onnx`))
      return v
    },
    async stop() {
      await server.stop()
      ws.remove()
    },
  }
}

export async function hotSwap({ seconds = benchSettings().seconds ?? 8 } = {}) {
  const result = {}

  let s = await freshServer()
  const v1 = s.bytes(1)
  const v2 = s.bytes(2)
  try {
    const url = s.url
    // Drop-to-live, median of 5 each.
    const folder = []
    const file = []
    for (let i = 0; i < 5; i++) {
      let t = performance.now()
      folder.push(await untilServed(url, s.dropFolder(i % 2 ? v1 : v2), t))
      t = performance.now()
      file.push(await untilServed(url, s.dropFile(i % 2 ? v2 : v1), t))
    }
    result.dropToLive = {
      folderMs: median(folder),
      fileMs: median(file),
      folderAll: folder,
      fileAll: file,
    }

    // Rollback: admin call to the first request served by the old version (warm: it is retained),
    // seen by a client sending requests back to back on its own connection meanwhile.
    const rollbacks = []
    for (let i = 0; i < 5; i++) {
      const target = s.dropFolder(v1)
      await untilServed(url, target, performance.now())
      let done = false
      const servedOld = firstServed(url, (v) => v !== target, { cancelled: () => done })
      servedOld.catch(() => {}) // awaited below; until then its failure must not count as unhandled
      try {
        await new Promise((r) => setTimeout(r, 50))
        const t = performance.now()
        const r = await fetch(`${url}/models/iris/rollback`, { method: 'POST' })
        const body = await r.json()
        if (!r.ok || !body.warm)
          throw new Error(`rollback answered ${r.status}, not warm: ${JSON.stringify(body)}`)
        rollbacks.push({ firstOldMs: (await servedOld) - t, swapMs: body.ms })
      } finally {
        done = true
        await servedOld.catch(() => {}) // the poller has stopped; its error, if any, was thrown above
      }
    }
    result.rollbackMs = {
      median: median(rollbacks.map((r) => r.firstOldMs)),
      swapMedian: median(rollbacks.map((r) => r.swapMs)),
      all: rollbacks,
    }

    // p99 at 16 connections, steady vs during a burst of 20 swaps, each waited for; the load runs
    // until the burst is over.
    const steady = await load({
      url: `${url}/models/iris/predict`,
      body: BODY,
      connections: 16,
      seconds,
    })
    let swaps = 0
    let stopBurst = false
    const burst = (async () => {
      await new Promise((r) => setTimeout(r, 500))
      const start = performance.now()
      while (swaps < 20 && !stopBurst) {
        await untilServed(url, s.dropFolder(swaps % 2 ? v1 : v2), performance.now(), {
          timeoutMs: 60_000,
          cancelled: () => stopBurst,
        })
        swaps++
      }
      return performance.now() - start
    })()
    try {
      // Both awaited together: a failure of either is the scenario's, and neither is left unhandled.
      const [during, burstMs] = await Promise.all([
        load({
          url: `${url}/models/iris/predict`,
          body: BODY,
          connections: 16,
          seconds: 120,
          until: burst,
        }),
        burst,
      ])
      result.swapLoad = { steady, during, swaps, burstMs }
    } finally {
      stopBurst = true
      await burst.catch(() => {})
    }
  } finally {
    await s.stop()
  }

  // On a fresh server: RSS after 10, 50, 200 and 400 promotions (the server, and the gate process),
  // once with the example on the main thread (what auto picks for it) and once in workers.
  result.rss = {}
  for (const [mode, args] of [
    ['auto (main thread)', []],
    ['workers', ['--execution', 'workers']],
  ]) {
    s = await freshServer(args)
    try {
      const rss = []
      while (s.promoted() < 400) {
        await untilServed(s.url, s.dropFolder(s.promoted() % 2 ? v1 : v2), performance.now())
        if ([10, 50, 200, 400].includes(s.promoted())) {
          const gate = childPids(s.pid)
            .map(rssBytes)
            .reduce((a, b) => a + b, 0)
          rss.push({
            promotions: s.promoted(),
            serverMiB: rssBytes(s.pid) / MiB,
            gateProcessMiB: gate / MiB,
          })
        }
      }
      result.rss[mode] = rss
    } finally {
      await s.stop()
    }
  }

  const { steady, during, swaps, burstMs } = result.swapLoad
  return writeReport('hot-swap', {
    title: 'Hot swap: drop-to-live, rollback, p99 during swaps, memory',
    command: 'npm run bench -- hot-swap',
    data: result,
    sections: [
      {
        title: 'Drop-to-live (example model, median of 5; stability window 500 ms)',
        body: table([
          { arrival: 'version folder renamed in', ms: result.dropToLive.folderMs },
          { arrival: 'single file renamed in', ms: result.dropToLive.fileMs },
        ]),
      },
      {
        title:
          'Rollback (admin call sent to the first request served by the old version, seen by a client polling meanwhile; median of 5)',
        body: table([
          {
            'admin call to first old answer, ms': result.rollbackMs.median,
            'pointer swap inside the server, ms': result.rollbackMs.swapMedian,
          },
        ]),
      },
      {
        title: `/predict at 16 connections: steady (${seconds} s) vs during a burst of ${swaps} swaps (${(burstMs / 1000).toFixed(1)} s) (${steady.tool})`,
        body: table([
          {
            phase: 'steady',
            'req/s': steady.rps,
            'p50 ms': steady.p50,
            'p99 ms': steady.p99,
            errors: steady.errors,
          },
          {
            phase: 'during swaps',
            'req/s': during.rps,
            'p50 ms': during.p50,
            'p99 ms': during.p99,
            errors: during.errors,
          },
          {
            phase: 'ratio',
            'req/s': during.rps / steady.rps,
            'p50 ms': during.p50 / steady.p50,
            'p99 ms': during.p99 / steady.p99,
            errors: '',
          },
        ]),
      },
      {
        title:
          'Resident memory after n promotions, one fresh server per mode (target: 200 ÷ 10 ≤ 1.1; 400 ÷ 50 shows whether it still grows)',
        body: table(
          Object.entries(result.rss).flatMap(([mode, rss]) => {
            const at = (n) => rss.find((r) => r.promotions === n)
            const ratio = (a, b) => ({
              mode,
              promotions: `${a} ÷ ${b}`,
              'server MiB': at(a).serverMiB / at(b).serverMiB,
              'gate process MiB': at(a).gateProcessMiB / at(b).gateProcessMiB,
            })
            return [
              ...rss.map((r) => ({
                mode,
                promotions: r.promotions,
                'server MiB': r.serverMiB,
                'gate process MiB': r.gateProcessMiB,
              })),
              ratio(200, 10),
              ratio(400, 50),
            ]
          }),
        ),
      },
    ],
  })
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
