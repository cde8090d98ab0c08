import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { postJson, waitActive } from '../support/api-client.js'
import { addConstModel } from '../support/models.js'
import { serveOver, tempModelsDir } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'

/** What POST /predict serves must not change because another model was added beside it. */

const X = { inputs: [[1, 2, 3, 4]] }

describe('the default model', () => {
  /** A models directory holding version 1 of each of `models`, the first x + 1, the next x + 2, ... */
  const modelsDir = (...models: string[]): Promise<string> =>
    tempModelsDir(async (dir) => {
      for (const [i, m] of models.entries()) await dropVersion(dir, m, 1, addConstModel(i + 1))
    })

  const recorded = async (models: string) =>
    JSON.parse(await readFile(join(models, '.modelgate', 'state.json'), 'utf8')).defaultModel

  it('stays the model that served alone when a second model is dropped beside it, across restarts', async () => {
    const models = await modelsDir('first')
    const t = await serveOver(models)
    expect((await postJson(`${t.url}/predict`, X)).body.model).toBe('first')
    await waitFor(
      async () => (await recorded(models).catch(() => undefined)) === 'first',
      'the default to be recorded',
    )

    // A client calls /predict the whole time the second model lands.
    const answers: { status: number; model: string }[] = []
    let calling = true
    const client = (async () => {
      while (calling) {
        const r = await postJson(`${t.url}/predict`, X)
        answers.push({ status: r.status, model: r.body.model })
      }
    })()
    await dropVersion(models, 'second', 1, addConstModel(9))
    await waitActive(t.url, 'second', 1)
    const landed = answers.length
    await waitFor(() => answers.length > landed + 20, 'more answers after the second model serves')
    calling = false
    await client
    expect(answers.filter((a) => a.status !== 200 || a.model !== 'first')).toEqual([])
    expect(t.logs.some((l) => l.event === 'default_model_ambiguous')).toBe(false)

    await t.close()
    const again = await serveOver(models)
    expect((await postJson(`${again.url}/predict`, X)).body.model).toBe('first')
  })

  it('when nothing was chosen and several models serve, /predict is ambiguous: said once, as it happens', async () => {
    const models = await modelsDir('a', 'b')
    const t = await serveOver(models)
    const r = await postJson(`${t.url}/predict`, X)
    expect(r.status).toBe(404)
    expect(r.body.error.code).toBe('no_default_model')
    expect(r.body.error.message).toMatch(/--default-model/)
    expect(t.logs.filter((l) => l.event === 'default_model_ambiguous')).toHaveLength(1)
    expect(t.logs.find((l) => l.event === 'default_model_ambiguous')).toMatchObject({
      level: 'warn',
      models: ['a', 'b'],
    })
    await dropVersion(models, 'c', 1, addConstModel(3))
    await waitActive(t.url, 'c', 1)
    expect(t.logs.filter((l) => l.event === 'default_model_ambiguous')).toHaveLength(1)
  })

  it('--default-model chooses, is recorded, and holds after a restart without the flag', async () => {
    const models = await modelsDir('a', 'b')
    const t = await serveOver(models, { defaultModel: 'b' })
    expect((await postJson(`${t.url}/predict`, X)).body.model).toBe('b')
    await t.close()
    expect(await recorded(models)).toBe('b')
    const again = await serveOver(models)
    expect((await postJson(`${again.url}/predict`, X)).body.model).toBe('b')
    expect(again.logs.some((l) => l.event === 'default_model_ambiguous')).toBe(false)
  })
})
