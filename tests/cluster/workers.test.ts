import { readFileSync } from 'node:fs'
import http from 'node:http'
import { availableParallelism } from 'node:os'
import { describe, expect, it } from 'vitest'
import { getJson } from '../support/api-client.js'
import { begunPredict } from '../support/begun-request.js'
import { type CliProcess, spawnServerCli, startServerCli } from '../support/cli-server.js'
import { inferenceClient } from '../support/grpc-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { tempModelsDir } from '../support/servers.js'
import { waitFor } from '../support/wait-for.js'

/**
 * `modelgate serve --workers 2`: the real CLI, a primary process and its two workers on one port.
 * A worker is told apart by its pid (the primary's `worker_started` lines) and, in an answer, by
 * the prefix of the prediction id it made (a random prefix per process, then a counter).
 */

const BODY = JSON.stringify({ inputs: [[1, 2, 3, 4]] })

const modelsDir = () =>
  tempModelsDir(async (models) => {
    await writeVersion(models, 'm', 1, addConstModel(1))
  })

/** The log lines of `event` printed so far. */
function lines(cli: CliProcess, event: string): Record<string, any>[] {
  return cli
    .output()
    .split('\n')
    .filter((l) => l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l))
}

/** Whether process `pid` still runs (a zombie is gone: it only waits for its parent to read it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

interface Answer {
  readonly status: number | string
  /** The prediction id's per-process prefix: which worker answered. */
  readonly worker: string | undefined
}

/**
 * POST /predict on a connection of its own: the cluster hands each new connection to the next
 * worker, where a kept-alive one would stay with the first. A connection the cluster lost (handed
 * to a worker as it died) fails after 5 s rather than hanging the test.
 */
function predict(url: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request(
      `${url}/predict`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        const id = res.headers['x-prediction-id']
        res.resume()
        res.on('end', () =>
          resolve({ status: res.statusCode!, worker: String(id ?? '').split('-')[0] }),
        )
      },
    )
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ status: e.code ?? e.message, worker: undefined }),
    )
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')))
    req.end(BODY)
  })
}

/** GET /metrics on a connection of its own (or `agent`'s), as text. */
function scrape(url: string, agent: http.Agent | false = false) {
  return new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
    http
      .get(`${url}/metrics`, { agent }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () =>
          resolve({ status: res.statusCode!, type: String(res.headers['content-type']), text }),
        )
      })
      .on('error', reject)
  })
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

/** `--workers 2` over a fresh models directory, once both workers answer predictions. */
async function twoWorkers(args: string[] = []) {
  const s = await spawnServerCli(['--models', await modelsDir(), '--workers', '2', ...args])
  const answered = new Set<string>()
  let ok = 0
  await waitFor(async () => {
    const a = await predict(s.url)
    if (a.status === 200) {
      ok++
      answered.add(a.worker!)
    }
    return answered.size === 2
  }, 'both workers to answer a prediction')
  const pids = lines(s, 'worker_started').map((l) => l.pid as number)
  expect(pids).toHaveLength(2)
  return { ...s, pids, answeredSoFar: ok }
}

describe('modelgate serve --workers 2', () => {
  it('serves from two worker processes on one port, and /metrics sums their requests', async () => {
    const s = await twoWorkers()
    expect(new Set(s.pids).size).toBe(2)
    const listening = lines(s, 'listening')
    expect(new Set(listening.map((l) => l.worker)).size).toBe(2)
    expect(new Set(listening.map((l) => l.url))).toEqual(new Set([s.url]))

    // The two workers are the replicas of one state directory: one gates, the other follows.
    const replicas = (await getJson(`${s.url}/replicas`)).body.replicas as {
      pid: number
      role: string
    }[]
    expect(new Set(replicas.map((r) => r.pid))).toEqual(new Set(s.pids))
    expect(replicas.map((r) => r.role).sort()).toEqual(['follower', 'gatekeeper'])

    const answers = await Promise.all(Array.from({ length: 10 }, () => predict(s.url)))
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200))
    expect(new Set(answers.map((a) => a.worker)).size).toBe(2)

    // Whichever worker the scrape reaches answers the sum of both.
    for (let i = 0; i < 4; i++) {
      const m = await scrape(s.url)
      expect(m.status).toBe(200)
      expect(m.type).toBe('text/plain; version=0.0.4; charset=utf-8')
      expect(sample(m.text, 'modelgate_requests_total{model="m",version="1",status="200"}')).toBe(
        s.answeredSoFar + 10,
      )
      // A version number and a count of versions each worker holds alike: not doubled.
      expect(sample(m.text, 'modelgate_active_version{model="m"}')).toBe(1)
      expect(sample(m.text, 'modelgate_loaded_versions{model="m"}')).toBe(1)
      // Counted once, by the gatekeeper that promoted it.
      expect(sample(m.text, 'modelgate_promotions_total{model="m",result="promoted"}')).toBe(1)
    }
    s.child.kill('SIGTERM')
    expect((await s.exited).code).toBe(0)
  })

  it('listens for gRPC in every worker, on one port', async () => {
    const s = await twoWorkers(['--grpc-port', '0'])
    const grpc = lines(s, 'grpc_listening')
    expect(grpc).toHaveLength(2)
    expect(new Set(grpc.map((l) => l.address)).size).toBe(1)
    const port = Number(String(grpc[0]!.address).split(':').at(-1))
    const ids = new Set<string>()
    await waitFor(async () => {
      // A client of its own: a new connection, so the next worker.
      const client = inferenceClient(port)
      try {
        const r = await client.call('ModelInfer', {
          model_name: 'm',
          inputs: [
            {
              name: 'x',
              datatype: 'FP32',
              shape: [1, 4],
              contents: { fp32_contents: [1, 2, 3, 4] },
            },
          ],
        })
        expect(r.outputs[0].contents.fp32_contents).toEqual([2, 3, 4, 5])
        ids.add(String(r.id).split('-')[0]!)
      } finally {
        client.close()
      }
      return ids.size === 2
    }, 'a gRPC answer from each worker')
    s.child.kill('SIGTERM')
    expect((await s.exited).code).toBe(0)
  })

  it('on SIGTERM, every worker drains its requests in flight, then all exit 0', async () => {
    const s = await twoWorkers()
    // Requests each worker has begun (100 Continue) whose bodies are sent only after the signal.
    const held = await Promise.all(
      Array.from({ length: 4 }, () => begunPredict(s.url, BODY, false)),
    )
    s.child.kill('SIGTERM')
    await waitFor(() => lines(s, 'draining').length === 2, 'both workers to begin draining')
    const draining = lines(s, 'draining')
    expect(new Set(draining.map((l) => l.worker)).size).toBe(2)
    expect(draining.reduce((n, l) => n + l.inFlight, 0)).toBe(4)
    for (const h of held) h.send()
    expect(await Promise.all(held.map((h) => h.done))).toEqual([200, 200, 200, 200])
    expect((await s.exited).code).toBe(0)
    expect(lines(s, 'worker_stopped').map((l) => l.code)).toEqual([0, 0])
    for (const pid of s.pids) expect(alive(pid), `worker ${pid}`).toBe(false)
  })

  it('replaces a worker killed with SIGKILL, and the other one serves meanwhile', async () => {
    const s = await twoWorkers()
    const [victim, survivor] = s.pids as [number, number]
    process.kill(victim, 'SIGKILL')
    const died = await s.waitForEvent('worker_died')
    expect(died).toMatchObject({ pid: victim, signal: 'SIGKILL' })
    expect(await s.waitForEvent('worker_restarting')).toMatchObject({ inMs: 1000 })
    // Until the replacement listens, every connection goes to the survivor.
    const workers = new Set<string>()
    await waitFor(async () => {
      const a = await predict(s.url)
      expect(a.status).toBe(200)
      workers.add(a.worker!)
      return workers.size === 2
    }, 'an answer from the replacement')
    const started = lines(s, 'worker_started')
    expect(started).toHaveLength(3)
    expect(started.map((l) => l.pid)).toContain(survivor)
    expect(alive(survivor)).toBe(true)
    s.child.kill('SIGTERM')
    expect((await s.exited).code).toBe(0)
  })

  it('takes its workers down when the primary is killed with SIGKILL', async () => {
    const s = await twoWorkers()
    await s.kill9()
    await waitFor(() => s.pids.every((pid) => !alive(pid)), 'both workers to exit')
    await waitFor(() => lines(s, 'primary_gone').length === 2, "each worker's primary_gone line")
  })

  it('answers /metrics 503 metrics_unavailable when the primary does not answer within 2 s', async () => {
    const s = await twoWorkers()
    // A kept-alive connection to one worker: the only way in while the primary (which accepts
    // every connection) is stopped.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    expect((await scrape(s.url, agent)).status).toBe(200)
    process.kill(s.child.pid!, 'SIGSTOP')
    try {
      const m = await scrape(s.url, agent)
      expect(m.status).toBe(503)
      expect(JSON.parse(m.text).error).toMatchObject({
        code: 'metrics_unavailable',
        message: expect.stringMatching(/no answer within 2 s/),
      })
    } finally {
      process.kill(s.child.pid!, 'SIGCONT')
    }
    expect((await scrape(s.url, agent)).status).toBe(200)
    agent.destroy()
    s.child.kill('SIGTERM')
    expect((await s.exited).code).toBe(0)
  })

  it('is one process, as before, with --workers 1', async () => {
    const s = await spawnServerCli(['--models', await modelsDir(), '--workers', '1'])
    expect(lines(s, 'primary_started')).toEqual([])
    expect(lines(s, 'listening')[0]).not.toHaveProperty('worker')
    expect((await predict(s.url)).status).toBe(200)
    expect(
      sample(
        (await scrape(s.url)).text,
        'modelgate_requests_total{model="m",version="1",status="200"}',
      ),
    ).toBe(1)
  })

  it('stops with the status of a worker that cannot start, and warns of more workers than cores', async () => {
    const workers = availableParallelism() + 1
    const s = startServerCli(['--models', '/nonexistent/models', '--workers', String(workers)])
    expect((await s.exited).code).toBe(2)
    expect(s.stderr()).toMatch(/models directory \/nonexistent\/models does not exist/)
    expect(lines(s, 'workers_exceed_cores')).toMatchObject([{ workers, cores: workers - 1 }])
    expect(lines(s, 'worker_failed_to_start').length).toBeGreaterThanOrEqual(1)
  })
})
