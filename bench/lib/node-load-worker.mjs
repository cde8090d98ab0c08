// Closed-loop HTTP load in its own process: `connections` clients, each sends its next request
// when the previous answer arrives. Prints one JSON line with the figures (latencies in ms).
import http from 'node:http'
import { percentile } from './load.mjs'

const o = JSON.parse(process.argv[2])
const url = new URL(o.url)
const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections })
const body = o.body ? Buffer.from(o.body) : undefined
const headers = { 'content-type': 'application/json', ...(o.headers ?? {}), ...(body && { 'content-length': body.length }) }
// Several bodies (load.mjs `bodies`): each client sends them in turn.
const bodies = o.bodies?.length ? o.bodies.map((b) => Buffer.from(b)) : undefined
const latencies = []
let errors = 0
let deadline = performance.now() + o.seconds * 1000
process.on('SIGINT', () => (deadline = 0))

function once(i) {
  const b = bodies ? bodies[i % bodies.length] : body
  const h = bodies ? { ...headers, 'content-length': b.length } : headers
  return new Promise((resolve) => {
    const start = performance.now()
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: o.method ?? (b ? 'POST' : 'GET'), headers: h },
      (res) => {
        res.on('data', () => {})
        res.on('end', () => {
          if (res.statusCode >= 300) errors++
          latencies.push(performance.now() - start)
          resolve()
        })
      },
    )
    req.on('error', () => {
      errors++
      resolve()
    })
    req.end(b)
  })
}

async function client(_, k) {
  for (let i = k; performance.now() < deadline; i++) await once(i)
}

const started = performance.now()
await Promise.all(Array.from({ length: o.connections }, client))
const seconds = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
agent.destroy()
console.log(
  JSON.stringify({
    tool: 'node',
    connections: o.connections,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    requests: latencies.length,
    errors,
  }),
)
