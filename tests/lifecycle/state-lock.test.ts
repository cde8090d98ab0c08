import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadServeConfig } from '../../src/config.js'
import { createMemoryLogger } from '../../src/log.js'
import { startServer } from '../../src/server.js'
import { predict, waitReady } from '../support/api-client.js'
import { startServerOver, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'
import {
  CLI,
  killLeftoverGates,
  modelsDirWithV1,
  spawnCli,
  type CliServer,
} from './lifecycle-support.js'

/**
 * Issue: "two servers on one state directory start silently and diverge". The second is refused at
 * start, naming the first; a lock left by a server killed with SIGKILL does not hold up its restart.
 */

const running = new Set<TestServer>()
const clis = new Set<CliServer>()
const leftovers: number[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const s of running) await s.close()
  running.clear()
  for (const c of clis) leftovers.push(...(await c.kill9()))
  clis.clear()
  killLeftoverGates(leftovers.splice(0))
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

const modelsDir = () => modelsDirWithV1(dirs, 'modelgate-lock-')

async function startCli(dir: string): Promise<CliServer> {
  const cli = await spawnCli(dir)
  clis.add(cli)
  await waitReady(cli.url)
  return cli
}

/**
 * `modelgate serve` expected to refuse to start: its exit code and what it printed. One that
 * starts listening instead is stopped at once, and answers `code: null`.
 */
function refusedCli(dir: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--models', dir, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const onData = (d: Buffer) => {
    output += d
    if (output.includes('"event":"listening"')) child.kill('SIGKILL')
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })))
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
    running.add(await startServerOver(dir))
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
    leftovers.push(...(await first.kill9()))
    clis.delete(first)
    expect(existsSync(join(dir, '.modelgate', 'server.lock'))).toBe(true) // SIGKILL: nothing cleaned up

    const second = await startCli(dir)
    const takeover = await second.waitForEvent('state_lock_taken_over')
    expect(takeover.previous).toMatchObject({ pid: first.child.pid })
    expect(await predict(second.url, 'adder')).toMatchObject({ status: 200, version: 1 })
  })

  it('close releases the state directory: the lock and its owner file are gone, and a new server starts', async () => {
    const dir = await modelsDir()
    const s = await startServerOver(dir)
    expect(existsSync(join(dir, '.modelgate', 'server.lock'))).toBe(true)
    await s.close()
    expect(existsSync(join(dir, '.modelgate', 'server.lock'))).toBe(false)
    expect(existsSync(join(dir, '.modelgate', 'server.lock.json'))).toBe(false)
    const again = await startServerOver(dir)
    running.add(again)
    expect(again.logs.some((l) => l.event === 'state_lock_taken_over')).toBe(false)
  })
  it('a lock deleted from under the server (its state directory removed) is taken again', async () => {
    const dir = await modelsDir()
    const s = await startServerOver(dir)
    running.add(s)
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
