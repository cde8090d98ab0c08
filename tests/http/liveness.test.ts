import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { getJson, type JsonResponse } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { makeTempDir, startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/**
 * Liveness notices a wedged libuv threadpool. The server runs in this process, so the test can
 * wedge the pool for real: one blocking read of a FIFO nobody writes to per thread, exactly what
 * four model folders with a FIFO model.json used to do. Writing to the FIFOs frees the pool again.
 */

const THREADS = Number(process.env.UV_THREADPOOL_SIZE ?? 4)

describe('GET /healthz', () => {
  let t: TestServer
  let dir: string | undefined
  const fifos: string[] = []
  afterAll(async () => {
    for (const f of fifos) {
      try {
        closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK))
      } catch {
        // nobody is blocked on it
      }
    }
    await t?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('answers 503 threadpool_stalled while every threadpool thread is stuck, and 200 once they are free', async () => {
    t = await startTestServer(
      (dir) => writeVersion(dir, 'adder', 1, addConstModel(1)).then(() => undefined),
      { threadpoolStallMs: '300' },
    )
    expect(await getJson(`${t.url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } })

    dir = await makeTempDir('modelgate-fifos-')
    for (let i = 0; i < THREADS; i++) {
      fifos.push(join(dir, `fifo-${i}`))
      execFileSync('mkfifo', [fifos[i]!])
    }
    // Each read blocks one thread in open(2) until a writer comes.
    const reads = fifos.map((f) => readFile(f, 'utf8'))

    let stalled: JsonResponse | undefined
    await waitFor(async () => {
      stalled = await getJson(`${t.url}/healthz`)
      return stalled.status === 503
    }, '/healthz to notice the stuck threadpool')
    // Answered at once and uncompressed (fetch asks for gzip, which needs the stuck threadpool).
    expect(stalled!.headers.get('content-encoding')).toBeNull()
    expect(stalled!.body.error.code).toBe('threadpool_stalled')
    expect(stalled!.body.error.message).toMatch(/^the libuv threadpool has not run a job for \d+ s/)
    expect(t.logs.some((l) => l.event === 'threadpool_stalled')).toBe(true)

    // A writer for each FIFO: every blocked open returns, every read gets its line and the end.
    // A FIFO whose read has not reached open(2) yet (its thread was busy with other work when the
    // probe gave up) has no reader: opening it for writing fails with ENXIO until the read gets there.
    for (const f of fifos) {
      let fd: number | undefined
      await waitFor(() => {
        try {
          fd = openSync(f, constants.O_WRONLY | constants.O_NONBLOCK)
          return true
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e
          return false
        }
      }, `a reader on ${f}`)
      writeSync(fd!, 'released\n')
      closeSync(fd!)
    }
    expect(await Promise.all(reads)).toEqual(fifos.map(() => 'released\n'))
    await waitFor(
      async () => (await getJson(`${t.url}/healthz`)).status === 200,
      '/healthz to recover',
    )
    await waitFor(
      () => t.logs.some((l) => l.event === 'threadpool_recovered'),
      'the recovery to be logged',
    )
  })
})
