import { spawn } from 'node:child_process'
import { createServer, type Socket } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { CLI } from '../support/cli-server.js'
import { historyOf, modelDetail, predict } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { serve } from '../support/servers.js'

/**
 * `modelgate status | history | rollback | promote`: the built CLI, run as a user runs it, against
 * a real server started here. The CLI runs in a process of its own, asynchronously: the server
 * answers from this process's event loop.
 */

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Our environment without any MODELGATE_* (a token or URL set by the caller of the tests). */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('MODELGATE_')),
  )
  return { ...base, ...env }
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(env) })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Two versions of `adder` (x + 1, x + 2): version 2 serves, version 1 never has. */
async function twoVersions(dir: string): Promise<void> {
  await writeVersion(dir, 'adder', 1, addConstModel(1))
  await writeVersion(dir, 'adder', 2, addConstModel(2))
}

/** A port where nothing listens: one the system handed out, then closed. */
async function deadPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A server that accepts connections and never answers. */
async function silentServer(): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => sockets.add(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

/** A model's detail without its versions' live figures, which a one-second timer moves. */
const withoutLive = (d: any) => ({
  ...d,
  versions: d.versions.map(({ live: _, ...v }: any) => v),
})

describe('modelgate status', () => {
  it('lists every model, one row each, with the active version and its live figures', async () => {
    const t = await serve(async (dir) => {
      await twoVersions(dir)
      await writeVersion(dir, 'other', 1, addConstModel(5))
    })
    await predict(t.url, 'adder')
    const r = await cli(['status', '--url', t.url])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const [header, ...rows] = r.stdout.trimEnd().split('\n')
    expect(header).toMatch(
      /^MODEL\s+ACTIVE\s+STATE\s+VERSIONS\s+REQUESTS\s+ERRORS\s+P99 MS\s+ACCURACY\s+IN PROGRESS$/,
    )
    expect(rows).toHaveLength(2)
    expect(rows[0]).toMatch(
      /^adder\s+2\s+serving\s+1 discovered, 1 active\s+1\s+0\s+[\d.]+\s+-\s+-$/,
    )
    expect(rows[1]).toMatch(/^other\s+1\s+serving\s+1 active\s+0\s+0\s+-\s+-\s+-$/)
    // Columns line up: each header starts where its cells do.
    expect(rows[0]!.indexOf('serving')).toBe(header!.indexOf('STATE'))

    const json = await cli(['status', '--url', t.url, '--json'])
    expect(json.code).toBe(0)
    const body = JSON.parse(json.stdout)
    expect(body.models.map((m: any) => m.name)).toEqual(['adder', 'other'])
    // Live figures (a rate read every second) may move between the two reads.
    expect(withoutLive(body.models[0])).toEqual(withoutLive(await modelDetail(t.url, 'adder')))
  })

  it("shows one model's versions, why each is where it is, and its probation", async () => {
    const t = await serve(twoVersions)
    const r = await cli(['status', 'adder', '--url', t.url])
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe('adder: version 2 serves')
    expect(lines[1]).toMatch(
      /^VERSION\s+STATUS\s+REQUESTS\s+ERRORS\s+P50 MS\s+P99 MS\s+ACCURACY\s+REASON$/,
    )
    expect(lines[2]).toMatch(/^\s+1\s+discovered\s/)
    expect(lines[3]).toMatch(/^\s+2\s+active\s/)
    expect(r.stdout).toContain('probation: none\n')
    expect(r.stdout).toContain('rollout: none\n')
    expect(r.stdout).toContain('drift: not watched')

    const json = await cli(['status', 'adder', '--url', t.url, '--json'])
    // The server's answer as is; its live figures (a rate read every second) may move between reads.
    expect(withoutLive(JSON.parse(json.stdout))).toEqual(
      withoutLive(await modelDetail(t.url, 'adder')),
    )
  })

  it('exits 1 for an unknown model, naming it, with the error code', async () => {
    const t = await serve(twoVersions)
    const r = await cli(['status', 'nope', '--url', t.url])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/model_not_found \(HTTP 404\): .*'nope'/)
    const json = await cli(['status', 'nope', '--url', t.url, '--json'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'model_not_found', message: expect.stringContaining("'nope'") },
    })
    for (const command of [
      ['history', 'nope'],
      ['rollback', 'nope'],
      ['promote', 'nope', '1'],
    ]) {
      const other = await cli([...command, '--url', t.url])
      expect(other.code, command.join(' ')).toBe(1)
      expect(other.stderr).toMatch(/model_not_found .*'nope'/)
    }
  })
})

describe('modelgate rollback, promote and history', () => {
  it('promotes a version, rolls back, and the history tells it; --json is the server answer', async () => {
    const t = await serve(twoVersions)
    const promote = await cli(['promote', 'adder', '1', '--url', t.url])
    expect(promote.stderr).toBe('')
    expect(promote.code).toBe(0)
    expect(promote.stdout).toMatch(
      /^adder: version 1 serves, was 2; cold: loaded and gated in [\d.]+ ms\n/,
    )
    expect(promote.stdout).toMatch(/\n  smoke +\w+/)

    // Version 1 is on probation now: its rules, as they stand.
    const status = await cli(['status', 'adder', '--url', t.url])
    expect(status.stdout).toMatch(
      /\nprobation: version 1 against version 2 until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\n/,
    )
    expect(status.stdout).toMatch(
      /\n  RULE\s+STATUS\s+OBSERVED\s+LIMIT\s+SAMPLE\n  error_rate\s+waiting\s/,
    )
    const overview = await cli(['status', '--url', t.url])
    expect(overview.stdout).toMatch(/\sprobation of version 1 against version 2 until /)

    const again = await cli(['promote', 'adder', '1', '--url', t.url])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(
      /conflict \(HTTP 409\): version 1 of model 'adder' is already active/,
    )

    // Version 2 served and is retained: back to it is a pointer swap.
    const rollback = await cli(['rollback', 'adder', '--reason', 'INC-7', '--url', t.url, '--json'])
    expect(rollback.code).toBe(0)
    expect(JSON.parse(rollback.stdout)).toEqual({
      model: 'adder',
      from: 1,
      to: 2,
      warm: true,
      ms: expect.any(Number),
      reason: 'INC-7',
    })
    expect((await predict(t.url, 'adder')).version).toBe(2)

    const to = await cli(['rollback', 'adder', '--to', '1', '--url', t.url])
    expect(to.code).toBe(0)
    expect(to.stdout).toMatch(
      /^adder: rolled back from version 2 to 1; (warm|cold)\b.*; reason: manual rollback\n/,
    )
    const back = await cli(['promote', 'adder', '2', '--skip-probation', '--url', t.url])
    expect(back.code).toBe(0)
    expect((await modelDetail(t.url, 'adder')).probation).toBeNull()

    const history = await cli(['history', 'adder', '--limit', '3', '--url', t.url])
    expect(history.code).toBe(0)
    const [header, ...rows] = history.stdout.trimEnd().split('\n')
    expect(header).toMatch(/^TIME\s+EVENT\s+VERSION\s+TRIGGER\s+DETAIL$/)
    expect(rows).toHaveLength(3)
    expect(rows[0]).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  rolled_back\s+1  admin\s+to 2, warm, INC-7$/,
    )
    expect(rows[1]).toMatch(/rolled_back\s+2  admin\s+to 1, (warm|cold), manual rollback$/)
    // No smoke cases: the gate could not check its answers.
    expect(rows[2]).toMatch(/promoted\s+2  admin\s+from 1, unverified$/)

    const json = await cli(['history', 'adder', '--limit', '3', '--url', t.url, '--json'])
    expect(JSON.parse(json.stdout)).toEqual({
      model: 'adder',
      entries: await historyOf(t.url, 'adder', {}, 3),
    })
  })

  it('says why a rollback has nowhere to go (exit 1, the conflict)', async () => {
    const t = await serve(twoVersions)
    const r = await cli(['rollback', 'adder', '--url', t.url])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/conflict \(HTTP 409\): .*no earlier version/)
  })
})

describe('modelgate admin commands with an admin token', () => {
  const TOKEN = 'cli-test-token-0123456789'

  it('sends MODELGATE_ADMIN_TOKEN or --token; a missing or wrong one exits 1 with the 401', async () => {
    const t = await serve(twoVersions, {}, { MODELGATE_ADMIN_TOKEN: TOKEN })
    const missing = await cli(['history', 'adder', '--url', t.url])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(
      /unauthorized \(HTTP 401\): admin routes need "Authorization: Bearer <token>"/,
    )

    const wrong = await cli(['history', 'adder', '--url', t.url, '--token', 'not-the-token-at-all'])
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/unauthorized \(HTTP 401\): the admin token is not valid/)
    expect(wrong.stdout + wrong.stderr).not.toContain('not-the-token-at-all')

    const env = await cli(['history', 'adder', '--url', t.url], { MODELGATE_ADMIN_TOKEN: TOKEN })
    expect(env.code).toBe(0)
    expect(env.stdout).toMatch(/promoted\s+2  startup/)
    expect(env.stdout + env.stderr).not.toContain(TOKEN)

    const flag = await cli(['promote', 'adder', '1', '--url', t.url, '--token', TOKEN])
    expect(flag.code).toBe(0)
    expect(flag.stdout + flag.stderr).not.toContain(TOKEN)
  })
})

describe('modelgate client commands without a server', () => {
  it('exits 3 naming the URL when nothing listens there', async () => {
    const url = `http://127.0.0.1:${await deadPort()}`
    for (const args of [['status'], ['rollback', 'm'], ['history', 'm']]) {
      const r = await cli([...args, '--url', url])
      expect(r.code, args.join(' ')).toBe(3)
      expect(r.stderr).toMatch(new RegExp(`cannot reach ${url}/\\S*: connection refused`))
    }
    // The URL from the environment.
    const env = await cli(['status'], { MODELGATE_URL: url })
    expect(env.code).toBe(3)
    expect(env.stderr).toContain(url)
  })

  it('exits 3 when the server does not answer within --timeout', async () => {
    const url = await silentServer()
    const r = await cli(['status', '--url', url, '--timeout', '0.3'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(new RegExp(`no answer from ${url}/models within 0.3 s`))
  })

  it('exits 2 on a usage error, before any request, naming what was wrong', async () => {
    // A dead URL: a usage error must not get as far as a request (exit 3).
    const url = `http://127.0.0.1:${await deadPort()}`
    const cases: [string[], RegExp][] = [
      [['history'], /missing MODEL/],
      [['promote', 'm'], /missing VERSION/],
      [['promote', 'm', 'two'], /VERSION must be a version number .*'two'/],
      [['rollback', 'm', '--to', '0'], /--to must be a version number .*'0'/],
      [['status', 'a', 'b'], /unexpected argument 'b'/],
      [['status', '--verbose'], /--verbose/],
      [['history', 'm', '--limit', '500'], /--limit must be a whole number from 1 to 200/],
      [['status', '--url', 'localhost:8080'], /--url 'localhost:8080' is not http/],
      [['status', '--url', 'http://u:secret@h/'], /--url must not hold credentials/],
      [['status', '--timeout', '0'], /--timeout '0'/],
    ]
    for (const [args, message] of cases) {
      const r = await cli(args.includes('--url') ? args : [...args, '--url', url])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr, args.join(' ')).toMatch(message)
      expect(r.stderr).not.toContain('secret')
    }
  })

  it('documents the options and the exit statuses in --help', async () => {
    for (const command of ['status', 'history', 'rollback', 'promote']) {
      const r = await cli([command, '--help'])
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/--url URL/)
      expect(r.stdout).toMatch(/MODELGATE_ADMIN_TOKEN/)
      expect(r.stdout).toMatch(/ps\)/)
      expect(r.stdout).toMatch(
        /Exit status: 0 .*; 1 the server said no .*; 2 usage error; 3 the server could not\s+be\s+reached/s,
      )
    }
    const top = await cli(['--help'])
    for (const command of ['status', 'history', 'rollback', 'promote'])
      expect(top.stdout).toContain(`modelgate ${command}`)
  })
})
