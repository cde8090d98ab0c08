import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { waitReady } from './support/api-client.js'
import { spawnServerCli } from './support/cli-server.js'
import { addConstModel, writeVersion } from './support/models.js'
import { tempModelsDir } from './support/servers.js'
import { waitFor } from './support/wait-for.js'

const ROOT = join(import.meta.dirname, '..')

/** The pids whose parent is `pid`, from /proc (what `ps --ppid` reads). */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the name (field 2) may hold spaces, so
      // count from the closing parenthesis.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(entry))
    } catch {
      // the process ended while we looked
    }
  }
  return out
}

/** Every process below `pid`, nearest first. */
function descendantsOf(pid: number): number[] {
  const out: number[] = []
  for (let next = childrenOf(pid); next.length > 0; ) {
    out.push(...next)
    next = next.flatMap(childrenOf)
  }
  return out
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    // A zombie still answers signal 0; it has ended all the same.
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return ''
  }
}

/** Starts `command`, and resolves with the server's URL once it is ready. */
async function startAndWaitReady(
  child: ChildProcess,
): Promise<{ url: string; output: () => string }> {
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  child.stderr!.on('data', (d: Buffer) => (out += d))
  await waitFor(
    () => /"event":"listening"/.test(out) || child.exitCode !== null,
    'the listening line',
    60_000,
  )
  const m = /"event":"listening","url":"([^"]+)"/.exec(out)
  if (!m) throw new Error(`the server did not start: ${out}`)
  const url = m[1]!
  await waitReady(url)
  return { url, output: () => out }
}

describe('the server and its child processes stop together', () => {
  const pids: number[] = []
  afterEach(() => {
    for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })

  function modelsWithOneVersion(): Promise<string> {
    // A version with no recorded verdict: the server gates it, so its gate process exists.
    return tempModelsDir(async (models) => {
      await writeVersion(models, 'm', 1, addConstModel(1))
    })
  }

  it('SIGTERM to `npm start` drains and stops the server and its gate process', async () => {
    const models = await modelsWithOneVersion()
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      env: {
        ...process.env,
        MODELGATE_MODELS: models,
        MODELGATE_PORT: '0',
        MODELGATE_GRPC_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    pids.push(npm.pid!)
    const exited = new Promise<number | null>((resolve) => npm.once('exit', resolve))
    const { url, output } = await startAndWaitReady(npm)
    const below = descendantsOf(npm.pid!)
    pids.push(...below)
    const server = below.find((pid) => commandLine(pid).includes('dist/cli.js serve'))
    const gate = below.find((pid) => commandLine(pid).includes('gate-process'))
    expect(server).toBeDefined()
    expect(gate).toBeDefined()

    npm.kill('SIGTERM')
    await exited
    await waitFor(() => !alive(server!), 'the server process to end')
    await waitFor(() => !alive(gate!), 'the gate process to end')
    expect(output()).toMatch(/"event":"draining"/)
    expect(output()).toMatch(/"event":"stopped"/)
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
  }, 90_000)

  it('the gate process ends when its server is killed with SIGKILL', async () => {
    const models = await modelsWithOneVersion()
    const { child: server } = await spawnServerCli(['--models', models], { timeoutMs: 60_000 })
    const gate = childrenOf(server.pid!).find((pid) => commandLine(pid).includes('gate-process'))
    expect(gate).toBeDefined()
    pids.push(gate!)

    server.kill('SIGKILL')
    await waitFor(() => !alive(server.pid!), 'the server process to end')
    await waitFor(() => !alive(gate!), 'the orphaned gate process to notice and end')
  }, 60_000)
})
