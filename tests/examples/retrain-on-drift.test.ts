import { execFile, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it, onTestFinished } from 'vitest'
import { eventsOf, historyOf, modelDetail, versionView } from '../support/api-client.js'
import { spawnServerCli } from '../support/cli-server.js'
import { tempDir } from '../support/servers.js'
import { waitFor } from '../support/wait-for.js'

/**
 * examples/retrain-on-drift run as its README runs it, every piece a process of its own: the
 * real server (`--webhook`, signed), the example's receiver, its setup and traffic scripts.
 * Shifted traffic -> drift_detected -> a retrained version shipped -> promoted -> probation passed.
 */

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'retrain-on-drift')
const SECRET = 'retrain-on-drift-test-secret'
const MODEL = 'sensor'
const run = promisify(execFile)

/** One of the example's scripts to its end; its last line of output, as JSON. */
async function script(name: string, args: string[]): Promise<any> {
  const { stdout } = await run(process.execPath, [join(EXAMPLE, name), ...args])
  return JSON.parse(stdout.trim().split('\n').at(-1)!)
}

interface Receiver {
  readonly url: string
  /** Its log lines so far, parsed. */
  readonly lines: any[]
  /** The first log line of `event` passing `check`, once it is printed. */
  line(event: string, check?: (line: any) => boolean): Promise<any>
}

async function startReceiver(models: string): Promise<Receiver> {
  const child = spawn(
    process.execPath,
    [join(EXAMPLE, 'receiver.mjs'), '--models', models, '--port', '0', '--poll-seconds', '0.2'],
    {
      env: { ...process.env, MODELGATE_WEBHOOK_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  onTestFinished(() => {
    child.kill('SIGKILL')
  })
  const lines: any[] = []
  let partial = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => {
    const text = partial + d.toString('utf8')
    const complete = text.split('\n')
    partial = complete.pop()!
    for (const l of complete) lines.push(JSON.parse(l))
  })
  child.stderr!.on('data', (d: Buffer) => (stderr += d))
  const line = async (event: string, check: (line: any) => boolean = () => true) => {
    const found = () => lines.find((l) => l.event === event && check(l))
    await waitFor(() => found() !== undefined || child.exitCode !== null, `receiver: ${event}`)
    if (!found()) throw new Error(`the receiver exited: ${stderr}`)
    return found()
  }
  const listening = await line('listening')
  return { url: listening.url, lines, line }
}

/** Rows and right answers per world and per version that answered, as the traffic script saw them. */
class Tally {
  readonly #counts = new Map<string, { rows: number; right: number }>()

  add(report: { world: string; answeredBy: Record<string, { rows: number; right: number }> }) {
    for (const [version, { rows, right }] of Object.entries(report.answeredBy)) {
      const key = `${report.world}/${version}`
      const c = this.#counts.get(key) ?? { rows: 0, right: 0 }
      this.#counts.set(key, { rows: c.rows + rows, right: c.right + right })
    }
  }

  accuracy(world: string, version: number): number {
    const c = this.#counts.get(`${world}/${version}`)!
    return c.right / c.rows
  }
}

function sign(body: string): string {
  return `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`
}

describe('examples/retrain-on-drift', () => {
  it('retrains on drift from the payload log and feedback, and modelgate promotes the new version and passes its probation', async () => {
    const models = join(await tempDir(), 'models')
    const setup = await script('setup.mjs', ['--models', models])
    expect(setup).toMatchObject({ model: MODEL, version: 1 })
    const receiver = await startReceiver(models)
    const server = await spawnServerCli(['--models', models, '--webhook', receiver.url], {
      env: { MODELGATE_WEBHOOK_SECRET: SECRET },
    })
    const history = () => historyOf(server.url, MODEL)
    const tally = new Tally()
    let seed = 1
    const traffic = async (world: string, rows: number) =>
      tally.add(
        await script('traffic.mjs', [
          ...['--url', server.url, '--world', world],
          ...['--rows', String(rows), '--seed', String(seed++)],
        ]),
      )
    /** New-world traffic until `done`; a verdict against version 2 ends the wait at once. */
    const newWorldUntil = async (done: (entries: any[]) => boolean, what: string) => {
      await waitFor(
        async () => {
          const entries = await history()
          const failed = entries.find(
            (e) => e.version === 2 && ['rejected', 'auto_rolled_back'].includes(e.event),
          )
          if (failed) throw new Error(`version 2: ${JSON.stringify(failed)}`)
          if (done(entries)) return true
          await traffic('new', 100)
          return false
        },
        what,
        60_000,
      )
    }

    // The first 500 rows the drift monitor counts are its reference, fixed on the drift timer's
    // next tick. Rows are not counted while it still looks for reference.json, nor between a full
    // reference and that tick: old-world rows until it is fixed.
    await waitFor(async () => {
      if ((await modelDetail(server.url, MODEL)).drift.referenceReady) return true
      await traffic('old', 100)
      return false
    }, 'the drift reference')
    await newWorldUntil((e) => eventsOf(e, 'drift_detected').length > 0, 'drift_detected')
    const [drift] = eventsOf(await history(), 'drift_detected')
    const drifted = drift.features.map((f: any) => `${f.input}/${f.feature}`)
    expect(drifted).toContain('features/0')

    // The receiver waits for labels given since the alarm. Meanwhile: a second trigger for the
    // same model starts no second retrain, and an unsigned or forged POST is refused.
    expect(await receiver.line('retrain_started')).toMatchObject({ model: MODEL, version: 1 })
    const again = JSON.stringify({
      id: 1000,
      type: 'drift_detected',
      model: MODEL,
      version: 1,
      time: new Date().toISOString(),
    })
    const post = (headers: Record<string, string>) =>
      fetch(receiver.url, { method: 'POST', headers, body: again })
    expect((await post({})).status).toBe(401)
    expect((await post({ 'x-modelgate-signature': sign(`${again} `) })).status).toBe(401)
    expect((await post({ 'x-modelgate-signature': sign(again) })).status).toBe(202)
    expect(await receiver.line('retrain_skipped')).toMatchObject({ model: MODEL })

    await newWorldUntil((e) => eventsOf(e, 'promoted', 2).length > 0, 'version 2 promoted')
    const shipped = await receiver.line('version_shipped')
    expect(shipped).toMatchObject({ model: MODEL, version: 2 })
    expect(shipped.holdoutAccuracy).toBeGreaterThanOrEqual(0.8)
    const [promoted] = eventsOf(await history(), 'promoted', 2)
    expect(promoted).toMatchObject({ sha256: shipped.sha256, trigger: 'watch' })
    const smoke = promoted.stages.find((s: any) => s.stage === 'smoke')
    expect(smoke.status).toBe('passed')
    expect(promoted.unverified).toBeFalsy()

    await newWorldUntil((e) => eventsOf(e, 'probation_passed', 2).length > 0, 'probation passed')
    const [passed] = eventsOf(await history(), 'probation_passed', 2)
    expect(passed.insufficient).toBeFalsy()
    for (const rule of passed.rules) expect(rule.status, JSON.stringify(rule)).toBe('ok')

    // Version 1 was right in its own world and is not in the new one; version 2 is.
    expect(tally.accuracy('old', 1)).toBeGreaterThan(0.9)
    expect(tally.accuracy('new', 1)).toBeLessThan(0.7)
    const live = versionView(await modelDetail(server.url, MODEL), 2).live
    expect(live.accuracy).toBeGreaterThan(0.9)
    expect(live.accuracy).toBeGreaterThan(tally.accuracy('new', 1))
    expect(tally.accuracy('new', 2)).toBeGreaterThan(0.9)

    // Shipped once, whole, with its checksum; nothing left in staging.
    expect((await readdir(join(models, MODEL))).sort()).toEqual(['1', '2', 'model.json'])
    expect((await readdir(join(models, MODEL, '2'))).sort()).toEqual([
      'model.onnx',
      'model.onnx.sha256',
      'smoke.json',
    ])
    expect(await readFile(join(models, MODEL, '2', 'model.onnx.sha256'), 'utf8')).toBe(
      `${shipped.sha256}  model.onnx\n`,
    )
    expect(await readdir(join(models, '.retrain'))).toEqual([])
    expect(receiver.lines.filter((l) => l.event === 'version_shipped')).toHaveLength(1)
  }, 120_000)
})
