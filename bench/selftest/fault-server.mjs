// A server that answers a fixed cycle of successes and failures and counts what it sent: the
// ground truth the load generators' error counts are checked against.
import http from 'node:http'

/** Every success is held this long; every failure is answered at once. */
export const HOLD_MS = 20
/** One cycle: 3 successes, 7 failures (3xx too: only 2xx is a success); `drop` closes the connection unanswered. */
const CYCLE = [200, 404, 200, 302, 503, 'drop', 200, 404, 500, 'drop']
export const KINDS = [...new Set(CYCLE)].map(String)

/**
 * `/mixed` answers the cycle; `/ok` answers 200 at once; `/gone-after/<n>` answers 200 at once,
 * and on its n-th request stops listening and drops every connection (clients then fail to connect).
 */
export async function startFaultServer() {
  const sent = Object.fromEntries(KINDS.map((k) => [k, 0]))
  const sockets = new Set()
  let next = 0
  let served = 0
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const gone = /^\/gone-after\/(\d+)$/.exec(req.url)
      if (gone) {
        if (++served === Number(gone[1])) {
          server.close()
          for (const s of sockets) s.destroy()
        } else res.end('ok')
        return
      }
      if (req.url === '/ok') return void res.end('ok')
      const kind = CYCLE[next++ % CYCLE.length]
      sent[kind]++
      if (kind === 'drop') req.socket.destroy()
      else if (kind === 200) setTimeout(() => res.end('ok'), HOLD_MS)
      else {
        res.writeHead(kind, kind === 302 ? { location: '/ok' } : {})
        res.end('failure')
      }
    })
  })
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    sent,
    close() {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) =>
        server.listening ? server.close(() => resolve()) : resolve(),
      )
    },
  }
}
