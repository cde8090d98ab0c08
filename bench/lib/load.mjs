// Load generation against a real server: wrk when installed (wrk.mjs), else a Node closed-loop
// generator in a child process (node-load-worker.mjs); gRPC ModelInfer load by its twin
// (grpc-load-worker.mjs). All count errors the same way (load-result.mjs), and a run with any error
// fails unless its caller expects errors.
import { fileURLToPath } from 'node:url'
import { describeFailures } from './load-result.mjs'
import { benchSettings } from './settings.mjs'
import { spawnUntil } from './spawn-until.mjs'
import { hasWrk, wrkLoad } from './wrk.mjs'

/** A load run answered with errors it did not expect: the figures would be of error answers. */
export class LoadErrorsFound extends Error {
  /** @param {import('./load-result.mjs').LoadResult} result */
  constructor(url, result) {
    super(
      `${url} (${result.tool}, ${result.connections} connections, ${result.seconds.toFixed(1)} s): ` +
        `${result.errors} errors (${describeFailures(result.failures)}), ${result.requests} successful answers`,
    )
    this.name = 'LoadErrorsFound'
    this.result = result
  }
}

/**
 * @param {{url: string, method?: string, body?: string | Uint8Array, bodies?: string[], headers?: Record<string,string>,
 *          connections: number, seconds: number, tool?: 'wrk'|'node', until?: Promise<unknown>,
 *          pauseMs?: number, expectErrors?: boolean}} o
 *   `until`: stop early (SIGINT: both tools then report what they measured) when it settles.
 *   `body` as bytes (a binary body): the Node generator only.
 *   `bodies`: several request bodies, sent in turn (each connection of the Node generator, each
 *   thread of wrk, cycles through them); `body` is then ignored.
 *   `pauseMs`: each connection waits this long after an answer before its next request: a light,
 *   steady load beside something else being measured, rather than as much as the server takes.
 *   `expectErrors`: return a result with errors instead of throwing LoadErrorsFound.
 *   The tool: `o.tool`, else BENCH_TOOL, else wrk when installed, else the Node generator.
 * @returns {Promise<import('./load-result.mjs').LoadResult>} latencies in ms; `requests` and `rps`
 *   count 2xx answers only, `errors` everything else (by kind in `failures`)
 */
export async function load(o) {
  const settings = benchSettings()
  const tool = o.tool ?? settings.tool ?? (hasWrk() ? 'wrk' : 'node')
  const url = settings.plantFault === '404' ? planted404(o.url) : o.url
  if (tool === 'wrk' && o.body instanceof Uint8Array)
    throw new Error('a binary body needs the Node generator (tool: node): wrk takes text bodies')
  const result = tool === 'wrk' ? await wrkLoad({ ...o, url }) : await nodeLoad({ ...o, url })
  if (result.errors > 0 && !o.expectErrors) throw new LoadErrorsFound(url, result)
  return result
}

/**
 * Closed-loop ModelInfer calls on `connections` gRPC channels of their own, for `seconds`.
 * @param {{target: string, request: {model_name: string, inputs: object[], raw_input_contents: Uint8Array[]},
 *          connections: number, seconds: number}} o  `target`: host:port of the gRPC listener
 * @returns {Promise<import('./load-result.mjs').LoadResult>} as load(); errors by gRPC status name
 */
export async function grpcLoad(o) {
  const worker = fileURLToPath(new URL('./grpc-load-worker.mjs', import.meta.url))
  const raw = o.request.raw_input_contents.map((b) => Buffer.from(b).toString('base64'))
  const out = await spawnUntil(process.execPath, [
    worker,
    JSON.stringify({ ...o, request: { ...o.request, raw_input_contents: raw } }),
  ])
  const result = JSON.parse(out.trim().split('\n').at(-1))
  if (result.errors > 0) throw new LoadErrorsFound(`grpc://${o.target}`, result)
  return result
}

/** BENCH_PLANT_FAULT=404: the same server, a path it does not serve; the bench must fail. */
function planted404(url) {
  const u = new URL(url)
  u.pathname = `${u.pathname.replace(/\/$/, '')}/planted-404`
  return u.href
}

async function nodeLoad(o) {
  const worker = fileURLToPath(new URL('./node-load-worker.mjs', import.meta.url))
  // Bytes travel through argv as base64.
  const body =
    o.body instanceof Uint8Array ? { bodyBase64: Buffer.from(o.body).toString('base64') } : {}
  const out = await spawnUntil(
    process.execPath,
    [worker, JSON.stringify({ ...o, ...body, until: undefined })],
    o.until,
  )
  return JSON.parse(out.trim().split('\n').at(-1))
}
