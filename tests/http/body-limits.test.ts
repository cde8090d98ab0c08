import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metricValue, postJson } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import {
  postHead,
  rawConnection,
  type RawConnection,
  type RawResponse,
} from '../support/raw-http.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/**
 * Request bodies are bounded together and in time: the bytes buffered across all bodies being
 * received (--max-inflight-body-size: beyond it, 503 overloaded with Retry-After), a body that
 * stops arriving (--body-timeout: 408 request_timeout), and headers that never end
 * (--header-timeout). Every way a body ends gives its budget back. Real server, real sockets:
 * these are the clients that fetch cannot be.
 */

const ROW = JSON.stringify({ inputs: [[1, 2, 3, 4]] })
const SIMPLE = '/predict'
const V2 = '/v2/models/adder/infer'

const addModel = (dir: string) =>
  writeVersion(dir, 'adder', 1, addConstModel(1)).then(() => undefined)

async function inflightBodyBytes(t: TestServer): Promise<number> {
  const bytes = await metricValue(t.url, 'modelgate_inflight_body_bytes')
  if (bytes === undefined) throw new Error('no modelgate_inflight_body_bytes in /metrics')
  return bytes
}

function expectRefused(
  r: RawResponse | undefined,
  status: number,
  code: string,
  path: string,
): void {
  expect(r, `a response to ${path}`).toBeDefined()
  expect(r!.status, r!.body).toBe(status)
  const body = JSON.parse(r!.body)
  // V2 errors are a string (the protocol's form); ours carry the code.
  if (path.startsWith('/v2/')) expect(typeof body.error).toBe('string')
  else expect(body.error.code).toBe(code)
  // The rest of the body is not read: the server says so and closes.
  expect(r!.headers.connection).toBe('close')
}

/** A body that declares `declared` bytes and sends `sent` of them, then nothing. */
function withheld(t: TestServer, path: string, declared: number, sent: number): RawConnection {
  return rawConnection(
    t.url,
    Buffer.concat([
      Buffer.from(postHead(path, { 'content-length': declared })),
      Buffer.alloc(sent, 0x20),
    ]),
  )
}

describe('a body that stops arriving', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(addModel, { bodyTimeout: '1', headerTimeout: '1' })
  })
  afterAll(() => t?.close())

  it.each([SIMPLE, V2])(
    'is ended with 408 request_timeout after --body-timeout, its budget released (%s)',
    async (path) => {
      const c = withheld(t, path, 10_000, 100)
      const r = await c.response
      expectRefused(r, 408, 'request_timeout', path)
      await c.closed
      await waitFor(async () => (await inflightBodyBytes(t)) === 0, 'the budget to return to 0')
    },
  )

  it('closes a connection whose headers never end, after --header-timeout', async () => {
    const c = rawConnection(t.url, 'POST /predict HTTP/1.1\r\nHost: localhost\r\n')
    await c.closed
    expect((await c.response)?.status).toBe(408)
    // ... and one that sends nothing at all.
    const silent = rawConnection(t.url)
    await silent.closed
  })
})

describe('the budget of buffered body bytes', () => {
  let t: TestServer
  const KIB = 1024
  beforeAll(async () => {
    // Room for two bodies of 60 KiB and a few small ones beside them; not for a third.
    t = await startTestServer(addModel, { maxBodySize: '64k', maxInflightBodySize: '160k' })
  })
  afterAll(() => t?.close())

  it('refuses bodies beyond it with 503 overloaded and Retry-After, and still serves small ones', async () => {
    const held = [withheld(t, SIMPLE, 60 * KIB, KIB), withheld(t, V2, 60 * KIB, KIB)]
    await waitFor(
      async () => (await inflightBodyBytes(t)) === 120 * KIB,
      'two bodies to hold 120 KiB',
    )

    // Declared up front: refused before a byte of the body is read, on both routes.
    for (const path of [SIMPLE, V2]) {
      const c = withheld(t, path, 60 * KIB, 0)
      const r = await c.response
      expectRefused(r, 503, 'overloaded', path)
      expect(r!.headers['retry-after']).toBe('1')
      await c.closed
    }
    // No Content-Length: refused as its bytes pass what is left.
    const chunked = rawConnection(t.url, postHead(SIMPLE, { 'transfer-encoding': 'chunked' }))
    const chunk = Buffer.alloc(8 * KIB, 0x20)
    for (let i = 0; i < 6; i++)
      chunked.send(
        Buffer.concat([
          Buffer.from(`${chunk.length.toString(16)}\r\n`),
          chunk,
          Buffer.from('\r\n'),
        ]),
      )
    expectRefused(await chunked.response, 503, 'overloaded', SIMPLE)
    await chunked.closed

    // A small request fits beside them.
    const small = await postJson(`${t.url}${SIMPLE}`, ROW)
    expect(small.status).toBe(200)
    expect(small.body.outputs.y).toEqual([[2, 3, 4, 5]])
    expect(await inflightBodyBytes(t)).toBe(120 * KIB)

    // The clients give up: the budget comes back, and a large body fits again.
    for (const c of held) c.socket.destroy()
    await waitFor(async () => (await inflightBodyBytes(t)) === 0, 'the budget to return to 0')
    const rows = Array.from({ length: 5000 }, () => [1, 2, 3, 4]) // about 50 KiB of JSON
    const large = await postJson(`${t.url}${SIMPLE}`, { inputs: rows })
    expect(large.status).toBe(200)
    expect(large.body.outputs.y).toHaveLength(rows.length)
  })

  it('counts decoded bytes: a gzip body that expands past the budget is refused', async () => {
    const held = [withheld(t, SIMPLE, 60 * KIB, KIB), withheld(t, SIMPLE, 60 * KIB, KIB)]
    await waitFor(
      async () => (await inflightBodyBytes(t)) === 120 * KIB,
      'two bodies to hold 120 KiB',
    )
    // About 60 KiB decoded from well under 1 KiB sent: within the per-body limit, not what is left.
    const bomb = gzipSync(
      Buffer.from(JSON.stringify({ inputs: [[1, 2, 3, 4]], pad: ' '.repeat(60 * KIB) })),
    )
    const c = rawConnection(
      t.url,
      Buffer.concat([
        Buffer.from(
          postHead(SIMPLE, { 'content-length': bomb.length, 'content-encoding': 'gzip' }),
        ),
        bomb,
      ]),
    )
    expectRefused(await c.response, 503, 'overloaded', SIMPLE)
    for (const h of held) h.socket.destroy()
    await waitFor(async () => (await inflightBodyBytes(t)) === 0, 'the budget to return to 0')
  })

  it('returns to 0 however a body ends', async () => {
    const endings: Array<[string, () => Promise<unknown>]> = [
      ['served', () => postJson(`${t.url}${SIMPLE}`, ROW)],
      [
        'served on the Hono routes',
        () =>
          fetch(`${t.url}${V2}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
            }),
          }),
      ],
      ['invalid JSON', () => postJson(`${t.url}${SIMPLE}`, '{"inputs": [')],
      ['413 declared', () => withheld(t, SIMPLE, 65 * KIB, KIB).closed],
      [
        '413 part-way, no Content-Length',
        async () => {
          const c = rawConnection(t.url, postHead(SIMPLE, { 'transfer-encoding': 'chunked' }))
          const chunk = Buffer.alloc(40 * KIB, 0x20)
          for (let i = 0; i < 2; i++)
            c.send(
              Buffer.concat([
                Buffer.from(`${chunk.length.toString(16)}\r\n`),
                chunk,
                Buffer.from('\r\n'),
              ]),
            )
          expect((await c.response)?.status).toBe(413)
        },
      ],
      [
        '413 decoded',
        () =>
          fetch(`${t.url}${SIMPLE}`, {
            method: 'POST',
            headers: { 'content-encoding': 'gzip' },
            body: gzipSync(Buffer.alloc(100 * KIB, 0x20)),
          }),
      ],
      [
        'invalid encoding',
        () =>
          fetch(`${t.url}${SIMPLE}`, {
            method: 'POST',
            headers: { 'content-encoding': 'gzip' },
            body: 'not gzip',
          }),
      ],
      [
        'client gone part-way',
        async () => {
          const c = withheld(t, SIMPLE, 60 * KIB, 30 * KIB)
          await waitFor(
            async () => (await inflightBodyBytes(t)) === 60 * KIB,
            'the body to hold its claim',
          )
          c.socket.destroy()
        },
      ],
      [
        'client gone part-way, gzip',
        async () => {
          const gz = gzipSync(Buffer.alloc(60 * KIB, 0x20))
          const c = rawConnection(
            t.url,
            Buffer.concat([
              Buffer.from(
                postHead(SIMPLE, { 'content-length': gz.length, 'content-encoding': 'gzip' }),
              ),
              gz.subarray(0, gz.length - 10),
            ]),
          )
          await waitFor(async () => (await inflightBodyBytes(t)) > 0, 'the body to hold a claim')
          c.socket.destroy()
        },
      ],
    ]
    for (const [name, end] of endings) {
      await end()
      await waitFor(
        async () => (await inflightBodyBytes(t)) === 0,
        `the budget to return to 0 after: ${name}`,
      )
    }
  })
})
