import { deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib'
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addConstModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

/** A raw request (fetch would decompress on its own and hide what was sent). */
function request(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: Buffer },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: o.method ?? 'POST', headers: o.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      )
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

describe('compression (Content-Encoding, Accept-Encoding)', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(
      async (dir) => {
        await writeVersion(dir, 'adder', 1, addConstModel(1))
      },
      { maxBodySize: '64k' },
    )
  })
  afterAll(() => t.close())

  const json = { 'content-type': 'application/json' }
  const rows = (n: number) =>
    Buffer.from(JSON.stringify({ inputs: Array.from({ length: n }, () => [1, 2, 3, 4]) }))

  it('takes gzip and deflate request bodies', async () => {
    for (const [encoding, encode] of [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
    ] as const) {
      const r = await request(`${t.url}/predict`, {
        headers: { ...json, 'content-encoding': encoding },
        body: encode(rows(1)),
      })
      expect(r.status, encoding).toBe(200)
      expect(JSON.parse(r.body.toString()).outputs.y).toEqual([[2, 3, 4, 5]])
    }
  })

  it('compresses responses above 1 KiB for clients that accept it, with Vary', async () => {
    const big = await request(`${t.url}/predict`, {
      headers: { ...json, 'accept-encoding': 'gzip, deflate' },
      body: rows(100),
    })
    expect(big.headers['content-encoding']).toBe('gzip')
    expect(big.headers.vary).toMatch(/accept-encoding/i)
    expect(JSON.parse(gunzipSync(big.body).toString()).outputs.y).toHaveLength(100)
    const deflated = await request(`${t.url}/predict`, {
      headers: { ...json, 'accept-encoding': 'deflate' },
      body: rows(100),
    })
    expect(deflated.headers['content-encoding']).toBe('deflate')
    expect(JSON.parse(inflateSync(deflated.body).toString()).outputs.y).toHaveLength(100)
    const small = await request(`${t.url}/predict`, {
      headers: { ...json, 'accept-encoding': 'gzip' },
      body: rows(1),
    })
    expect(small.headers['content-encoding']).toBeUndefined()
    const refused = await request(`${t.url}/predict`, {
      headers: { ...json, 'accept-encoding': 'gzip;q=0, identity' },
      body: rows(100),
    })
    expect(refused.headers['content-encoding']).toBeUndefined()
    // The Hono routes too.
    const metrics = await request(`${t.url}/metrics`, {
      method: 'GET',
      headers: { 'accept-encoding': 'gzip' },
    })
    expect(metrics.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(metrics.body).toString()).toContain('modelgate_requests_total')
  })

  it('never compresses an answer under 1 KiB, on any route, and compresses every route above it', async () => {
    const gzip = { 'accept-encoding': 'gzip' }
    const v2Rows = (n: number) =>
      Buffer.from(
        JSON.stringify({
          inputs: [
            {
              name: 'x',
              shape: [n, 4],
              datatype: 'FP32',
              data: Array.from({ length: n * 4 }, () => 1),
            },
          ],
        }),
      )
    const small = [
      await request(`${t.url}/models`, { method: 'GET', headers: gzip }),
      await request(`${t.url}/v2`, { method: 'GET', headers: gzip }),
      await request(`${t.url}/v2/models/adder/infer`, {
        headers: { ...json, ...gzip },
        body: v2Rows(1),
      }),
      await request(`${t.url}/no/such/route`, { method: 'GET', headers: gzip }),
    ]
    for (const r of small) {
      expect(r.body.length).toBeLessThan(1024)
      expect(r.headers['content-encoding']).toBeUndefined()
      expect(r.headers['content-length']).toBe(String(r.body.length))
      JSON.parse(r.body.toString())
    }
    const big = await request(`${t.url}/v2/models/adder/infer`, {
      headers: { ...json, ...gzip },
      body: v2Rows(300),
    })
    expect(big.headers['content-encoding']).toBe('gzip')
    expect(big.headers.vary).toMatch(/accept-encoding/i)
    expect(JSON.parse(gunzipSync(big.body).toString()).outputs[0].shape).toEqual([300, 4])
  })

  it('refuses bodies that do not decode, other encodings, and bodies that decode past the limit', async () => {
    const bad = await request(`${t.url}/predict`, {
      headers: { ...json, 'content-encoding': 'gzip' },
      body: Buffer.from('not gzip at all'),
    })
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.body.toString()).error.code).toBe('invalid_encoding')
    const br = await request(`${t.url}/predict`, {
      headers: { ...json, 'content-encoding': 'br' },
      body: rows(1),
    })
    expect(br.status).toBe(415)
    expect(JSON.parse(br.body.toString()).error.code).toBe('unsupported_media_type')
    // 1 MiB of zeros gzips to about 1 KiB: under the 64k limit compressed, far over it decoded.
    const bomb = gzipSync(Buffer.alloc(1 << 20, 0x20))
    expect(bomb.length).toBeLessThan(64 * 1024)
    const tooBig = await request(`${t.url}/predict`, {
      headers: { ...json, 'content-encoding': 'gzip' },
      body: bomb,
    })
    expect(tooBig.status).toBe(413)
    // ... and the server still answers.
    expect((await request(`${t.url}/predict`, { headers: json, body: rows(1) })).status).toBe(200)
  })
})
