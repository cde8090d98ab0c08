import { existsSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadServeConfig } from '../../src/config.js'
import { createMemoryLogger } from '../../src/log.js'
import { startServer } from '../../src/server.js'
import { predict } from '../support/api-client.js'
import { spawnServerCli, startServerCli } from '../support/cli-server.js'
import { serveOver } from '../support/servers.js'
import { waitFor } from '../support/wait-for.js'
import { modelsDirWithV1 } from './lifecycle-support.js'

/**
 * Issue: "two servers on one state directory start silently and diverge". The second is refused at
 * start, naming the first; a lock left by a server killed with SIGKILL does not hold up its restart.
 */

const modelsDir = () => modelsDirWithV1('modelgate-lock-')

const startCli = (dir: string) => spawnServerCli(['--models', dir, '--stability-ms', '100'])

/**
 * `modelgate serve` expected to refuse to start: its exit code and what it printed. One that
 * starts listening instead is stopped at once, and answers `code: null`.
 */
async function refusedCli(dir: string): Promise<{ code: number | null; output: string }> {
  const cli = startServerCli(['--models', dir])
  cli.waitForEvent('listening').then(
    () => cli.child.kill('SIGKILL'),
    () => {}, // it exited (or never listened): what it printed says why
  )
  const { code } = await cli.closed
  return { code, output: cli.output() }
}

describe('one server per state directory', () => {
  it('a second server on the same state directory is refused (exit 2), naming the first', async () => {
    const dir = await modelsDir()
    const first = await startCli(dir)
    const second = await refusedCli(dir)
    expect(second.code).toBe(2)
    expect(second.output).toContain(
      `state directory ${join(dir, '.modelgate')} is in use by another modelgate server (pid ${first.child.pid} on host ${hostname()}, started `,
    )
    expect(second.output).toMatch(/--state-dir/)
    // The first serves on, untouched.
    expect(await predict(first.url, 'adder')).toMatchObject({ status: 200, version: 1 })
  })

  it('a second server in the same process is refused too', async () => {
    const dir = await modelsDir()
    await serveOver(dir)
    const config = loadServeConfig({ models: dir, port: '0', host: '127.0.0.1' }, {})
    await expect(startServer(config, createMemoryLogger())).rejects.toThrow(
      `is in use by another modelgate server (pid ${process.pid} on host ${hostname()}`,
    )
  })

  it('a server killed with SIGKILL is restarted at once: its lock is taken over', async () => {
    const dir = await modelsDir()
    const first = await startCli(dir)
    const owner = JSON.parse(await readFile(join(dir, '.modelgate', 'server.lock.json'), 'utf8'))
    expect(owner).toMatchObject({ pid: first.child.pid, host: hostname() })
    await first.kill9()
    expect(existsSync(join(dir, '.modelgate', 'server.lock'))).toBe(true) // SIGKILL: nothing cleaned up

    const second = await startCli(dir)
    const takeover = await second.waitForEvent('state_lock_taken_over')
    expect(takeover.previous).toMatchObject({ pid: first.child.pid })
    expect(await predict(second.url, 'adder')).toMatchObject({ status: 200, version: 1 })
  })

  it('close releases the state directory: the lock and its owner file are gone, and a new server starts', async () => {
    const dir = await modelsDir()
    const s = await serveOver(dir)
    expect(existsSync(join(dir, '.modelgate', 'server.lock'))).toBe(true)
    await s.close()
    expect(existsSync(join(dir, '.modelgate', 'server.lock'))).toBe(false)
    expect(existsSync(join(dir, '.modelgate', 'server.lock.json'))).toBe(false)
    const again = await serveOver(dir)
    expect(again.logs.some((l) => l.event === 'state_lock_taken_over')).toBe(false)
  })
  it('a lock deleted from under the server (its state directory removed) is taken again', async () => {
    const dir = await modelsDir()
    const s = await serveOver(dir)
    // The server may be writing into it meanwhile (ENOTEMPTY): rm retries.
    await rm(join(dir, '.modelgate'), {
      recursive: true,
      force: true,
      maxRetries: 10,
      retryDelay: 20,
    })
    // Noticed when the lock is next refreshed (every 5 s).
    await waitFor(
      () => s.logs.some((l) => l.event === 'state_lock_regained'),
      'the lock to be taken again',
      15_000,
    )
    expect(existsSync(join(dir, '.modelgate', 'server.lock'))).toBe(true)
    expect(
      JSON.parse(await readFile(join(dir, '.modelgate', 'server.lock.json'), 'utf8')),
    ).toMatchObject({ pid: process.pid })
    expect(await predict(s.url, 'adder')).toMatchObject({ status: 200, version: 1 })
  })
})
