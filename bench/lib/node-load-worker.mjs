// The load generator when wrk is absent: closed-loop HTTP load in its own process, `connections`
// clients, each sends its next request when the previous answer arrives. Prints one JSON line
// (load-result.mjs). Errors are counted as wrk counts them, and only successful answers make the
// req/s and the latencies.
import http from 'node:http'
import net from 'node:net'
import { nodeLoadResult, TIMEOUT_SECONDS } from './load-result.mjs'

const o = JSON.parse(process.argv[2])
const url = new URL(o.url)
const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections })
// A binary body comes as base64 (load.mjs).
const body = o.bodyBase64
  ? Buffer.from(o.bodyBase64, 'base64')
  : o.body
    ? Buffer.from(o.body)
    : undefined
const headers = {
  'content-type': 'application/json',
  ...(o.headers ?? {}),
  ...(body && { 'content-length': body.length }),
}
// Several bodies (load.mjs `bodies`): each client sends them in turn.
const bodies = o.bodies?.length ? o.bodies.map((b) => Buffer.from(b)) : undefined
const latencies = []
const failures = { status: {}, socket: 0, timeout: 0 }
let deadline = performance.now() + o.seconds * 1000
process.on('SIGINT', () => (deadline = 0))

// A refused, reset or early-closed connection, or an answer that does not parse.
function socketError() {
  failures.socket++
}

function answered(status, ms) {
  const ok = status >= 200 && status <= 299
  if (!ok) failures.status[status] = (failures.status[status] ?? 0) + 1
  // As wrk: an answer slower than the timeout is a timeout error (whatever its status).
  if (ms >= TIMEOUT_SECONDS * 1000) failures.timeout++
  else if (ok) latencies.push(ms)
}

function once(i) {
  const b = bodies ? bodies[i % bodies.length] : body
  const h = bodies ? { ...headers, 'content-length': b.length } : headers
  return new Promise((resolve) => {
    let settled = false
    const settle = (count) => {
      if (settled) return
      settled = true
      count()
      resolve()
    }
    const start = performance.now()
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: o.method ?? (b ? 'POST' : 'GET'),
        headers: h,
      },
      (res) => {
        res.on('data', () => {})
        res.on('end', () => settle(() => answered(res.statusCode, performance.now() - start)))
        res.on('error', () => settle(socketError)) // the connection dropped mid-answer
      },
    )
    req.on('error', () => settle(socketError))
    req.end(b)
  })
}

async function client(_, k) {
  for (let i = k; performance.now() < deadline; i++) {
    await once(i)
    if (o.pauseMs) await new Promise((resolve) => setTimeout(resolve, o.pauseMs))
  }
}

// As wrk: a server that refuses the first connection is not a load result, it is a failed run.
await new Promise((resolve) => {
  const probe = net.connect(
    { host: url.hostname, port: Number(url.port || 80) },
    () => (probe.destroy(), resolve()),
  )
  probe.on('error', (err) => {
    console.error(`unable to connect to ${url.host} ${err.code}`)
    process.exit(1)
  })
})

const started = performance.now()
await Promise.all(Array.from({ length: o.connections }, client))
const seconds = (performance.now() - started) / 1000
agent.destroy()
console.log(
  JSON.stringify(nodeLoadResult({ connections: o.connections, seconds, latencies, failures })),
)
