// Load generation against a real server: wrk when installed (C, cheap on a shared 2-core box, µs
// percentiles), else a Node closed-loop generator in a child process.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export function hasWrk() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return true
  } catch (e) {
    // wrk --version exits 1 but prints; ENOENT means absent.
    return e.code !== 'ENOENT'
  }
}

/**
 * @param {{url: string, method?: string, body?: string, bodies?: string[], headers?: Record<string,string>,
 *          connections: number, seconds: number, tool?: 'wrk'|'node', until?: Promise<unknown>}} o
 *   `until`: stop early (SIGINT: both tools then report what they measured) when it settles.
 *   `bodies`: several request bodies, sent in turn (each connection of the Node generator, each
 *   thread of wrk, cycles through them); `body` is then ignored.
 * @returns {Promise<{tool: string, connections: number, rps: number, p50: number, p90: number,
 *          p99: number, requests: number, errors: number}>} latencies in ms
 */
export async function load(o) {
  const tool = o.tool ?? (hasWrk() ? 'wrk' : 'node')
  return tool === 'wrk' ? wrk(o) : nodeLoad(o)
}

function luaString(s) {
  return JSON.stringify(s) // a JSON string literal is a valid Lua string literal for our bodies
}

async function wrk(o) {
  const dir = mkdtempSync(join(tmpdir(), 'mg-wrk-'))
  const script = join(dir, 'req.lua')
  const headers = { 'content-type': 'application/json', ...(o.headers ?? {}) }
  writeFileSync(
    script,
    [
      `wrk.method = ${luaString(o.method ?? (o.body || o.bodies?.length ? 'POST' : 'GET'))}`,
      o.body && !o.bodies?.length ? `wrk.body = ${luaString(o.body)}` : '',
      ...(o.bodies?.length
        ? [
            `local bodies = {${o.bodies.map(luaString).join(',\n')}}`,
            'local next_body = 0',
            'function request() next_body = next_body % #bodies + 1 return wrk.format(nil, nil, nil, bodies[next_body]) end',
          ]
        : []),
      ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
      // Count non-2xx explicitly: wrk folds them into one summary line only.
      'local bad = 0',
      'function response(status, headers, body) if status >= 300 then bad = bad + 1 end end',
      'function done(summary, latency, requests) io.write(string.format("BAD %d\\n", bad)) end',
    ].join('\n'),
  )
  const threads = Math.min(2, o.connections)
  const args = ['-t', String(threads), '-c', String(o.connections), '-d', `${o.seconds}s`, '--latency', '-s', script, o.url]
  const out = await run('wrk', args, o.until)
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out)
    if (!m) throw new Error(`cannot read ${p}% from wrk output:\n${out}`)
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]]
  }
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const bad = Number(/^BAD (\d+)$/m.exec(out)?.[1] ?? 0)
  const errors = bad + (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0)
  return { tool: 'wrk', connections: o.connections, rps, p50: pct(50), p90: pct(90), p99: pct(99), requests, errors }
}

async function nodeLoad(o) {
  const out = await run(process.execPath, [fileURLToPath(new URL('./node-load-worker.mjs', import.meta.url)), JSON.stringify({ ...o, until: undefined })], o.until)
  return JSON.parse(out.trim().split('\n').at(-1))
}

function run(cmd, args, until) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    until?.finally(() => child.exitCode === null && child.kill('SIGINT'))
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}:\n${out}`))))
  })
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}
