import { createHash } from 'node:crypto'
import { open, utimes } from 'node:fs/promises'
import { setTimeout as pace } from 'node:timers/promises'
import { modelDetail, predict, versionView, type Prediction } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { serve } from '../support/servers.js'
import type { TestServer } from '../support/test-server.js'

/**
 * Helpers for the arrival tests: every version of `adder` is addConstModel(c), so the constant a
 * response adds says which bytes answered it, and X-Model-Version which version number.
 */

export const MODEL = 'adder'

/**
 * The usual start: adder v1 = x + 1, on disk for an hour already, so it serves at start whatever
 * stability window a test sets (a file written just now may have to wait for the window).
 */
async function withV1(modelsDir: string): Promise<void> {
  const file = await writeVersion(modelsDir, MODEL, 1, addConstModel(1))
  const anHourAgo = new Date(Date.now() - 3_600_000)
  await utimes(file, anHourAgo, anHourAgo)
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * A slow copy in place: `chunks` writes with `pauseMs` between them, as `cp` over a slow disk or a
 * network does. The pauses are the copy's pace, not a synchronization: each is shorter than the
 * stability window, so the file never looks finished before it is. Resolves when the last byte is
 * written (and the file closed), with that moment.
 */
export async function slowCopy(
  path: string,
  bytes: Uint8Array,
  o: { chunks: number; pauseMs: number; onChunk?: (written: number) => void | Promise<void> },
): Promise<number> {
  const file = await open(path, 'w')
  try {
    const size = Math.ceil(bytes.length / o.chunks)
    for (let at = 0; at < bytes.length; at += size) {
      if (at > 0) await pace(o.pauseMs)
      const end = Math.min(bytes.length, at + size)
      await file.write(bytes, at, end - at, at)
      await o.onChunk?.(end)
    }
  } finally {
    await file.close()
  }
  return Date.now()
}

export interface Observation {
  readonly at: number
  readonly answer: Prediction
  /** The watched version as GET /models/{name} showed it (undefined: not listed). */
  readonly view: any
}

/**
 * Asks the server continuously (a prediction and the model's detail) until stopped, so a test can
 * say what anyone could have seen during an arrival, not just at its end.
 */
export function observe(
  url: string,
  watched: number,
  model = MODEL,
): { stop(): Promise<Observation[]> } {
  const seen: Observation[] = []
  let stopped = false
  const loop = (async () => {
    try {
      while (!stopped) {
        const answer = await predict(url, model)
        const view = versionView(await modelDetail(url, model), watched)
        seen.push({ at: Date.now(), answer, view })
      }
    } catch (e) {
      // A failed request is an observation too (and ends the loop: the server may be closing).
      seen.push({
        at: Date.now(),
        answer: { status: 0, version: null, constant: null },
        view: { error: String(e) },
      })
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
      return seen
    },
  }
}

/** A server over a fresh directory holding adder v1 = x + 1, closed when the test finishes. */
export function serveWithV1(options: Record<string, string> = {}): Promise<TestServer> {
  return serve(withV1, options)
}
