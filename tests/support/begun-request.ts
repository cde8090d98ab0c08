import http from 'node:http'

export interface BegunRequest {
  /** Sends the body: the request can then be answered. */
  send(): void
  /** The answer's status, or the error's code. */
  readonly done: Promise<number | string>
}

/**
 * A POST /predict of `body` the server has begun (its listener ran: it answered 100 Continue) whose
 * body is sent only when `send()` is called: in flight for as long as the test wants. `agent`: a
 * fresh one (or `false`, a connection of its own) keeps it off another request's connection.
 */
export function begunPredict(
  url: string,
  body: string,
  agent: http.Agent | false,
): Promise<BegunRequest> {
  return new Promise((ready, fail) => {
    let resolveDone!: (v: number | string) => void
    const done = new Promise<number | string>((r) => (resolveDone = r))
    const req = http.request(
      `${url}/predict`,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          expect: '100-continue',
        },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolveDone(res.statusCode!))
      },
    )
    req.on('continue', () => ready({ send: () => req.end(body), done }))
    req.on('error', (e: NodeJS.ErrnoException) => {
      resolveDone(e.code ?? e.message)
      fail(e)
    })
    req.flushHeaders()
  })
}
