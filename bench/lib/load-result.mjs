// What one load run measured, in one shape whichever generator ran it, and how its errors read.
// Only a 2xx answer is a success: req/s, the request count and (for the Node generator) the
// latencies are successful answers only. Everything else is an error, counted by kind: by HTTP
// status (3xx included), socket errors (refused, reset or closed connections, unparsable answers)
// and timeouts (an answer slower than TIMEOUT_SECONDS). Over gRPC, a status other than OK is an
// error, by its name.
// Socket errors are one count: wrk's split into connect / read / write depends on when its
// non-blocking connect reports a refusal (at the first write), so no other tool could match it.

/** wrk's default `--timeout`, passed to it explicitly and applied by the Node generator too. */
export const TIMEOUT_SECONDS = 2

/**
 * @typedef {{status: Record<string, number>, socket: number, timeout: number}} Failures
 * @typedef {{tool: 'wrk' | 'node', connections: number, seconds: number, rps: number, p50: number, p90: number,
 *   p99: number, max: number, requests: number, errors: number, failures: Failures}} LoadResult
 */

/**
 * @param {{tool: 'wrk' | 'node', connections: number, seconds: number, ok: number,
 *   percentiles: {p50: number, p90: number, p99: number, max: number}, failures: Failures}} m
 * @returns {LoadResult}
 */
export function loadResult({ tool, connections, seconds, ok, percentiles, failures }) {
  const errors =
    Object.values(failures.status).reduce((a, b) => a + b, 0) + failures.socket + failures.timeout
  // No successful answer, no latency: NaN (null in the JSON), never the latency of error answers.
  const { p50, p90, p99, max } = ok > 0 ? percentiles : { p50: NaN, p90: NaN, p99: NaN, max: NaN }
  return {
    tool,
    connections,
    seconds,
    rps: ok / seconds,
    p50,
    p90,
    p99,
    max,
    requests: ok,
    errors,
    failures,
  }
}

/**
 * A Node generator's result from its successful answers' latencies (ms, any order) and its
 * failures.
 * @returns {LoadResult}
 */
export function nodeLoadResult({ connections, seconds, latencies, failures }) {
  const sorted = [...latencies].sort((a, b) => a - b)
  const percentiles = {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  }
  return loadResult({
    tool: 'node',
    connections,
    seconds,
    ok: sorted.length,
    percentiles,
    failures,
  })
}

/** "HTTP 404 × 19925, socket errors × 3": the non-zero kinds only. */
export function describeFailures(failures) {
  // A gRPC status comes by name (grpc-load-worker.mjs): `gRPC UNAVAILABLE × 3`.
  const parts = Object.entries(failures.status).map(([status, n]) =>
    /^\d+$/.test(status) ? `HTTP ${status} × ${n}` : `gRPC ${status} × ${n}`,
  )
  if (failures.socket > 0) parts.push(`socket errors × ${failures.socket}`)
  if (failures.timeout > 0) parts.push(`slower than ${TIMEOUT_SECONDS} s × ${failures.timeout}`)
  return parts.join(', ') || 'none'
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}
