import { spawn, spawnSync } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { waitReady } from './support/api-client.js'
import { addConstModel, writeVersion } from './support/models.js'
import { makeTempDir } from './support/test-server.js'

// The built CLI, run as a user runs it (`npm test` builds first).
const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js')

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  })
}

describe('modelgate CLI', () => {
  const dirs: string[] = []
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
  })

  it('prints help', () => {
    const top = cli(['--help'])
    expect(top.status).toBe(0)
    expect(top.stdout).toMatch(/modelgate serve/)
    const serve = cli(['serve', '--help'])
    expect(serve.status).toBe(0)
    for (const flag of [
      '--models',
      '--port',
      '--host',
      '--state-dir',
      '--default-model',
      '--max-body-size',
    ])
      expect(serve.stdout).toContain(flag)
    expect(serve.stdout).toContain('MODELGATE_PORT')
    // Every description starts in the same column, however long its flag.
    const rows = serve.stdout.split('\n').filter((l) => /^  --/.test(l))
    expect(rows.length).toBeGreaterThan(10)
    const column = (l: string) => /^  \S+(?: \S+)?\s+/.exec(l)![0].length
    expect(new Set(rows.map(column)).size).toBe(1)
    const envRows = serve.stdout.split('\n').filter((l) => /^\s+env MODELGATE_/.test(l))
    expect(envRows.length).toBe(rows.length)
    expect(new Set(envRows.map((l) => l.indexOf('env '))).size).toBe(1)
  })

  it('exits 2 naming a bad flag or an unknown one', () => {
    const bad = cli(['serve', '--port', 'x'])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/invalid --port/)
    const env = cli(['serve'], { MODELGATE_PORT: '-1' })
    expect(env.status).toBe(2)
    expect(env.stderr).toMatch(/invalid MODELGATE_PORT/)
    const unknown = cli(['serve', '--prot', '80'])
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/--prot/)
    const command = cli(['srve'])
    expect(command.status).toBe(2)
    // --webhook repeats: every one is checked, not only the last.
    const webhook = cli(['serve', '--webhook', 'ftp://bad/', '--webhook', 'http://ok.example/'])
    expect(webhook.status).toBe(2)
    expect(webhook.stderr).toMatch(/invalid --webhook: .*'ftp:\/\/bad\/'/)
  })

  it('exits 2 when the models directory does not exist', () => {
    const r = cli(['serve', '--models', '/nonexistent/models', '--port', '0'])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/models directory .* does not exist/)
  })

  it('serves, answers, and exits 0 on SIGTERM', async () => {
    const root = await makeTempDir()
    dirs.push(root)
    const models = join(root, 'models')
    await mkdir(models)
    await writeVersion(models, 'adder', 1, addConstModel(10))
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
      env: { ...process.env, MODELGATE_MODELS: models },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    const url = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (d: Buffer) => {
        out += d
        const m = /"event":"listening","url":"([^"]+)"/.exec(out)
        if (m) resolve(m[1]!)
      })
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)))
    })
    await waitReady(url, 10_000)
    const res = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs": [[1, 2, 3, 4]]}',
    })
    expect(await res.json()).toEqual({
      model: 'adder',
      version: 1,
      outputs: { y: [[11, 12, 13, 14]] },
    })
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
