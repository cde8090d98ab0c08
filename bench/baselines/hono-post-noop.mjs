// A reference point, not a target: a bare Hono route on @hono/node-server, the stack modelgate is
// built on, answering the same POST body with a constant JSON (the body read, not parsed).
// Usage: node hono-post-noop.mjs <port>
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import http from 'node:http'

const app = new Hono()
app.post('/noop', (c) => {
  const incoming = c.env.incoming
  return new Promise((resolve) => {
    incoming.on('data', () => {})
    incoming.on('end', () => resolve(c.json({ ok: true })))
  })
})
http
  .createServer(getRequestListener(app.fetch))
  .listen(Number(process.argv[2]), '127.0.0.1', () => console.log('ready'))
