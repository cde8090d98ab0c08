import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigFileError } from '../../src/repository/model-config.js'
import { DEFAULT_TOLERANCE, readSmokeSet } from '../../src/repository/smoke-file.js'

/** smoke.json: zod-validated with errors that name the path; model-level plus version-level. */

let modelDir: string
beforeEach(async () => {
  modelDir = join(await mkdtemp(join(tmpdir(), 'modelgate-smoke-')), 'iris')
  await mkdir(join(modelDir, '2'), { recursive: true })
})
afterEach(() => rm(join(modelDir, '..'), { recursive: true, force: true }))

const versionDir = () => join(modelDir, '2')

async function put(dir: string, value: unknown): Promise<string> {
  const path = join(dir, 'smoke.json')
  await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value))
  return path
}

async function errorOf(promise: Promise<unknown>): Promise<ConfigFileError> {
  const e = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(e).toBeInstanceOf(ConfigFileError)
  return e as ConfigFileError
}

const x = [[5.1, 3.5, 1.4, 0.2]]

describe('readSmokeSet: defaults', () => {
  it('is empty without any smoke file', async () => {
    expect(await readSmokeSet(undefined, modelDir, versionDir())).toEqual({
      cases: [],
      minAccuracy: 1,
      files: [],
    })
    expect(await readSmokeSet(undefined, modelDir, undefined)).toEqual({
      cases: [],
      minAccuracy: 1,
      files: [],
    })
  })

  it('fills in the tolerance, finite: true, minAccuracy 1, and a name from where the case is', async () => {
    const path = await put(modelDir, { cases: [{ inputs: x, expect: { y: [[1]] } }] })
    const set = await readSmokeSet(undefined, modelDir, undefined)
    expect(set.minAccuracy).toBe(1)
    expect(set.files).toEqual([path])
    expect(set.cases).toHaveLength(1)
    expect(set.cases[0]).toMatchObject({
      name: 'smoke.json#0',
      origin: 'smoke.json#0',
      tolerance: DEFAULT_TOLERANCE,
      finite: true,
      inputs: x,
    })
    expect(DEFAULT_TOLERANCE.atol).toBeGreaterThan(0)
    expect(DEFAULT_TOLERANCE.rtol).toBeGreaterThan(0)
  })

  it('merges tolerances: default < file < case, key by key', async () => {
    await put(modelDir, {
      tolerance: { atol: 0.1 },
      cases: [
        { name: 'file', inputs: x },
        { name: 'case', inputs: x, tolerance: { rtol: 0.5 } },
      ],
    })
    const [file, own] = (await readSmokeSet(undefined, modelDir, undefined)).cases
    expect(file!.tolerance).toEqual({ atol: 0.1, rtol: DEFAULT_TOLERANCE.rtol })
    expect(own!.tolerance).toEqual({ atol: 0.1, rtol: 0.5 })
  })

  it('takes finite from the case, else the file, else true', async () => {
    await put(modelDir, {
      finite: false,
      cases: [
        { name: 'inherits', inputs: x },
        { name: 'own', inputs: x, finite: true },
      ],
    })
    const cases = (await readSmokeSet(undefined, modelDir, undefined)).cases
    expect(cases.map((c) => [c.name, c.finite])).toEqual([
      ['inherits', false],
      ['own', true],
    ])
  })

  it('keeps minAccuracy and label cases as written', async () => {
    await put(modelDir, {
      minAccuracy: 0.9,
      cases: [{ name: 'setosa', inputs: x, label: { output: 'label', value: 0 } }],
    })
    const set = await readSmokeSet(undefined, modelDir, undefined)
    expect(set.minAccuracy).toBe(0.9)
    expect(set.cases[0]!.label).toEqual({ output: 'label', value: 0 })
  })
})

describe('readSmokeSet: model-level plus version-level', () => {
  it("adds a version's own cases after the model's, each naming its file", async () => {
    const model = await put(modelDir, { cases: [{ name: 'shared', inputs: x }] })
    const version = await put(versionDir(), {
      cases: [{ inputs: x }, { name: 'v2 only', inputs: x }],
    })
    const set = await readSmokeSet(undefined, modelDir, versionDir())
    expect(set.files).toEqual([model, version])
    expect(set.cases.map((c) => [c.name, c.origin])).toEqual([
      ['shared', 'smoke.json#0'],
      [join('2', 'smoke.json#0'), join('2', 'smoke.json#0')],
      ['v2 only', join('2', 'smoke.json#1')],
    ])
  })

  it("applies each file's tolerance and finite default to its own cases only", async () => {
    await put(modelDir, { tolerance: { atol: 0.1 }, finite: false, cases: [{ inputs: x }] })
    await put(versionDir(), { cases: [{ inputs: x }] })
    const [shared, own] = (await readSmokeSet(undefined, modelDir, versionDir())).cases
    expect(shared).toMatchObject({ tolerance: { atol: 0.1 }, finite: false })
    expect(own).toMatchObject({ tolerance: DEFAULT_TOLERANCE, finite: true })
  })

  it("lets a version's minAccuracy win over the model's", async () => {
    await put(modelDir, { minAccuracy: 0.5, cases: [] })
    await put(versionDir(), { minAccuracy: 0.8, cases: [] })
    expect((await readSmokeSet(undefined, modelDir, versionDir())).minAccuracy).toBe(0.8)
    await put(versionDir(), { cases: [] })
    expect((await readSmokeSet(undefined, modelDir, versionDir())).minAccuracy).toBe(0.5)
  })

  it('reads a version-level file without a model-level one', async () => {
    await put(versionDir(), { cases: [{ name: 'only', inputs: x }] })
    const set = await readSmokeSet(undefined, modelDir, versionDir())
    expect(set.cases.map((c) => c.name)).toEqual(['only'])
  })

  it('ignores version-level files for a flat version (no folder)', async () => {
    await put(versionDir(), { cases: [{ name: 'only', inputs: x }] })
    expect((await readSmokeSet(undefined, modelDir, undefined)).cases).toEqual([])
  })
})

describe('readSmokeSet: errors name the file and the path', () => {
  it('reports a file that is not JSON', async () => {
    const path = await put(modelDir, '{"cases": [,]}')
    const e = await errorOf(readSmokeSet(undefined, modelDir, undefined))
    expect(e.message).toContain(path)
    expect(e.message).toMatch(/not valid JSON/)
  })

  it('reports an unknown key in a case with its index (a typo is not silently ignored)', async () => {
    const path = await put(modelDir, {
      cases: [{ inputs: x }, { inputs: x, expcet: { y: [[1]] } }],
    })
    const e = await errorOf(readSmokeSet(undefined, modelDir, undefined))
    expect(e.message).toContain(path)
    expect(e.message).toMatch(/cases\.1/)
    expect(e.message).toMatch(/expcet/)
  })

  it('reports an unknown key at the top level', async () => {
    await put(modelDir, { cases: [], minAcuracy: 0.9 })
    expect((await errorOf(readSmokeSet(undefined, modelDir, undefined))).message).toMatch(
      /minAcuracy/,
    )
  })

  it('reports a case without inputs', async () => {
    await put(modelDir, { cases: [{ name: 'no inputs', expect: { y: [[1]] } }] })
    expect((await errorOf(readSmokeSet(undefined, modelDir, undefined))).message).toMatch(
      /cases\.0\.inputs/,
    )
  })

  it('reports missing cases', async () => {
    await put(modelDir, { minAccuracy: 0.9 })
    expect((await errorOf(readSmokeSet(undefined, modelDir, undefined))).message).toMatch(/cases/)
  })

  it('reports values out of their range, with the path', async () => {
    await put(modelDir, { minAccuracy: 1.5, cases: [] })
    expect((await errorOf(readSmokeSet(undefined, modelDir, undefined))).message).toMatch(
      /minAccuracy/,
    )
    await put(modelDir, { cases: [{ inputs: x, tolerance: { atol: -1 } }] })
    expect((await errorOf(readSmokeSet(undefined, modelDir, undefined))).message).toMatch(
      /cases\.0\.tolerance\.atol/,
    )
    await put(modelDir, { cases: [{ inputs: x, range: { y: { min: '0' } } }] })
    expect((await errorOf(readSmokeSet(undefined, modelDir, undefined))).message).toMatch(
      /cases\.0\.range\.y\.min/,
    )
  })

  it('reports a malformed label', async () => {
    await put(modelDir, { cases: [{ inputs: x, label: { output: 'label', value: [] } }] })
    expect((await errorOf(readSmokeSet(undefined, modelDir, undefined))).message).toMatch(
      /cases\.0\.label\.value/,
    )
    await put(modelDir, { cases: [{ inputs: x, label: { value: 1 } }] })
    expect((await errorOf(readSmokeSet(undefined, modelDir, undefined))).message).toMatch(
      /cases\.0\.label\.output/,
    )
  })

  it('names the version-level file when that is the broken one', async () => {
    await put(modelDir, { cases: [{ inputs: x }] })
    const path = await put(versionDir(), { cases: [{ inputs: x, finite: 'yes' }] })
    const e = await errorOf(readSmokeSet(undefined, modelDir, versionDir()))
    expect(e.message).toContain(path)
    expect(e.message).toMatch(/cases\.0\.finite/)
  })

  it('lists every problem, not only the first', async () => {
    await put(modelDir, { minAccuracy: 2, cases: [{ inputs: x, finite: 1 }] })
    const e = await errorOf(readSmokeSet(undefined, modelDir, undefined))
    expect(e.message).toMatch(/minAccuracy/)
    expect(e.message).toMatch(/cases\.0\.finite/)
  })
})
