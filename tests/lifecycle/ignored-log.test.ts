import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addConstModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/** What a listing refuses or skips gets one log line, however often it is listed again. */
describe('ignored and refused paths are logged once', () => {
  let t: TestServer
  let outside: string
  beforeAll(async () => {
    t = await startTestServer(
      async (dir) => {
        await writeVersion(dir, 'adder', 1, addConstModel(1))
        outside = join(dir, '..', 'outside')
        await mkdir(outside)
        await symlink(outside, join(dir, 'adder', '7')) // a version folder that escapes the models directory
      },
      { rescanMs: '100' },
    )
  })
  afterAll(() => t.close())

  it('warns once about a version folder that escapes, through many passes over the folder', async () => {
    // Each rescan passes over every model folder; a second version's arrival makes more passes.
    await writeVersion(t.modelsDir, 'adder', 2, addConstModel(2))
    await waitFor(async () => ((await (await fetch(`${t.url}/models/adder`)).json()) as { active: number }).active === 2, 'version 2 to serve')
    const refusals = t.logs.filter((r) => r.event === 'path_refused' && String(r.path).endsWith(join('adder', '7')))
    expect(refusals).toHaveLength(1)
  })
})
