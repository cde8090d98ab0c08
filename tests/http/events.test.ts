import { afterEach, describe, expect, it } from 'vitest'
import { historyOf, metricValue, waitActive } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/** GET /events: lifecycle events as Server-Sent Events, over real HTTP from a real server. */

const TOKEN = 'an-admin-token-long-enough'

interface Frame {
  readonly id?: string
  readonly event?: string
  readonly data?: any
  readonly comment?: string
}

/** A streaming client: every frame as it arrives, parsed; `close()` hangs up. */
async function follow(url: string, headers: Record<string, string> = {}) {
  const abort = new AbortController()
  const res = await fetch(url, { headers, signal: abort.signal })
  const frames: Frame[] = []
  let ended = false
  const reading = (async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: '' }))
      if (done) break
      text += value
      for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
        frames.push(parseFrame(text.slice(0, end)))
        text = text.slice(end + 2)
      }
    }
    ended = true
  })()
  return {
    res,
    frames,
    events: () => frames.filter((f) => f.event !== undefined),
    ended: () => ended,
    close: async () => {
      abort.abort()
      await reading
    },
  }
}

function parseFrame(block: string): Frame {
  const frame: Record<string, unknown> = {}
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) frame.comment = line.slice(1).trim()
    const m = /^(id|event|data): (.*)$/.exec(line)
    if (m) frame[m[1]!] = m[1] === 'data' ? JSON.parse(m[2]!) : m[2]
  }
  return frame as Frame
}

let t: TestServer | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

const twoModels = async (dir: string) => {
  await writeVersion(dir, 'adder', 1, addConstModel(1))
  await writeVersion(dir, 'other', 1, addConstModel(10))
}

describe('GET /events', () => {
  it('streams a promotion as it happens: id, event type, the event as JSON', async () => {
    t = await startTestServer(twoModels)
    const stream = await follow(`${t.url}/events`)
    expect(stream.res.status).toBe(200)
    expect(stream.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(stream.res.headers.get('cache-control')).toBe('no-cache, no-transform')
    await waitFor(() => stream.frames.length > 0, 'the opening comment')
    // Without Last-Event-ID, nothing from before: only what happens from now on.
    expect(stream.events()).toEqual([])
    await writeVersion(t.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(t.url, 'adder', 2)
    await waitFor(
      () => stream.events().some((f) => f.event === 'promoted' && f.data.version === 2),
      'the promotion event',
    )
    const frame = stream.events().find((f) => f.event === 'promoted')!
    expect(frame.id).toBe(String(frame.data.id))
    const entry = (await historyOf(t.url, 'adder')).find(
      (e) => e.event === 'promoted' && e.version === 2,
    )
    const { event, ...rest } = entry
    expect(frame.data).toEqual({ id: frame.data.id, type: event, ...rest })
    await stream.close()
  })

  it('?model= keeps one model’s events', async () => {
    t = await startTestServer(twoModels)
    const stream = await follow(`${t.url}/events?model=other`)
    const all = await follow(`${t.url}/events`)
    await writeVersion(t.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(t.url, 'adder', 2)
    await writeVersion(t.modelsDir, 'other', 2, addConstModel(20))
    await waitActive(t.url, 'other', 2)
    await waitFor(
      () => stream.events().some((f) => f.data.model === 'other' && f.data.version === 2),
      "other's promotion",
    )
    // adder's event came first and reached the unfiltered stream, not this one.
    expect(all.events().some((f) => f.data.model === 'adder')).toBe(true)
    expect(stream.events().every((f) => f.data.model === 'other')).toBe(true)
    await stream.close()
    await all.close()
  })

  it('Last-Event-ID replays the kept events after it, then goes on live', async () => {
    t = await startTestServer(twoModels)
    const startup = [...(await historyOf(t.url, 'adder')), ...(await historyOf(t.url, 'other'))]
    expect(startup.length).toBeGreaterThanOrEqual(2)
    const replay = await follow(`${t.url}/events`, { 'last-event-id': '0' })
    await waitFor(() => replay.events().length === startup.length, 'the replay')
    const ids = replay.events().map((f) => Number(f.id))
    expect(ids).toEqual(ids.toSorted((a, b) => a - b))
    const after = ids[0]!
    const rest = await follow(`${t.url}/events?model=adder`, { 'last-event-id': String(after) })
    await writeVersion(t.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(t.url, 'adder', 2)
    await waitFor(
      () => rest.events().some((f) => f.data.version === 2),
      'the live event after the replay',
    )
    const expected = replay
      .events()
      .filter((f) => Number(f.id) > after && f.data.model === 'adder')
      .map((f) => f.id)
    expect(
      rest
        .events()
        .map((f) => f.id)
        .slice(0, expected.length),
    ).toEqual(expected)
    expect(rest.events().every((f) => Number(f.id) > after)).toBe(true)
    await replay.close()
    await rest.close()
  })

  it('answers HEAD with the headers and opens no stream', async () => {
    t = await startTestServer(twoModels)
    const res = await fetch(`${t.url}/events`, { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(await metricValue(t.url, 'modelgate_event_streams')).toBe(0)
  })

  it('refuses a Last-Event-ID that is not an event id', async () => {
    t = await startTestServer(twoModels)
    const res = await fetch(`${t.url}/events`, { headers: { 'last-event-id': 'x' } })
    expect(res.status).toBe(400)
    expect(((await res.json()) as any).error.code).toBe('invalid_request')
  })

  it('is an admin route: with a token set, a client without it is refused', async () => {
    t = await startTestServer(twoModels, {}, { MODELGATE_ADMIN_TOKEN: TOKEN })
    const refused = await fetch(`${t.url}/events`)
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as any).error.code).toBe('unauthorized')
    const stream = await follow(`${t.url}/events`, { authorization: `Bearer ${TOKEN}` })
    expect(stream.res.status).toBe(200)
    await stream.close()
  })

  it('forgets a client that hangs up, and ends every stream at shutdown without waiting them out', async () => {
    // A shutdown timeout far longer than the test: a drain that waited on the streams would show.
    t = await startTestServer(twoModels, { shutdownTimeout: '600' })
    const gone = await follow(`${t.url}/events`)
    const staying = await follow(`${t.url}/events`)
    await waitFor(
      async () => (await metricValue(t!.url, 'modelgate_event_streams')) === 2,
      'two streams',
    )
    await gone.close()
    await waitFor(
      async () => (await metricValue(t!.url, 'modelgate_event_streams')) === 1,
      'the stream to be forgotten',
    )
    await t.server.close()
    await waitFor(() => staying.ended(), 'the stream to end')
    await staying.close()
  })
})
