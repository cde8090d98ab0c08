import { connect, type Socket } from 'node:net'

/** What came back on a raw connection: the first response (if any) and how the connection ended. */
export interface RawResponse {
  readonly status: number
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export interface RawConnection {
  readonly socket: Socket
  /** The first response, parsed as soon as it is complete; undefined if the connection closed first. */
  readonly response: Promise<RawResponse | undefined>
  /** Settles when the server (or the test) has closed the connection. */
  readonly closed: Promise<void>
  /** Sends more bytes (ignored once the connection is gone). */
  send(bytes: string | Buffer): void
  /** Every byte received so far. */
  received(): Buffer
}

/**
 * A connection that writes exactly what the test says, when it says: a body that stops half-way,
 * headers that never end, a Content-Length that is a lie. fetch and http.request cannot. Write
 * errors are ignored: the server closing on a client that is still sending is often the point.
 */
export function rawConnection(url: string, first: string | Buffer = ''): RawConnection {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => {})
  let received = Buffer.alloc(0)
  const response = new Promise<RawResponse | undefined>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      const parsed = parseResponse(received)
      if (parsed) resolve(parsed)
    })
    socket.on('close', () => resolve(parseResponse(received, true)))
  })
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  const send = (bytes: string | Buffer) => {
    if (!socket.destroyed) socket.write(bytes)
  }
  if (first.length > 0) send(first)
  return { socket, response, closed, send, received: () => received }
}

/** A GET request, complete. */
export function getHead(path: string): string {
  return `GET ${path} HTTP/1.1\r\nhost: localhost\r\n\r\n`
}

/** The request head of a POST; `headers` as written (Content-Length is the caller's to give). */
export function postHead(
  path: string,
  headers: Readonly<Record<string, string | number>> = {},
): string {
  const lines = Object.entries({
    host: 'localhost',
    'content-type': 'application/json',
    ...headers,
  }).map(([k, v]) => `${k}: ${v}\r\n`)
  return `POST ${path} HTTP/1.1\r\n${lines.join('')}\r\n`
}

/** The status line and headers of the response starting at `at`; undefined until they are complete. */
function parseHead(
  bytes: Buffer,
  at: number,
): { status: number; headers: Record<string, string>; bodyAt: number } | undefined {
  const end = bytes.indexOf('\r\n\r\n', at)
  if (end < 0) return undefined
  const [statusLine, ...lines] = bytes.subarray(at, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, bodyAt: end + 4 }
}

function parseResponse(bytes: Buffer, atClose = false): RawResponse | undefined {
  const head = parseHead(bytes, 0)
  if (!head) return undefined
  const body = bytes.subarray(head.bodyAt)
  const length =
    head.headers['content-length'] === undefined
      ? undefined
      : Number(head.headers['content-length'])
  if (length !== undefined ? body.length < length : !atClose) return undefined
  return {
    status: head.status,
    headers: head.headers,
    body: body.subarray(0, length).toString('utf8'),
  }
}

/**
 * Every complete response in the bytes of a connection, in order: interim ones (1xx, no body) and
 * those to requests pipelined one behind the other (Content-Length or chunked bodies).
 */
export function parseResponses(bytes: Buffer): RawResponse[] {
  const out: RawResponse[] = []
  for (let head = parseHead(bytes, 0); head; ) {
    let at = head.bodyAt
    let body: Buffer = Buffer.alloc(0)
    if (head.status >= 200 && head.headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', at)
        if (lineEnd < 0) return out
        const size = parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16)
        at = lineEnd + 2
        if (size === 0) break
        body = Buffer.concat([body, bytes.subarray(at, at + size)])
        at += size + 2
      }
      at += 2
    } else if (head.status >= 200) {
      const length = Number(head.headers['content-length'] ?? 0)
      if (bytes.length < at + length) return out
      body = bytes.subarray(at, at + length)
      at += length
    }
    out.push({ status: head.status, headers: head.headers, body: body.toString('utf8') })
    head = parseHead(bytes, at)
  }
  return out
}
