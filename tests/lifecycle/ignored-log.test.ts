import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitActive } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

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
    await waitActive(t.url, 'adder', 2)
    const refusals = t.logs.filter(
      (r) => r.event === 'path_refused' && String(r.path).endsWith(join('adder', '7')),
    )
    expect(refusals).toHaveLength(1)
  })
})
