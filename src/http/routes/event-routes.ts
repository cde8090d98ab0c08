import type { ServerResponse } from 'node:http'
import type { Hono } from 'hono'
import { InvalidRequestError } from '../../errors.js'
import { adminAuth } from '../admin-auth.js'
import type { EventStreams } from '../event-streams.js'
import { route } from '../method-routes.js'

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  // no-transform: neither our compression nor a proxy's may buffer the stream.
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
}

export interface EventRoutesOptions {
  readonly eventStreams: EventStreams
  readonly adminToken: string | undefined
}

/** `GET /events`: lifecycle events as Server-Sent Events, an admin route like the history. */
export function registerEventRoutes(app: Hono, { eventStreams, adminToken }: EventRoutesOptions) {
  app.use('/events', adminAuth(adminToken))
  route(app, '/events', {
    GET: (c) => {
      // Hono answers HEAD with GET's headers and drops the body unread: open no stream for it.
      if (c.req.method === 'HEAD') return new Response(null, { headers: SSE_HEADERS })
      // The node-server listener hands its response over: a client too slow to read is cut there.
      const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing
      const body = eventStreams.open({
        model: c.req.query('model'),
        lastEventId: lastEventId(c.req.header('last-event-id')),
        disconnect: outgoing && (() => outgoing.destroy()),
      })
      return new Response(body, { headers: SSE_HEADERS })
    },
  })
}

function lastEventId(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '') return undefined
  const id = Number(header)
  if (!Number.isSafeInteger(id) || id < 0)
    throw new InvalidRequestError(
      `Last-Event-ID must be an event id (a whole number), got '${header}'`,
    )
  return id
}
