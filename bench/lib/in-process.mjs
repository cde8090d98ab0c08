// The runtime's own speed on this machine: session.run() in this process, no HTTP, no JSON.
import { readFileSync } from 'node:fs'
import { InferenceSession } from 'onnxruntime-node'
import { percentile } from './load-result.mjs'

export async function createSession(path, options = {}) {
  return InferenceSession.create(readFileSync(path), options)
}

/**
 * Per-call latency (ms) of `session.run(feeds)` after `warmup` untimed runs; with `gapMs`, each run
 * follows an idle gap, as between requests on one connection (a warm loop back to back is faster
 * than any server can be).
 */
export async function runLatency(session, feeds, { runs = 2000, gapMs = 0, warmup = 200 } = {}) {
  for (let i = 0; i < warmup; i++) await session.run(feeds)
  const lat = new Float64Array(runs)
  for (let i = 0; i < runs; i++) {
    if (gapMs > 0) await spinGap(gapMs)
    const t = performance.now()
    await session.run(feeds)
    lat[i] = performance.now() - t
  }
  lat.sort()
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), runs }
}

/** setTimeout cannot sleep 0.2 ms; yield to the event loop while the clock moves on. */
async function spinGap(ms) {
  const until = performance.now() + ms
  while (performance.now() < until) await new Promise((r) => setImmediate(r))
}

/** Back-to-back runs/s over `seconds` (samples/s = runs/s × batch). */
export async function runThroughput(session, feeds, { seconds = 3 } = {}) {
  for (let i = 0; i < 200; i++) await session.run(feeds)
  let runs = 0
  const start = performance.now()
  const end = start + seconds * 1000
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await session.run(feeds)
    runs += 50
  }
  return runs / ((performance.now() - start) / 1000)
}
