// npm run bench:selftest: the bench's error accounting, checked against servers that fail on
// purpose. For each load generator (wrk when installed, and the Node one):
//   - every failure a fault server sent is counted, by kind (non-2xx status, 3xx included;
//     dropped connection = socket error), and successes alone make the request count;
//   - refused connections count as socket errors;
//   - a run with errors throws unless it expects them, and a clean run passes;
//   - end to end: `npm run bench -- predict-example` with BENCH_PLANT_FAULT=404 exits non-zero and
//     prints the error count, and passes without it (BENCH_SECONDS=1, results in a temp dir).
// Exits 1 when a check fails.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { load, LoadErrorsFound } from '../lib/load.mjs'
import { table } from '../lib/report.mjs'
import { hasWrk } from '../lib/wrk.mjs'
import { HOLD_MS, KINDS, startFaultServer } from './fault-server.mjs'

const RUN = fileURLToPath(new URL('../run.mjs', import.meta.url))
const CONNECTIONS = 4
const SECONDS = 1

const checks = []
function check(tool, what, ok, detail = '') {
  checks.push({ tool, check: what, ok: ok ? 'ok' : 'FAILED', detail })
  console.log(`${ok ? 'ok    ' : 'FAILED'} ${tool}: ${what}${detail ? ` (${detail})` : ''}`)
}

/** What the generator counted for one kind of the fault server's cycle. */
function counted(r, kind) {
  if (kind === '200') return r.requests
  if (kind === 'drop') return r.failures?.socket ?? 0
  return r.failures?.status?.[kind] ?? 0
}

async function withServer(f) {
  const server = await startFaultServer()
  try {
    return await f(server)
  } finally {
    await server.close()
  }
}

async function countsEveryFailure(tool) {
  await withServer(async (server) => {
    const r = await load({
      url: `${server.url}/mixed`,
      connections: CONNECTIONS,
      seconds: SECONDS,
      tool,
      expectErrors: true,
    })
    const rows = KINDS.map((kind) => ({
      kind,
      'server sent': server.sent[kind],
      [`${tool} counted`]: counted(r, kind),
    }))
    console.log(table(rows))
    // Answers in flight when the run stopped were sent but never read: at most one per connection.
    const missed = rows.map((row) => row['server sent'] - row[`${tool} counted`])
    const all = rows.every((row) => row['server sent'] > 0)
    check(
      tool,
      'the fault server sent every kind',
      all,
      rows.map((row) => `${row.kind} ${row['server sent']}`).join(', '),
    )
    check(
      tool,
      `every kind counted, short by at most ${CONNECTIONS} answers in flight at the stop`,
      missed.every((m) => m >= 0) && missed.reduce((a, b) => a + b, 0) <= CONNECTIONS,
      `short by ${missed.join(', ')}`,
    )
    const failures = KINDS.filter((k) => k !== '200').reduce((a, k) => a + counted(r, k), 0)
    check(
      tool,
      'errors = the failures counted, nothing else',
      r.errors === failures,
      `errors ${r.errors}, failures ${failures}`,
    )
    check(
      tool,
      'req/s counts successes only',
      Math.abs(r.rps * r.seconds - r.requests) < 1e-6 * Math.max(1, r.requests),
      `${r.rps} req/s × ${r.seconds} s vs ${r.requests}`,
    )
    // Successes are held HOLD_MS, failures answered at once: were failures among the latencies,
    // the median (70% failures) would be below HOLD_MS. wrk's histogram holds every answer, so
    // only the Node generator can keep them out (a run with errors fails either way).
    if (tool === 'node')
      check(
        tool,
        `latency of successes only: p50 ≥ ${HOLD_MS} ms`,
        r.p50 >= HOLD_MS,
        `p50 ${r.p50} ms`,
      )
  })
}

async function countsRefusedConnections(tool) {
  await withServer(async (server) => {
    const r = await load({
      url: `${server.url}/gone-after/50`,
      connections: CONNECTIONS,
      seconds: SECONDS,
      tool,
      expectErrors: true,
    })
    check(
      tool,
      'a server gone mid-run: refused connections counted',
      (r.failures?.socket ?? 0) > 0 && r.errors >= r.failures.socket,
      JSON.stringify(r.failures),
    )
  })
}

async function throwsUnlessExpected(tool) {
  await withServer(async (server) => {
    const clean = await load({
      url: `${server.url}/ok`,
      connections: CONNECTIONS,
      seconds: SECONDS,
      tool,
    })
    check(
      tool,
      'a clean run passes',
      clean.errors === 0 && clean.requests > 0,
      `${clean.requests} answers, ${clean.errors} errors`,
    )
    try {
      const r = await load({
        url: `${server.url}/mixed`,
        connections: CONNECTIONS,
        seconds: SECONDS,
        tool,
      })
      check(tool, 'a run with errors throws', false, `returned ${r.errors} errors`)
    } catch (e) {
      const ok =
        e instanceof LoadErrorsFound &&
        e.result.errors > 0 &&
        e.message.includes(`${e.result.errors} errors`)
      check(tool, 'a run with errors throws, with the error count', ok, e.message)
    }
  })
}

function bench(tool, env) {
  const results = mkdtempSync(join(tmpdir(), 'mg-bench-selftest-'))
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN, 'predict-example'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        BENCH_TOOL: tool,
        BENCH_SECONDS: '1',
        BENCH_RESULTS_DIR: results,
        BENCH_PLANT_FAULT: '',
        ...env,
      },
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('close', (code) => {
      const wrote = existsSync(join(results, 'predict-example.md'))
      rmSync(results, { recursive: true, force: true })
      resolve({ code, out, wrote })
    })
  })
}

async function endToEnd(tool) {
  const planted = await bench(tool, { BENCH_PLANT_FAULT: '404' })
  const count = /(\d+) errors \(HTTP 404 × \d+\)/.exec(planted.out)
  check(
    tool,
    'npm run bench with BENCH_PLANT_FAULT=404 fails and prints the count',
    planted.code === 1 && count && Number(count[1]) > 0 && !planted.wrote,
    `exit ${planted.code}: ${count?.[0] ?? planted.out.slice(-300)}`,
  )
  const clean = await bench(tool, {})
  check(
    tool,
    'npm run bench without it passes',
    clean.code === 0 && clean.wrote,
    `exit ${clean.code}${clean.code ? `: ${clean.out.slice(-300)}` : ''}`,
  )
}

const tools = hasWrk() ? ['wrk', 'node'] : ['node']
if (!tools.includes('wrk'))
  console.log('wrk is not installed: only the Node generator is checked (apt-get install wrk)')
for (const tool of tools) {
  console.log(`\n=== ${tool} ===`)
  for (const step of [
    countsEveryFailure,
    countsRefusedConnections,
    throwsUnlessExpected,
    endToEnd,
  ]) {
    try {
      await step(tool)
    } catch (e) {
      check(tool, step.name, false, e.stack)
    }
  }
}

const failed = checks.filter((c) => c.ok !== 'ok')
console.log(`\n${table(checks.map(({ detail, ...c }) => c))}\n`)
console.log(
  failed.length
    ? `bench selftest FAILED: ${failed.length} of ${checks.length} checks`
    : `bench selftest passed: ${checks.length} checks`,
)
process.exitCode = failed.length ? 1 : 0
