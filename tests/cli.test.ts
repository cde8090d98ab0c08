import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { CLI, spawnServerCli } from './support/cli-server.js'
import { addConstModel, writeVersion } from './support/models.js'
import { tempModelsDir } from './support/servers.js'

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  })
}

describe('modelgate CLI', () => {
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
    const models = await tempModelsDir(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(10))
    })
    // The models directory from the environment: no --models.
    const server = await spawnServerCli([], { env: { MODELGATE_MODELS: models } })
    const res = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs": [[1, 2, 3, 4]]}',
    })
    expect(await res.json()).toEqual({
      id: expect.any(String),
      model: 'adder',
      version: 1,
      outputs: { y: [[11, 12, 13, 14]] },
    })
    server.child.kill('SIGTERM')
    expect((await server.exited).code).toBe(0)
  })
})
