import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { waitReady } from './api-client.js'
import { gateProcessesOf, killLeftoverGates } from './gate-processes.js'

// The built CLI, run as a user runs it (`npm test` builds first).
export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.js')

type Exit = { code: number | null; signal: NodeJS.Signals | null }

export interface CliProcess {
  readonly child: ChildProcess
  /** Everything written to stdout and stderr so far. */
  output(): string
  /** What was written to stderr alone. */
  stderr(): string
  /** Resolves once a log line with this event has been printed (after `from` chars of output). */
  waitForEvent(event: string, from?: number, timeoutMs?: number): Promise<any>
  /** The process has exited (its gate processes may still hold its output open). */
  readonly exited: Promise<Exit>
  /** The process has exited and every line it printed has been read. */
  readonly closed: Promise<Exit>
  /** SIGKILL the server; resolves when it is gone, with the pids of the gate processes it had forked. */
  kill9(): Promise<number[]>
  /** The gate processes the server has forked so far. */
  gatePids(): Promise<number[]>
}

export interface CliServer extends CliProcess {
  readonly url: string
}

/**
 * `modelgate serve --port 0 <args>` in a process of its own, its output collected; it has not
 * necessarily started (see spawnServerCli). When the test finishes it is killed with SIGKILL if it
 * still runs, and so are the gate processes left by a kill9.
 */
export function startServerCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  const waiters = new Set<() => void>()
  const onData = (d: Buffer) => {
    out += d
    for (const w of waiters) w()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  child.stderr!.on('data', (d: Buffer) => (err += d))
  const ended = (event: 'exit' | 'close') =>
    new Promise<Exit>((resolve) => child.once(event, (code, signal) => resolve({ code, signal })))
  const exited = ended('exit')
  const closed = ended('close')
  const waitForEvent = (event: string, from = 0, timeoutMs = 20_000) =>
    new Promise<any>((resolve, reject) => {
      const check = () => {
        for (const line of out.slice(from).split('\n')) {
          if (!line.includes(`"event":"${event}"`)) continue
          try {
            const record = JSON.parse(line)
            if (record.event === event) {
              done()
              resolve(record)
              return
            }
          } catch {
            // a line still being written
          }
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(
          new Error(`no '${event}' log line within ${timeoutMs} ms; output:\n${out.slice(-4000)}`),
        )
      }, timeoutMs)
      const onExit = () => {
        done()
        reject(
          new Error(`the server exited before logging '${event}'; output:\n${out.slice(-4000)}`),
        )
      }
      const done = () => {
        clearTimeout(timer)
        waiters.delete(check)
        child.off('exit', onExit)
      }
      waiters.add(check)
      child.once('exit', onExit)
      check()
    })
  // The gate processes of a server killed here: they outlive it until they notice.
  const orphans: number[] = []
  const cli: CliProcess = {
    child,
    output: () => out,
    stderr: () => err,
    waitForEvent,
    exited,
    closed,
    gatePids: () => gateProcessesOf(child.pid!),
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return []
      const children = await gateProcessesOf(child.pid!)
      orphans.push(...children)
      child.kill('SIGKILL')
      await exited
      return children
    },
  }
  onTestFinished(async () => {
    await cli.kill9()
    killLeftoverGates(orphans)
  })
  return cli
}

/**
 * startServerCli, resolved once the server listens and is ready (/readyz answers 200), with its
 * URL. `timeoutMs` bounds the wait for the listening line.
 */
export async function spawnServerCli(
  args: string[],
  o: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliServer> {
  const cli = startServerCli(args, o.env)
  const listening = await cli.waitForEvent('listening', 0, o.timeoutMs)
  const url = listening.url as string
  await waitReady(url)
  return { ...cli, url }
}
