import type { EventBus, Published } from '../events/event-bus.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'

/**
 * `GET /events`: lifecycle events as Server-Sent Events, one stream per client. A client that
 * does not read must cost neither memory without bound nor the other clients anything: each
 * stream buffers what its socket has not taken, and one that stays behind too long, or too far,
 * is disconnected (it reconnects with Last-Event-ID and is replayed what it missed).
 */

export interface EventStreamsOptions {
  readonly bus: EventBus
  readonly metrics: ServerMetrics
  /** A comment line this often, so proxies and clients see the connection is alive. */
  readonly heartbeatMs?: number
  /** A stream whose buffer has stayed full this long is disconnected. */
  readonly stallMs?: number
  /** A stream with this many bytes its client has not taken is disconnected at once. */
  readonly maxBufferedBytes?: number
  readonly now?: () => number
}

export interface StreamRequest {
  /** Only this model's events. */
  readonly model?: string | undefined
  /** The client's Last-Event-ID: the kept events after it are sent first. */
  readonly lastEventId?: number | undefined
  /** Ends the client's connection (the socket); without it, the stream is errored. */
  readonly disconnect?: (() => void) | undefined
}

const HEARTBEAT_MS = 15_000
const STALL_MS = 30_000
const MAX_BUFFERED_BYTES = 4 * 2 ** 20
/** What a stream holds before it counts as behind: a few events' worth. */
const HIGH_WATER_BYTES = 64 * 1024

interface Stream {
  readonly controller: ReadableStreamDefaultController<Uint8Array>
  readonly disconnect: () => void
  readonly stopListening: () => void
  /** Since when its buffer has been full; undefined while the client keeps up. */
  behindSince: number | undefined
  /** The replay's bytes, allowed beyond the byte bound: a client that asks for it is not cut for it. */
  replayBytes: number
  ended: boolean
}

const encoder = new TextEncoder()

/** One event, as the SSE format frames it: the browser's EventSource keeps `id` for reconnecting. */
function sseFrame({ event, json }: Published): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${json}\n\n`
}

export class EventStreams {
  readonly #o: Required<Omit<EventStreamsOptions, 'bus' | 'metrics'>> & EventStreamsOptions
  readonly #streams = new Set<Stream>()
  #heartbeat: NodeJS.Timeout | undefined
  #closed = false

  constructor(o: EventStreamsOptions) {
    this.#o = {
      heartbeatMs: HEARTBEAT_MS,
      stallMs: STALL_MS,
      maxBufferedBytes: MAX_BUFFERED_BYTES,
      now: Date.now,
      ...o,
    }
  }

  get size(): number {
    return this.#streams.size
  }

  /** A client's stream: the replay its Last-Event-ID asks for, then every event as it happens. */
  open(request: StreamRequest): ReadableStream<Uint8Array> {
    let stream: Stream | undefined
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          if (this.#closed) return controller.close()
          const wanted = (p: Published) =>
            request.model === undefined || p.event.model === request.model
          const s: Stream = {
            controller,
            disconnect: request.disconnect ?? (() => controller.error(new Error('too slow'))),
            stopListening: this.#o.bus.listen(function sendLive(p) {
              if (wanted(p)) send(p)
            }),
            behindSince: undefined,
            replayBytes: 0,
            ended: false,
          }
          stream = s
          const send = (p: Published) => this.#write(s, sseFrame(p))
          this.#streams.add(s)
          this.#o.metrics.eventStreams.set(this.#streams.size)
          // The stream begins at once (a comment), so a client knows it is connected before any event.
          this.#write(s, ': modelgate events\n\n')
          if (request.lastEventId !== undefined) {
            const replay = this.#o.bus.recentAfter(request.lastEventId).filter(wanted).map(sseFrame)
            s.replayBytes = replay.reduce((n, frame) => n + Buffer.byteLength(frame), 0)
            for (const frame of replay) this.#write(s, frame)
          }
          this.#heartbeat ??= setInterval(() => this.#beat(), this.#o.heartbeatMs)
        },
        // The client went away (node-server cancels the body when the response closes).
        cancel: () => {
          if (stream) this.#forget(stream)
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_BYTES }),
    )
  }

  /** At shutdown: every stream ends, so the drain does not wait on them; a stuck one is cut. */
  close(): void {
    this.#closed = true
    for (const s of this.#streams) {
      this.#forget(s)
      if (s.behindSince !== undefined) s.disconnect()
      else s.controller.close()
    }
  }

  #beat(): void {
    for (const s of this.#streams) this.#write(s, ': keep-alive\n\n')
  }

  #write(s: Stream, text: string): void {
    if (s.ended) return
    s.controller.enqueue(encoder.encode(text))
    // What the client has not taken yet: node-server reads the next chunk only once the socket drains.
    const queued = HIGH_WATER_BYTES - (s.controller.desiredSize ?? 0)
    if (queued < HIGH_WATER_BYTES) {
      s.behindSince = undefined
      return
    }
    const now = this.#o.now()
    s.behindSince ??= now
    if (
      queued > this.#o.maxBufferedBytes + s.replayBytes ||
      now - s.behindSince > this.#o.stallMs
    ) {
      this.#forget(s)
      s.disconnect()
    }
  }

  #forget(s: Stream): void {
    if (s.ended) return
    s.ended = true
    s.stopListening()
    this.#streams.delete(s)
    this.#o.metrics.eventStreams.set(this.#streams.size)
    if (this.#streams.size === 0) {
      clearInterval(this.#heartbeat)
      this.#heartbeat = undefined
    }
  }
}
