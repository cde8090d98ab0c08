import { afterEach, describe, expect, it } from 'vitest'
import { EventBus } from '../../src/events/event-bus.js'
import { EventStreams } from '../../src/http/event-streams.js'
import { createMemoryLogger } from '../../src/log.js'
import { ServerMetrics } from '../../src/metrics/server-metrics.js'
import { waitFor } from '../support/wait-for.js'

/**
 * A client that does not read its stream: it is cut once its buffer holds too much or has stayed
 * full too long, so it costs bounded memory and the others nothing. The streams here are read
 * (or not) directly, as node-server reads them for a socket that drains (or does not).
 */

const metrics: ServerMetrics[] = []
afterEach(() => {
  for (const m of metrics.splice(0)) m.close()
})

function setup(o: { stallMs?: number; maxBufferedBytes?: number; heartbeatMs?: number } = {}) {
  const bus = new EventBus(createMemoryLogger())
  const m = new ServerMetrics()
  metrics.push(m)
  let now = 0
  const streams = new EventStreams({ bus, metrics: m, now: () => now, ...o })
  const publish = (version: number) =>
    bus.publish({
      event: 'promoted',
      model: 'm',
      version,
      time: '',
      message: 'x'.repeat(10_000),
    } as never)
  return { streams, publish, advance: (ms: number) => (now += ms) }
}

function client(streams: EventStreams) {
  let disconnected = 0
  const body = streams.open({ disconnect: () => disconnected++ })
  return { reader: body.getReader(), disconnected: () => disconnected }
}

describe('EventStreams', () => {
  it('cuts a client that does not read once its buffer passes the byte bound', () => {
    const s = setup({ maxBufferedBytes: 200_000 })
    const slow = client(s.streams)
    const fast = client(s.streams)
    for (let v = 1; v <= 100; v++) {
      s.publish(v)
      void fast.reader.read() // keeps up: every event is taken as it comes
    }
    expect(slow.disconnected()).toBe(1)
    expect(fast.disconnected()).toBe(0)
    expect(s.streams.size).toBe(1)
  })

  it('allows the replay a client asks for beyond the byte bound, and counts from there', () => {
    const s = setup({ maxBufferedBytes: 100_000 })
    for (let v = 1; v <= 50; v++) s.publish(v) // 500 kB kept
    let disconnected = 0
    s.streams.open({ lastEventId: 0, disconnect: () => disconnected++ })
    s.publish(51)
    expect(disconnected).toBe(0)
    for (let v = 52; v <= 70 && disconnected === 0; v++) s.publish(v)
    expect(disconnected).toBe(1)
  })

  it('cuts a client whose buffer has stayed full past the stall bound', () => {
    const s = setup({ stallMs: 30_000 })
    const slow = client(s.streams)
    for (let v = 1; v <= 8; v++) s.publish(v) // 80 kB: more than the buffer holds
    s.advance(29_000)
    s.publish(9)
    expect(slow.disconnected()).toBe(0)
    s.advance(2_000)
    s.publish(10)
    expect(slow.disconnected()).toBe(1)
    expect(s.streams.size).toBe(0)
  })

  it('a client that catches up is no longer counted as behind', async () => {
    const s = setup({ stallMs: 30_000 })
    const c = client(s.streams)
    for (let v = 1; v <= 8; v++) s.publish(v)
    s.advance(20_000)
    for (let i = 0; i < 9; i++) await c.reader.read() // the opening comment and 8 events
    s.advance(20_000)
    s.publish(9)
    s.advance(20_000)
    s.publish(10)
    expect(c.disconnected()).toBe(0)
  })

  it('writes a comment every heartbeat', async () => {
    const s = setup({ heartbeatMs: 10 })
    const c = client(s.streams)
    const decoder = new TextDecoder()
    const seen: string[] = []
    await waitFor(async () => {
      seen.push(decoder.decode((await c.reader.read()).value))
      return seen.includes(': keep-alive\n\n')
    }, 'a heartbeat')
    expect(seen[0]).toBe(': modelgate events\n\n')
    s.streams.close()
  })

  it('at close, ends the streams that keep up and cuts the ones behind', async () => {
    const s = setup()
    const behind = client(s.streams)
    const keeping = client(s.streams)
    for (let v = 1; v <= 8; v++) {
      s.publish(v)
      await keeping.reader.read()
    }
    s.streams.close()
    expect(behind.disconnected()).toBe(1)
    expect(keeping.disconnected()).toBe(0)
    for (;;) if ((await keeping.reader.read()).done) break
    expect(s.streams.size).toBe(0)
    // Closed: a new client's stream ends at once.
    expect((await client(s.streams).reader.read()).done).toBe(true)
  })
})
