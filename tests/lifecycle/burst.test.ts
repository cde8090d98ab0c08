import { readdirSync, readFileSync } from 'node:fs'
import { copyFile, mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitActive, waitStatus } from '../support/api-client.js'
import { spawnServerCli } from '../support/cli-server.js'
import { addConstModel } from '../support/models.js'
import { tempModelsDir } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'

/**
 * Issue: "a burst of version folders wedges, then kills the server". While a gate ran, every
 * watcher event re-listed the whole model folder, all at once: 1,000 folders meant millions of
 * file-system calls in flight and a heap OOM. The server runs as its own process with a capped
 * heap, so a regression ends that process, not the test run.
 */

const COUNT = 1000

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

/** inotify watches the process holds (Linux /proc): chokidar adds one per folder and file it watches. */
function inotifyWatches(pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      n += readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/^inotify wd:/gm)?.length ?? 0
    } catch {
      // closed meanwhile
    }
  }
  return n
}

/** GET /healthz back to back until stopped; every request is recorded, answered or not. */
function pollHealth(url: string): { stop(): Promise<{ answered: number; failures: string[] }> } {
  let stop = false
  let answered = 0
  const failures: string[] = []
  const loop = (async () => {
    while (!stop) {
      try {
        const r = await fetch(`${url}/healthz`)
        await r.arrayBuffer()
        if (r.status === 200) answered++
        else failures.push(`status ${r.status}`)
      } catch (e) {
        failures.push(String(e))
        return // the server is gone
      }
    }
  })()
  return {
    async stop() {
      stop = true
      await loop
      return { answered, failures }
    },
  }
}

describe('a burst of version folders', () => {
  it(`${COUNT} folders renamed in while a gate runs settle to the newest, and /healthz answers throughout`, async () => {
    const models = await tempModelsDir(async (dir) => {
      await mkdir(join(dir, 'adder', '1'), { recursive: true })
      await writeFile(join(dir, 'adder', '1', 'model.onnx'), addConstModel(1))
    }, 'modelgate-burst-')
    const root = dirname(models)
    const cli = await spawnServerCli(
      ['--models', models, '--stability-ms', '100', '--rescan-ms', '3600000'],
      { env: { NODE_OPTIONS: '--max-old-space-size=384' } },
    )

    // Hold the gate process (it gated v1), so the gate of version 2 is in flight while the burst lands.
    const [gate] = await cli.gatePids()
    expect(gate).toBeDefined()
    signal(gate!, 'SIGSTOP')
    onTestFinished(() => signal(gate!, 'SIGCONT'))
    await dropVersion(models, 'adder', 2, addConstModel(2))
    await waitStatus(cli.url, 'adder', 2, 'validating')

    // Copies of one small file, built beside the models directory and renamed in one after another.
    const staging = join(dirname(models), 'burst')
    const file = join(root, 'one.onnx')
    await writeFile(file, addConstModel(7))
    const newest = COUNT + 2
    for (let v = 3; v <= newest; v++) {
      await mkdir(join(staging, String(v)), { recursive: true })
      await copyFile(file, join(staging, String(v), 'model.onnx'))
    }
    const pid = cli.child.pid!
    const watchesBefore = inotifyWatches(pid)
    const health = pollHealth(cli.url)
    for (let v = 3; v <= newest; v++)
      await rename(join(staging, String(v)), join(models, 'adder', String(v)))
    // The server has taken the burst in once its watcher watches every new folder and its file.
    await waitFor(
      () => {
        if (cli.child.exitCode !== null || cli.child.signalCode !== null)
          throw new Error(`the server exited during the burst:\n${cli.output().slice(-1500)}`)
        return inotifyWatches(pid) >= watchesBefore + 2 * COUNT
      },
      'the server to watch every new folder',
      60_000,
    )
    signal(gate!, 'SIGCONT')

    await waitActive(cli.url, 'adder', newest, 60_000)
    const { answered, failures } = await health.stop()
    expect(failures, 'GET /healthz requests that were not answered 200').toEqual([])
    expect(answered).toBeGreaterThan(0)
    expect(cli.child.exitCode, cli.output().slice(-2000)).toBeNull()
  }, 180_000)
})
