// The server's own figures, read from GET /metrics (Prometheus text format).

/** GET /metrics as text; an error answer is thrown, never read as "no samples". */
async function scrape(url) {
  const r = await fetch(`${url}/metrics`)
  const text = await r.text()
  if (!r.ok) throw new Error(`GET /metrics answered ${r.status}: ${text.slice(0, 200)}`)
  return text
}

/**
 * The sum of the samples of `name` whose labels include `labels` (label order does not matter);
 * undefined when there is none.
 */
function sampleSum(text, name, labels = {}) {
  let sum
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const space = line.lastIndexOf(' ')
    const own = Object.fromEntries(
      [...line.slice(name.length, space).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    )
    if (Object.entries(labels).every(([k, v]) => own[k] === v))
      sum = (sum ?? 0) + Number(line.slice(space + 1))
  }
  return sum
}

/**
 * The event loop's delay since the previous scrape, in ms: `modelgate_event_loop_lag_seconds`
 * (max and p99 of perf_hooks.monitorEventLoopDelay, reset by every scrape). So one call right
 * before something happens resets it, and one call after reads what that something cost.
 */
export async function eventLoopLag(url) {
  const text = await scrape(url)
  const stat = (s) => {
    const v = sampleSum(text, 'modelgate_event_loop_lag_seconds', { stat: s })
    if (v === undefined)
      throw new Error(
        `GET /metrics has no modelgate_event_loop_lag_seconds{stat="${s}"}: a server without inference workers?`,
      )
    return v * 1000
  }
  return { maxMs: stat('max'), p99Ms: stat('p99') }
}

/** Resolves once the server has answered `count` more requests for `model` than when called. */
export async function untilRequests(url, model, count, { timeoutMs = 30_000 } = {}) {
  const served = async () =>
    sampleSum(await scrape(url), 'modelgate_requests_total', { model }) ?? 0
  const from = await served()
  const deadline = performance.now() + timeoutMs
  while ((await served()) < from + count) {
    if (performance.now() > deadline)
      throw new Error(`${model}: fewer than ${count} requests answered in ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Lines the model's payload log has written so far (`modelgate_payload_log_lines_total`). */
export async function payloadLinesWritten(url, model) {
  return (
    sampleSum(await scrape(url), 'modelgate_payload_log_lines_total', {
      model,
      result: 'written',
    }) ?? 0
  )
}
