import { IncomingMessage } from 'node:http'
import type { BodyBudget } from './body-budget.js'
import type { StallWatch } from './stall-watch.js'

/** What one server bounds every request body it buffers with, beyond --max-body-size. */
export interface BodyGuards {
  /** The bytes buffered across bodies (--max-inflight-body-size). */
  readonly budget: BodyBudget
  /** Bodies that stop arriving (--body-timeout). */
  readonly stalls: StallWatch
  /** Retry-After, in seconds, for a body refused because the budget is spent. */
  readonly retryAfterSeconds: number
}

const GUARDS = Symbol('modelgate.bodyGuards')

/**
 * Node's request class for one server (createServer's `IncomingMessage` option), carrying that
 * server's guards to readIncoming. Every route reads its body through readIncoming and knows nothing
 * of the server; the request is the one thing they all hand it. A prototype getter: nothing is
 * added per request, and two servers in one process keep their own guards.
 */
export function guardedRequestClass(guards: BodyGuards): typeof IncomingMessage {
  return class GuardedRequest extends IncomingMessage {
    get [GUARDS](): BodyGuards {
      return guards
    }
  }
}

/** The guards of the server that received `incoming`; undefined for a request from elsewhere. */
export function guardsOf(incoming: IncomingMessage): BodyGuards | undefined {
  return (incoming as { [GUARDS]?: BodyGuards })[GUARDS]
}
