import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** A request the receiver got: what modelgate sent, as bytes and as JSON. */
export interface ReceivedRequest {
  readonly body: string
  readonly event: any
  readonly headers: IncomingHttpHeaders
  /** Set once the sender closed the connection while the request went unanswered. */
  abandonedBySender: boolean
}

/** How the receiver answers a request (its event, and n: 0 for the first request): a status, or never. */
export type Answer = (event: any, n: number) => number | 'never'

export interface WebhookReceiver {
  readonly url: string
  /** Every request, in the order it arrived. */
  readonly requests: ReceivedRequest[]
  /** The requests answered 2xx: the deliveries. */
  readonly delivered: ReceivedRequest[]
  close(): Promise<void>
}

/** A real webhook receiver (node:http) on a free port, answering as `answer` says. */
export async function startWebhookReceiver(answer: Answer = () => 200): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = []
  const delivered: ReceivedRequest[] = []
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const received: ReceivedRequest = {
        body,
        event: JSON.parse(body),
        headers: req.headers,
        abandonedBySender: false,
      }
      const status = answer(received.event, requests.length)
      requests.push(received)
      if (status === 'never') {
        res.on('close', () => (received.abandonedBySender = true))
        return
      }
      if (status >= 200 && status < 300) delivered.push(received)
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`${status}\n`)
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    delivered,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** A URL nothing listens on: a port taken and released again. */
export async function refusedUrl(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}/hook`
}
