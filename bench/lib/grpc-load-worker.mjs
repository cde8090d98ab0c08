// node-load-worker.mjs's twin for gRPC: closed-loop ModelInfer load in its own process,
// `connections` clients, each on a channel (one HTTP/2 connection) of its own, each sending its next
// call when the previous answer arrives. Prints one JSON line (load-result.mjs). A call that ends
// with any status but OK is an error, counted under its status name; an answer slower than the
// timeout is a timeout (its deadline), as for HTTP. Only OK answers make the req/s and the latencies.
import { status as Status } from '@grpc/grpc-js'
import { grpcChannel, modelInfer, untilConnected } from './grpc-client.mjs'
import { nodeLoadResult, TIMEOUT_SECONDS } from './load-result.mjs'

const o = JSON.parse(process.argv[2])
// Raw contents travel through argv as base64.
const request = { ...o.request, raw_input_contents: o.request.raw_input_contents.map(fromBase64) }
const channels = Array.from({ length: o.connections }, () => grpcChannel(o.target))
const latencies = []
const failures = { status: {}, socket: 0, timeout: 0 }
let deadline = performance.now() + o.seconds * 1000
process.on('SIGINT', () => (deadline = 0))

function fromBase64(s) {
  return Buffer.from(s, 'base64')
}

/** The status's name (`UNAVAILABLE`), so that describeFailures never reads it as HTTP's. */
function failed(code) {
  const name = Status[code] ?? String(code)
  failures.status[name] = (failures.status[name] ?? 0) + 1
}

async function once(channel) {
  const start = performance.now()
  try {
    await modelInfer(channel, request, { deadline: Date.now() + TIMEOUT_SECONDS * 1000 })
  } catch (e) {
    if (e.code === Status.DEADLINE_EXCEEDED) failures.timeout++
    else failed(e.code)
    return
  }
  const ms = performance.now() - start
  // As wrk: an answer slower than the timeout is a timeout error.
  if (ms >= TIMEOUT_SECONDS * 1000) failures.timeout++
  else latencies.push(ms)
}

async function client(channel) {
  while (performance.now() < deadline) await once(channel)
}

// As wrk: a server that refuses the first connection is not a load result, it is a failed run.
try {
  const connectBy = new Date(Date.now() + 5000)
  await Promise.all(channels.map((c) => untilConnected(c, connectBy)))
} catch (e) {
  console.error(`unable to connect to ${o.target}: ${e.message}`)
  process.exit(1)
}

const started = performance.now()
await Promise.all(channels.map(client))
const seconds = (performance.now() - started) / 1000
for (const c of channels) c.close()
console.log(
  JSON.stringify(nodeLoadResult({ connections: o.connections, seconds, latencies, failures })),
)
