import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { GateJob } from '../../src/lifecycle/gate/gate-types.js'
import { X } from '../support/api-client.js'
import { addConstModel } from '../support/models.js'
import { makeTempDir } from '../support/test-server.js'

/** Helpers for the admin, restart, crash and load tests: versions told apart by y = x + v. */

/** The smoke case a version of addConstModel(c) passes (or fails, with `off` != 0). */
export function smokeFor(c: number, off = 0): string {
  return JSON.stringify({
    cases: [
      { name: `adds ${c}`, inputs: { x: X }, expect: { y: [X[0]!.map((v) => v + c + off)] } },
    ],
  })
}

/** Writes `<model>/<version>/model.onnx` = addConstModel(version) (and a passing smoke.json if asked). */
export async function writeConstVersion(
  modelsDir: string,
  model: string,
  version: number,
  o: { smoke?: boolean } = {},
): Promise<void> {
  const dir = join(modelsDir, model, String(version))
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'model.onnx'), addConstModel(version))
  if (o.smoke) await writeFile(join(dir, 'smoke.json'), smokeFor(version))
}

/** history.jsonl as written on disk: every complete line parsed; a torn last line is returned apart. */
export async function readHistoryFile(
  stateDir: string,
): Promise<{ entries: any[]; torn: string | undefined }> {
  const text = await readFile(join(stateDir, 'history.jsonl'), 'utf8').catch(() => '')
  const lines = text.split('\n')
  const last = lines.pop()!
  const entries = lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l))
  return { entries, torn: last === '' ? undefined : last }
}

// The built CLI, run as a user runs it (`npm test` builds first).
export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.js')

export interface CliServer {
  readonly child: ChildProcess
  readonly url: string
  /** Everything written to stdout and stderr so far. */
  output(): string
  /** Resolves once a log line with this event has been printed (after `from` chars of output). */
  waitForEvent(event: string, from?: number, timeoutMs?: number): Promise<any>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILL the server; resolves when it is gone, with the pids of the gate processes it had forked. */
  kill9(): Promise<number[]>
  /** The gate processes the server has forked so far. */
  gatePids(): Promise<number[]>
}

/** Child process ids of `pid` (Linux /proc), so a SIGKILLed server's gate process can be ended too. */
export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return text.trim() === '' ? [] : text.trim().split(/\s+/).map(Number)
}

/** The live gate processes `pid` has forked (an in-process test server's: `process.pid`). */
export async function gateProcessesOf(pid: number): Promise<number[]> {
  return (await childPids(pid)).filter((child) => isGateProcess(child))
}

/** True while `pid` is a live modelgate gate process (checked by its command line, not just the pid). */
export function isGateProcess(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return cmdline.includes('gate-process.js') && state !== 'Z'
  } catch {
    return false
  }
}

/** Ends gate processes a SIGKILLed server left behind (only those it forked; by pid). */
export function killLeftoverGates(pids: readonly number[]): void {
  for (const pid of pids) {
    if (!isGateProcess(pid)) continue
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

export async function spawnCli(
  modelsDir: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<CliServer> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--models', modelsDir, '--port', '0', '--stability-ms', '100', ...args],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  const waiters = new Set<() => void>()
  const onData = (d: Buffer) => {
    out += d
    for (const w of waiters) w()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
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
  const listening = await waitForEvent('listening')
  const url = listening.url as string
  return {
    child,
    url,
    output: () => out,
    waitForEvent,
    exited,
    gatePids: () => gateProcessesOf(child.pid!),
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return []
      const children = await gateProcessesOf(child.pid!)
      child.kill('SIGKILL')
      await exited
      return children
    },
  }
}

/** A models directory holding adder v1 (y = x + 1), in a fresh temp folder added to `cleanup`. */
export async function modelsDirWithV1(cleanup: string[], prefix = 'modelgate-'): Promise<string> {
  const root = await makeTempDir(prefix)
  cleanup.push(root)
  const dir = join(root, 'models')
  await mkdir(dir)
  await writeConstVersion(dir, 'adder', 1)
  return dir
}

/** A gate job for one model file, with no smoke cases, contract or comparison. */
export function plainGateJob(file: string, sha256: string, root: string | undefined): GateJob {
  return {
    model: 'm',
    version: 1,
    candidate: { file, sha256 },
    root,
    sessionOptions: {},
    smoke: { cases: [], minAccuracy: 1, files: [] },
    requireSmoke: false,
    contract: undefined,
    allowSignatureChange: false,
    latency: undefined,
    agreement: undefined,
    reference: undefined,
  }
}
