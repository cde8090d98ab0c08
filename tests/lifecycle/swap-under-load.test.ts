import { Agent, request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  admin,
  historyOf,
  modelDetail,
  versionView,
  waitActive,
  waitStatus,
  X,
} from '../support/api-client.js'
import { addConstModel } from '../support/models.js'
import { dropVersion } from '../support/staging.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'
import { smokeFor, writeConstVersion } from './lifecycle-support.js'

/**
 * The load test of the issue: N clients send /predict in a loop while 20 versions are promoted and
 * 10 rollbacks happen. Zero requests may fail, and every response must come from a version that
 * passed the gate: y = x + v proves which version's session ran, X-Model-Version must agree.
 */

const CLIENTS = 16
const GOOD = 20
const ROLLBACKS = 10
/** Versions that fail their smoke test, dropped among the good ones: they must never answer. */
const BAD = new Set([6, 11, 16, 21])

interface Seen {
  readonly status: number
  readonly header: number
  readonly bodyVersion: number | undefined
  readonly constant: number | undefined
  readonly error?: string
}

// node:http with keep-alive: several times cheaper per request than fetch, so the clients (which
// share this process with the server) load the server rather than themselves.
const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS })

function post(
  url: string,
  body: string,
): Promise<{ status: number; version: string | undefined; text: string }> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: '/predict',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            version: res.headers['x-model-version'] as string | undefined,
            text,
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

describe('hot swap under load', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer((dir) => writeConstVersion(dir, 'adder', 1, { smoke: true }))
  })
  afterAll(async () => {
    agent.destroy()
    await t?.close()
  })

  it(`${CLIENTS} clients, ${GOOD} promotions, ${ROLLBACKS} rollbacks: no failed request, every answer from a gated version`, async () => {
    const seen: Seen[] = []
    const counts = new Map<string, number>()
    let stop = false
    const body = JSON.stringify({ inputs: X })
    const client = async () => {
      while (!stop) {
        try {
          const res = await post(t.url, body)
          const json = JSON.parse(res.text)
          const y = json?.outputs?.y as number[][] | undefined
          const s: Seen = {
            status: res.status,
            header: Number(res.version),
            bodyVersion: json?.version,
            constant: y ? y[0]![0]! - X[0]![0]! : undefined,
          }
          if (s.status !== 200 || s.header !== s.bodyVersion || s.constant !== s.header)
            seen.push(s)
          const key = String(s.header)
          counts.set(key, (counts.get(key) ?? 0) + 1)
        } catch (e) {
          seen.push({
            status: 0,
            header: NaN,
            bodyVersion: undefined,
            constant: undefined,
            error: (e as Error).message,
          })
        }
      }
    }
    const clients = Array.from({ length: CLIENTS }, () => client())
    const total = () => [...counts.values()].reduce((a, b) => a + b, 0)
    await waitFor(() => total() >= CLIENTS * 4, 'the clients to get going')

    const started = performance.now()
    const rollbacks: { from: number; to: number; warm: boolean }[] = []
    let promoted = 0
    const times: number[] = []
    let version = 1
    while (promoted < GOOD) {
      version++
      if (BAD.has(version)) {
        await dropVersion(t.modelsDir, 'adder', version, addConstModel(version), {
          'smoke.json': smokeFor(version, 0.5),
        })
        await waitStatus(t.url, 'adder', version, 'rejected')
        continue
      }
      const requestsBefore = total()
      await dropVersion(t.modelsDir, 'adder', version, addConstModel(version), {
        'smoke.json': smokeFor(version),
      })
      const t0 = performance.now()
      await waitActive(t.url, 'adder', version)
      times.push(Math.round(performance.now() - t0))
      promoted++
      // Requests kept flowing while the version was gated and swapped in.
      expect(total()).toBeGreaterThan(requestsBefore)
      if (promoted % 2 === 0 && rollbacks.length < ROLLBACKS) {
        const r = await admin(t.url, '/models/adder/rollback', {
          reason: `load test rollback ${rollbacks.length + 1}`,
        })
        expect(r.status, JSON.stringify(r.body)).toBe(200)
        expect(r.body.from).toBe(version)
        rollbacks.push(r.body)
        // Requests that start after the rollback answered are served by its target.
        const after = await fetch(`${t.url}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        })
        expect(Number(after.headers.get('x-model-version'))).toBe(r.body.to)
      }
    }
    const swapMs = performance.now() - started
    // Rollbacks that race a promotion in flight: whichever lands first, the newer version ends up
    // active unless the rollback was from it.
    for (let i = 0; i < 3; i++) {
      version++
      await dropVersion(t.modelsDir, 'adder', version, addConstModel(version), {
        'smoke.json': smokeFor(version),
      })
      const r = await admin(t.url, '/models/adder/rollback', { reason: 'racing a promotion' })
      expect(r.status, JSON.stringify(r.body)).toBe(200)
      const v = version
      await waitFor(
        async () =>
          ['active', 'rolled_back'].includes(
            versionView(await modelDetail(t.url, 'adder'), v)?.status,
          ),
        `version ${v} to be promoted (or rolled back)`,
      )
      expect(versionView(await modelDetail(t.url, 'adder'), v).status).toBe(
        r.body.from === v ? 'rolled_back' : 'active',
      )
    }
    // A final burst: two versions at once, the newest that passes wins.
    await dropVersion(t.modelsDir, 'adder', version + 1, addConstModel(version + 1), {
      'smoke.json': smokeFor(version + 1),
    })
    await dropVersion(t.modelsDir, 'adder', version + 2, addConstModel(version + 2), {
      'smoke.json': smokeFor(version + 2),
    })
    await waitActive(t.url, 'adder', version + 2)
    const atLastSwap = total()
    await waitFor(() => total() >= atLastSwap + 100, 'some requests after the last swap')
    stop = true
    await Promise.all(clients)

    expect(rollbacks).toHaveLength(ROLLBACKS)
    expect(rollbacks.every((r) => r.warm)).toBe(true)
    // Zero failed requests, and none answered by a session that was not the version it claimed.
    expect(
      seen.length,
      `${seen.length} of ${total()} requests failed or mismatched, e.g. ${JSON.stringify(seen.slice(0, 5))}`,
    ).toBe(0)

    const history = await historyOf(t.url, 'adder')
    const gated = new Set(
      history.filter((e) => e.event === 'promoted').map((e) => e.version as number),
    )
    const answered = [...counts.keys()].map(Number)
    for (const v of answered) {
      expect(
        gated.has(v),
        `version ${v} answered ${counts.get(String(v))} requests without a promotion on record`,
      ).toBe(true)
      expect(BAD.has(v), `rejected version ${v} answered requests`).toBe(false)
    }
    for (const v of BAD)
      expect(versionView(await modelDetail(t.url, 'adder'), v).status).toBe('rejected')
    expect(
      history.filter((e) => e.event === 'promoted' && e.trigger === 'watch').length,
    ).toBeGreaterThanOrEqual(GOOD + 1)
    expect(history.filter((e) => e.event === 'rolled_back')).toHaveLength(ROLLBACKS + 3)
    // Most versions were seen answering: the clients really ran across the swaps.
    expect(answered.length).toBeGreaterThan(GOOD / 2)
    // Replaced versions were released: at most the retained window (2) stays loaded beside the active one.
    const detail = await modelDetail(t.url, 'adder')
    expect(detail.retained.length).toBeLessThanOrEqual(2)
    expect(detail.versions.filter((v: { loaded: boolean }) => v.loaded).length).toBeLessThanOrEqual(
      3,
    )
    // ... and their sessions were really released once their last request ended.
    const gone = detail.versions
      .filter((v: { status: string }) => v.status === 'unloaded' || v.status === 'rolled_back')
      .map((v: { version: number }) => v.version)
    expect(gone.length).toBeGreaterThanOrEqual(GOOD - 3)
    const released = () =>
      new Set(
        t.logs
          .filter((r) => r.event === 'session_released' && r.model === 'adder')
          .map((r) => r.version as number),
      )
    await waitFor(
      () => gone.every((v: number) => released().has(v)),
      'the sessions of unloaded and rolled-back versions to be released',
      5_000,
    )
    expect(t.logs.filter((r) => r.level === 'error')).toEqual([])
    console.log(
      `swap-under-load: ${total()} requests, ${answered.length} versions answered, ${GOOD} promotions + ${ROLLBACKS} rollbacks in ${Math.round(swapMs)} ms (drop to active: median ${times.sort((a, b) => a - b)[times.length >> 1]} ms, max ${times.at(-1)} ms)`,
    )
  }, 60_000)
})
