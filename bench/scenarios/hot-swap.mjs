// Issue #3's figures: drop-to-live by folder rename and by single-file rename, rollback time,
// /predict p99 at 16 connections during a burst of 20 swaps vs steady, RSS after 10 and 200 promotions.
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { load } from '../lib/load.mjs'
import { childPids, MiB, rssBytes } from '../lib/process-stats.mjs'
import { table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'

const EXAMPLE = fileURLToPath(new URL('../../models/iris', import.meta.url))
const ROW = [6.7, 3.0, 5.2, 2.3]
const BODY = JSON.stringify({ inputs: { features: [ROW] } })

async function predictVersion(url) {
  const r = await fetch(`${url}/models/iris/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY })
  await r.arrayBuffer()
  return Number(r.headers.get('x-model-version'))
}

/** Polls /predict until it answers with `version`; returns ms since `since`. */
async function untilServed(url, version, since, timeoutMs = 30_000) {
  for (;;) {
    if ((await predictVersion(url)) === version) return performance.now() - since
    if (performance.now() - since > timeoutMs) throw new Error(`version ${version} not served after ${timeoutMs} ms`)
  }
}

/** A fresh copy of the example repository, a staging folder beside it, and a server over it. */
async function freshServer() {
  const root = mkdtempSync(join(tmpdir(), 'mg-bench-swap-'))
  const models = join(root, 'models')
  const staging = join(root, 'staging') // same file system as models/, so renames are atomic
  mkdirSync(staging)
  mkdirSync(models)
  cpSync(EXAMPLE, join(models, 'iris'), { recursive: true })
  rmSync(join(models, 'iris', '2', 'smoke.json')) // v2's exact cases would fail the copies of v1
  let next = 3
  const server = await startServerProcess({ models })
  return {
    url: server.url,
    pid: server.pid,
    promoted: () => next - 3,
    /** A version folder built in staging and renamed in. */
    dropFolder(bytes) {
      const v = next++
      const dir = join(staging, String(v))
      mkdirSync(dir)
      writeFileSync(join(dir, 'model.onnx'), bytes)
      renameSync(dir, join(models, 'iris', String(v)))
      return v
    },
    /** A single <v>.onnx written in staging and renamed in. */
    dropFile(bytes) {
      const v = next++
      const tmp = join(staging, `${v}.onnx`)
      writeFileSync(tmp, bytes)
      renameSync(tmp, join(models, 'iris', `${v}.onnx`))
      return v
    },
    async stop() {
      await server.stop()
      rmSync(root, { recursive: true, force: true })
    },
  }
}

export async function hotSwap({ seconds = Number(process.env.BENCH_SECONDS ?? 8) } = {}) {
  const v1 = readFileSync(join(EXAMPLE, '1', 'model.onnx'))
  const v2 = readFileSync(join(EXAMPLE, '2', 'model.onnx'))
  const result = {}

  let s = await freshServer()
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
    result.dropToLive = { folderMs: median(folder), fileMs: median(file), folderAll: folder, fileAll: file }

    // Rollback: admin call to the first request served by the old version (warm: it is retained),
    // seen by a client sending requests back to back on its own connection meanwhile.
    const rollbacks = []
    for (let i = 0; i < 5; i++) {
      const target = s.dropFolder(v1)
      await untilServed(url, target, performance.now())
      let stop = false
      let servedOld
      const poller = (async () => {
        while (!stop) {
          const v = await predictVersion(url)
          if (v !== target && servedOld === undefined) servedOld = performance.now()
        }
      })()
      await new Promise((r) => setTimeout(r, 50))
      const t = performance.now()
      const body = await (await fetch(`${url}/models/iris/rollback`, { method: 'POST' })).json()
      if (!body.warm) throw new Error(`rollback was not warm: ${JSON.stringify(body)}`)
      while (servedOld === undefined) await new Promise((r) => setTimeout(r, 1))
      stop = true
      await poller
      rollbacks.push({ firstOldMs: servedOld - t, swapMs: body.ms })
    }
    result.rollbackMs = { median: median(rollbacks.map((r) => r.firstOldMs)), swapMedian: median(rollbacks.map((r) => r.swapMs)), all: rollbacks }

    // p99 at 16 connections, steady vs during a burst of 20 swaps, each waited for; the load runs
    // until the burst is over.
    const steady = await load({ url: `${url}/models/iris/predict`, body: BODY, connections: 16, seconds })
    let swaps = 0
    const burst = (async () => {
      await new Promise((r) => setTimeout(r, 500))
      const start = performance.now()
      while (swaps < 20) {
        await untilServed(url, s.dropFolder(swaps % 2 ? v1 : v2), performance.now(), 60_000)
        swaps++
      }
      return performance.now() - start
    })()
    const during = await load({ url: `${url}/models/iris/predict`, body: BODY, connections: 16, seconds: 120, until: burst })
    result.swapLoad = { steady, during, swaps, burstMs: await burst }
  } finally {
    await s.stop()
  }

  // On a fresh server: RSS after 10 and after 200 promotions (the server, and the gate process).
  s = await freshServer()
  try {
    const rss = []
    while (s.promoted() < 200) {
      await untilServed(s.url, s.dropFolder(s.promoted() % 2 ? v1 : v2), performance.now())
      if (s.promoted() === 10 || s.promoted() === 200) {
        const gate = childPids(s.pid).map(rssBytes).reduce((a, b) => a + b, 0)
        rss.push({ promotions: s.promoted(), serverMiB: rssBytes(s.pid) / MiB, gateProcessMiB: gate / MiB })
      }
    }
    result.rss = rss
  } finally {
    await s.stop()
  }

  const { steady, during, swaps, burstMs } = result.swapLoad
  const [r10, r200] = result.rss
  return writeReport('hot-swap', {
    title: 'Hot swap: drop-to-live, rollback, p99 during swaps, memory',
    command: 'npm run bench -- hot-swap',
    data: result,
    sections: [
      {
        title: 'Drop-to-live (example model, median of 5; stability window 500 ms)',
        body: table([
          { 'arrival': 'version folder renamed in', 'ms': result.dropToLive.folderMs },
          { 'arrival': 'single file renamed in', 'ms': result.dropToLive.fileMs },
        ]),
      },
      {
        title: 'Rollback (admin call sent to the first request served by the old version, seen by a client polling meanwhile; median of 5)',
        body: table([{ 'admin call to first old answer, ms': result.rollbackMs.median, 'pointer swap inside the server, ms': result.rollbackMs.swapMedian }]),
      },
      {
        title: `/predict at 16 connections: steady (${seconds} s) vs during a burst of ${swaps} swaps (${(burstMs / 1000).toFixed(1)} s) (${steady.tool})`,
        body: table([
          { phase: 'steady', 'req/s': steady.rps, 'p50 ms': steady.p50, 'p99 ms': steady.p99, errors: steady.errors },
          { phase: 'during swaps', 'req/s': during.rps, 'p50 ms': during.p50, 'p99 ms': during.p99, errors: during.errors },
          { phase: 'ratio', 'req/s': during.rps / steady.rps, 'p50 ms': during.p50 / steady.p50, 'p99 ms': during.p99 / steady.p99, errors: '' },
        ]),
      },
      {
        title: 'Resident memory',
        body: table([
          { promotions: 10, 'server MiB': r10.serverMiB, 'gate process MiB': r10.gateProcessMiB },
          { promotions: 200, 'server MiB': r200.serverMiB, 'gate process MiB': r200.gateProcessMiB },
          { promotions: '200 ÷ 10', 'server MiB': r200.serverMiB / r10.serverMiB, 'gate process MiB': r200.gateProcessMiB / r10.gateProcessMiB },
        ]),
      },
    ],
  })
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
