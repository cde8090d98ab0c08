// A burst of version folders renamed in at once (issue "a burst of version folders wedges, then
// kills the server"): time until the newest serves, the slowest /healthz answer meanwhile, and peak
// resident memory. The server runs with a capped heap so a regression ends in an OOM, not a
// machine out of memory. BURST_COUNTS=1000,3000 (default), BURST_SPREAD_MS=0,1000 (renamed in one
// tight loop, and spread over 1 s as a shell loop of `mv` does), BURST_TIMEOUT_S=180 per run.
import { copyFileSync, cpSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { childPids, MiB, rssBytes } from '../lib/process-stats.mjs'
import { table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

const EXAMPLE = fileURLToPath(new URL('../../models/iris', import.meta.url))

async function one(count, spreadMs, timeoutMs, nodeArgs) {
  const workspace = createWorkspace('burst')
  const { root, models, stateDir } = workspace
  const staging = join(root, 'staging') // same file system as models/, so renames are atomic
  mkdirSync(staging)
  cpSync(EXAMPLE, join(models, 'iris'), { recursive: true })
  rmSync(join(models, 'iris', '2', 'smoke.json'))
  // Every version is a copy of v1: tiny, and passes the model's smoke cases.
  const first = 3
  const newest = first + count - 1
  for (let v = first; v <= newest; v++) {
    mkdirSync(join(staging, String(v)))
    copyFileSync(join(EXAMPLE, '1', 'model.onnx'), join(staging, String(v), 'model.onnx'))
  }
  const server = await startServerProcess({ models, stateDir, nodeArgs })
  const result = {
    count,
    spreadMs,
    settled: false,
    settleMs: NaN,
    healthz: { answers: 0, failures: 0, maxMs: 0 },
    peakServerMiB: 0,
    peakGateMiB: 0,
  }
  let done = false
  const sampler = setInterval(() => {
    const rss = rssBytes(server.pid) // NaN once the server is gone
    if (Number.isFinite(rss)) result.peakServerMiB = Math.max(result.peakServerMiB, rss / MiB)
    const gate = childPids(server.pid)
      .map(rssBytes)
      .filter(Number.isFinite)
      .reduce((a, b) => a + b, 0)
    result.peakGateMiB = Math.max(result.peakGateMiB, gate / MiB)
  }, 100)
  const health = (async () => {
    while (!done) {
      const t = performance.now()
      try {
        const r = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) })
        await r.arrayBuffer()
        if (r.ok) result.healthz.answers++
        else result.healthz.failures++
      } catch {
        result.healthz.failures++
      }
      result.healthz.maxMs = Math.max(result.healthz.maxMs, performance.now() - t)
    }
  })()
  const t0 = performance.now()
  try {
    // Renamed over `spreadMs`, as a shell loop of `mv` does (0: one tight loop).
    for (let v = first; v <= newest; v++) {
      renameSync(join(staging, String(v)), join(models, 'iris', String(v)))
      if (spreadMs > 0 && (v - first) % 10 === 9)
        await new Promise((r) => setTimeout(r, (spreadMs * 10) / count))
    }
    while (performance.now() - t0 < timeoutMs) {
      try {
        const r = await fetch(`${server.url}/models/iris`, {
          signal: AbortSignal.timeout(timeoutMs),
        })
        const body = await r.json()
        if (body.active === newest) {
          result.settled = true
          result.settleMs = performance.now() - t0
          break
        }
      } catch {
        if (server.exited?.()) break
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  } finally {
    done = true
    clearInterval(sampler)
    await health
    await server.stop().catch(() => undefined)
    workspace.remove()
  }
  return result
}

export async function burst() {
  const counts = (process.env.BURST_COUNTS ?? '1000,3000').split(',').map(Number)
  const timeoutMs = Number(process.env.BURST_TIMEOUT_S ?? 180) * 1000
  const nodeArgs = [
    '--max-old-space-size=1024',
    ...(process.env.BURST_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ]
  const spreads = (process.env.BURST_SPREAD_MS ?? '0,1000').split(',').map(Number)
  const results = []
  for (const count of counts)
    for (const spreadMs of spreads) results.push(await one(count, spreadMs, timeoutMs, nodeArgs))
  return writeReport('burst', {
    title: 'A burst of version folders renamed in at once',
    command: 'npm run bench -- burst',
    data: { results, nodeArgs },
    sections: [
      {
        title: `Copies of the example model, renamed into models/iris/ at once; server heap capped (${nodeArgs.join(' ')})`,
        body: table(
          results.map((r) => ({
            folders: r.count,
            'renamed over ms': r.spreadMs,
            'settled (newest serves)': r.settled ? 'yes' : `no (after ${timeoutMs / 1000} s)`,
            'settle s': r.settleMs / 1000,
            '/healthz answers': r.healthz.answers,
            '/healthz failures': r.healthz.failures,
            'slowest /healthz ms': r.healthz.maxMs,
            'peak server RSS MiB': r.peakServerMiB,
            'peak gate process RSS MiB': r.peakGateMiB,
          })),
        ),
      },
    ],
  })
}
