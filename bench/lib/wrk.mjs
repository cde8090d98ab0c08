// The load generator when wrk is installed (C, cheap on a shared 2-core box, µs percentiles).
// Everything is read from wrk's own figures in the script's done(): the summary (completed
// requests, duration, socket errors, timeouts) and the latency histogram. The script counts
// non-2xx statuses itself, because wrk's own status counter only covers 4xx and 5xx.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadResult, TIMEOUT_SECONDS } from './load-result.mjs'
import { spawnUntil } from './spawn-until.mjs'

const MARK = 'MODELGATE_BENCH '

export function hasWrk() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return true
  } catch (e) {
    // wrk --version exits 1 but prints; ENOENT means absent.
    return e.code !== 'ENOENT'
  }
}

function luaString(s) {
  return JSON.stringify(s) // a JSON string literal is a valid Lua string literal for our bodies
}

/** The request setup (method, body or bodies in turn, headers) and the error accounting. */
function script(o) {
  const headers = { 'content-type': 'application/json', ...(o.headers ?? {}) }
  return [
    `wrk.method = ${luaString(o.method ?? (o.body || o.bodies?.length ? 'POST' : 'GET'))}`,
    o.body && !o.bodies?.length ? `wrk.body = ${luaString(o.body)}` : '',
    ...(o.bodies?.length
      ? [
          `local bodies = {${o.bodies.map(luaString).join(',\n')}}`,
          'local next_body = 0',
          'function request() next_body = next_body % #bodies + 1 return wrk.format(nil, nil, nil, bodies[next_body]) end',
        ]
      : []),
    o.pauseMs ? `function delay() return ${o.pauseMs} end` : '', // wrk waits this many ms before each request
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
    // Each wrk thread runs this script in a Lua state of its own, so `failed` is per thread, and
    // done() runs in yet another (the main) state: it merges the threads' tables, which setup()
    // collected there. `failed` is a global because thread:get() reads globals only.
    'failed = {}',
    'function response(status, headers, body)',
    '  if status < 200 or status > 299 then failed[status] = (failed[status] or 0) + 1 end',
    'end',
    'local threads = {}',
    'function setup(thread) threads[#threads + 1] = thread end',
    'function done(summary, latency, requests)',
    '  local merged = {}',
    '  for _, thread in ipairs(threads) do',
    '    for status, n in pairs(thread:get("failed")) do merged[status] = (merged[status] or 0) + n end',
    '  end',
    '  local statuses = {}',
    '  for status, n in pairs(merged) do statuses[#statuses + 1] = string.format(\'"%d":%d\', status, n) end',
    '  local e = summary.errors',
    `  io.write(string.format('${MARK}{"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"wrkStatus":%d,' ..`,
    `    '"p50Us":%.3f,"p90Us":%.3f,"p99Us":%.3f,"maxUs":%.3f,"status":{%s}}\\n', summary.requests, summary.duration, e.connect, e.read,`,
    '    e.write, e.timeout, e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,',
    '    table.concat(statuses, ",")))',
    'end',
  ].join('\n')
}

/** @returns {Promise<import('./load-result.mjs').LoadResult>} */
export async function wrkLoad(o) {
  const dir = mkdtempSync(join(tmpdir(), 'mg-wrk-'))
  try {
    const file = join(dir, 'req.lua')
    writeFileSync(file, script(o))
    const threads = Math.min(2, o.connections)
    const args = [
      '-t',
      String(threads),
      '-c',
      String(o.connections),
      '-d',
      `${o.seconds}s`,
      '--timeout',
      `${TIMEOUT_SECONDS}s`,
      '-s',
      file,
      o.url,
    ]
    const out = await spawnUntil('wrk', args, o.until)
    const line = out.split('\n').find((l) => l.startsWith(MARK))
    if (!line) throw new Error(`no figures from wrk's done():\n${out}`)
    const m = JSON.parse(line.slice(MARK.length))
    // wrk's own counter (4xx and 5xx) and the script's must agree: if they did not, the script
    // would be missing answers, which is how errors went uncounted before.
    const ours = Object.entries(m.status).reduce(
      (a, [status, n]) => a + (Number(status) > 399 ? n : 0),
      0,
    )
    if (ours !== m.wrkStatus)
      throw new Error(`wrk counted ${m.wrkStatus} answers ≥ 400, the script ${ours}:\n${out}`)
    const failedAnswers = Object.values(m.status).reduce((a, b) => a + b, 0)
    return loadResult({
      tool: 'wrk',
      connections: o.connections,
      seconds: m.durationUs / 1e6,
      // wrk counts a late answer among the completed requests and as a timeout: not a success
      // (a late error answer is taken off twice; that run fails anyway).
      ok: Math.max(0, m.requests - failedAnswers - m.timeout),
      // wrk's histogram holds every answer's latency, errors included: a run with errors fails
      // unless it expects them, so the figures that get reported are of successful answers.
      percentiles: {
        p50: m.p50Us / 1000,
        p90: m.p90Us / 1000,
        p99: m.p99Us / 1000,
        max: m.maxUs / 1000,
      },
      failures: { status: m.status, socket: m.connect + m.read + m.write, timeout: m.timeout },
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
