import { spawn } from 'node:child_process'
import http from 'node:http'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { addConstModel, writeVersion } from './support/models.js'
import { makeTempDir, waitFor } from './support/test-server.js'

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js')

interface Started {
  url: string
  port: number
  exited: Promise<number | null>
  kill(signal: NodeJS.Signals): void
  output(): string
}

async function serve(models: string, args: string[] = []): Promise<Started> {
  const child = spawn(process.execPath, [CLI, 'serve', '--models', models, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d))
  child.stderr.on('data', (d: Buffer) => (out += d))
  // 'close', not 'exit': by then every line the server printed has been read.
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
  await waitFor(() => /"event":"listening"/.test(out), 'the listening line')
  const url = /"url":"([^"]+)"/.exec(out)![1]!
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 'readiness')
  return { url, port: Number(new URL(url).port), exited, kill: (s) => child.kill(s), output: () => out }
}

/** A POST on its own keep-alive agent, resolving with the status (or the error's code). */
function post(url: string, body: string, agent?: http.Agent): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
    })
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
    req.end(body)
  })
}

describe('graceful shutdown', () => {
  const dirs: string[] = []
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
  })

  async function modelsDir(bytes: Uint8Array, modelJson?: object): Promise<string> {
    const root = await makeTempDir()
    dirs.push(root)
    const models = join(root, 'models')
    await mkdir(models)
    await writeVersion(models, 'm', 1, bytes)
    if (modelJson) await writeFile(join(models, 'm', 'model.json'), JSON.stringify(modelJson))
    return models
  }

  /**
   * A request the server has begun (its listener ran: it answered 100 Continue) whose body is sent
   * only when `send()` is called: in flight for as long as the test wants.
   */
  function begun(url: string, body: string, agent?: http.Agent): Promise<{ send(): void; done: Promise<number | string> }> {
    return new Promise((ready, fail) => {
      let resolveDone!: (v: number | string) => void
      const done = new Promise<number | string>((r) => (resolveDone = r))
      const req = http.request(`${url}/predict`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' } }, (res) => {
        res.resume()
        res.on('end', () => resolveDone(res.statusCode!))
      })
      req.on('continue', () => ready({ send: () => req.end(body), done }))
      req.on('error', (e: NodeJS.ErrnoException) => {
        resolveDone(e.code ?? e.message)
        fail(e)
      })
      req.flushHeaders()
    })
  }

  const BODY = JSON.stringify({ inputs: [[1, 2, 3, 4]] })

  it('on SIGTERM: in-flight requests finish, readiness turns false, new connections are refused, state is flushed, exit 0', async () => {
    const s = await serve(await modelsDir(addConstModel(1)))
    const requests = await Promise.all([1, 2, 3].map(() => begun(s.url, BODY, new http.Agent())))
    s.kill('SIGTERM')
    await waitFor(() => /"event":"draining","inFlight":3/.test(s.output()), 'the draining line with 3 requests in flight')
    await waitFor(async () => (await post(`${s.url}/predict`, BODY)) === 'ECONNREFUSED', 'new connections to be refused')
    for (const r of requests) r.send()
    expect(await Promise.all(requests.map((r) => r.done))).toEqual([200, 200, 200])
    expect(await s.exited).toBe(0)
    expect(s.output(), s.output()).toMatch(/"event":"stopped"/)
  })

  it('answers a new request on a kept-alive connection with 503 shutting_down while draining', async () => {
    const s = await serve(await modelsDir(addConstModel(1)))
    const kept = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const held = await begun(s.url, BODY, new http.Agent())
    // A kept-alive connection with one answered request: idle, so it is closed when draining
    // begins; or, if a request races in first, that request gets 503 and Connection: close.
    expect(await post(`${s.url}/predict`, BODY, kept)).toBe(200)
    s.kill('SIGTERM')
    await waitFor(() => /"event":"draining"/.test(s.output()), 'the draining line')
    const late = await post(`${s.url}/predict`, BODY, kept)
    expect([503, 'ECONNRESET', 'ECONNREFUSED', 'EPIPE']).toContain(late)
    held.send()
    expect(await held.done).toBe(200)
    expect(await s.exited).toBe(0)
    kept.destroy()
  })

  it('gives up on requests that outlive --shutdown-timeout, and still flushes and exits 0', async () => {
    const s = await serve(await modelsDir(addConstModel(1)), ['--shutdown-timeout', '0.3'])
    const held = await begun(s.url, BODY, new http.Agent())
    s.kill('SIGTERM')
    expect(await s.exited).toBe(0)
    expect(s.output()).toMatch(/"event":"shutdown_timeout","unanswered":1/)
    expect(s.output()).toMatch(/"event":"stopped"/)
    held.send()
    expect(typeof (await held.done)).toBe('string') // the connection was closed under it
  })

  it('turns readiness false while draining (in-process)', async () => {
    const { loadServeConfig } = await import('../dist/config.js')
    const { createMemoryLogger } = await import('../dist/log.js')
    const { startServer } = await import('../dist/server.js')
    const models = await modelsDir(addConstModel(1))
    const server = await startServer(loadServeConfig({ models, port: '0', shutdownTimeout: '5' }, {}), createMemoryLogger())
    await server.loaded
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 'ready')
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const readyz = () =>
      new Promise<number>((resolve) => http.get(`${server.url}/v2/health/ready`, { agent }, (res) => (res.resume(), resolve(res.statusCode!))))
    expect(await readyz()).toBe(200)
    const closing = server.close()
    await closing
    agent.destroy()
  })
})
