import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { scanRepository, type RepositoryScan } from '../../src/repository/scanner.js'

/**
 * The scanner against real directories. Its job is only to list: a model file's bytes are never
 * read, so a few placeholder bytes stand in for each model.
 */

let root: string // holds `models/` and, beside it, things outside the models directory
let models: string

beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'modelgate-scan-')))
  models = join(root, 'models')
  await mkdir(models)
})
afterEach(() => rm(root, { recursive: true, force: true }))

async function touch(path: string, text = 'onnx bytes'): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, text)
}

async function link(target: string, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await symlink(target, path)
}

/** version number -> kind, per model: what the scan serves, in order. */
function served(scan: RepositoryScan): Record<string, [number, 'folder' | 'file'][]> {
  return Object.fromEntries(
    scan.models.map((m) => [
      m.name,
      m.versions.map((v) => [v.version, v.kind] as [number, 'folder' | 'file']),
    ]),
  )
}

/** Path relative to the models directory -> refused, for every ignored entry. */
function ignored(scan: RepositoryScan): Record<string, boolean> {
  return Object.fromEntries(scan.ignored.map((i) => [relative(scan.root, i.path), i.refused]))
}

describe('scanRepository: versions', () => {
  it('lists folder versions and flat <v>.onnx files, ascending by number', async () => {
    await touch(join(models, 'iris', '1', 'model.onnx'))
    await touch(join(models, 'iris', '2.onnx'))
    await touch(join(models, 'iris', '10', 'model.onnx'))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({
      iris: [
        [1, 'folder'],
        [2, 'file'],
        [10, 'folder'],
      ],
    })
    const [v1, v2] = scan.models[0]!.versions
    expect(v1).toEqual({
      model: 'iris',
      version: 1,
      kind: 'folder',
      file: join(models, 'iris', '1', 'model.onnx'),
      dir: join(models, 'iris', '1'),
    })
    expect(v2).toEqual({
      model: 'iris',
      version: 2,
      kind: 'file',
      file: join(models, 'iris', '2.onnx'),
      dir: undefined,
    })
    expect(scan.ignored).toEqual([])
  })

  it('prefers the folder when a version exists both as a folder and as a flat file', async () => {
    await touch(join(models, 'iris', '3', 'model.onnx'))
    await touch(join(models, 'iris', '3.onnx'))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({ iris: [[3, 'folder']] })
    expect(scan.models[0]!.versions[0]!.file).toBe(join(models, 'iris', '3', 'model.onnx'))
    expect(scan.ignored).toHaveLength(1)
    expect(scan.ignored[0]).toMatchObject({ path: join(models, 'iris', '3.onnx'), refused: false })
    expect(scan.ignored[0]!.reason).toMatch(/folder/)
  })

  it('ignores hidden, temporary and partial names without refusing them', async () => {
    await touch(join(models, 'iris', '1', 'model.onnx'))
    for (const junk of [
      '.hidden',
      'x.tmp',
      '3.onnx.partial',
      '~foo',
      '4.onnx.tmp',
      '5.onnx~',
      '.6.onnx',
    ]) {
      await touch(join(models, 'iris', junk))
    }
    await touch(join(models, 'iris', '.7', 'model.onnx'))
    await touch(join(models, '.hidden', '1', 'model.onnx'))
    await touch(join(models, 'x.tmp', '1', 'model.onnx'))
    await touch(join(models, '~foo', '1', 'model.onnx'))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({ iris: [[1, 'folder']] })
    expect(ignored(scan)).toEqual({
      '.hidden': false,
      'x.tmp': false,
      '~foo': false,
      'iris/.hidden': false,
      'iris/x.tmp': false,
      'iris/3.onnx.partial': false,
      'iris/~foo': false,
      'iris/4.onnx.tmp': false,
      'iris/5.onnx~': false,
      'iris/.6.onnx': false,
      'iris/.7': false,
    })
  })

  it('does not take leading zeros, zero, negative or fractional names as versions', async () => {
    for (const name of ['03', '0', '-1', '1.5', 'v2', '1e3', '1234567890123456'])
      await touch(join(models, 'm', name, 'model.onnx'))
    for (const name of ['03.onnx', '0.onnx', '2.ONNX', '2.onnx.onnx'])
      await touch(join(models, 'm', name))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({ m: [] })
    expect(Object.keys(ignored(scan)).sort()).toEqual(
      [
        '03',
        '0',
        '-1',
        '1.5',
        'v2',
        '1e3',
        '1234567890123456',
        '03.onnx',
        '0.onnx',
        '2.ONNX',
        '2.onnx.onnx',
      ]
        .map((n) => `m/${n}`)
        .sort(),
    )
  })

  it('accepts the largest version number the layout allows (15 digits)', async () => {
    await touch(join(models, 'm', '999999999999999', 'model.onnx'))
    expect(served(await scanRepository(models))).toEqual({ m: [[999999999999999, 'folder']] })
  })

  it('ignores a version folder without model.onnx, or whose model.onnx is not a file', async () => {
    await touch(join(models, 'm', '1', 'weights.bin'))
    await mkdir(join(models, 'm', '2', 'model.onnx'), { recursive: true })
    await mkdir(join(models, 'm', '3'))
    await touch(join(models, 'm', '4'), 'a file named like a version folder')
    await mkdir(join(models, 'm', '5.onnx'))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({ m: [] })
    expect(ignored(scan)).toEqual({
      'm/1': false,
      'm/2': false,
      'm/3': false,
      'm/4': false,
      'm/5.onnx': false,
    })
    expect(scan.ignored.find((i) => i.path.endsWith('1'))!.reason).toMatch(/model\.onnx/)
  })

  it('does not report model.json and smoke.json as ignored, and keeps an empty model', async () => {
    await touch(join(models, 'm', 'model.json'), '{}')
    await touch(join(models, 'm', 'smoke.json'), '[]')
    const scan = await scanRepository(models)
    expect(scan.models).toEqual([{ name: 'm', dir: join(models, 'm'), versions: [] }])
    expect(scan.ignored).toEqual([])
  })
})

describe('scanRepository: model names', () => {
  it('accepts names with dots, dashes and underscores, up to 128 characters, sorted', async () => {
    for (const name of ['zeta', 'my.model-v2_final', 'A1', 'a'.repeat(128)])
      await touch(join(models, name, '1', 'model.onnx'))
    const scan = await scanRepository(models)
    expect(scan.models.map((m) => m.name)).toEqual([
      'A1',
      'a'.repeat(128),
      'my.model-v2_final',
      'zeta',
    ])
    expect(scan.ignored).toEqual([])
  })

  it('ignores invalid model names and plain files at the top level', async () => {
    for (const name of ['-bad', '_bad', 'has space', 'ünïcode', 'a'.repeat(129), 'semi;colon']) {
      await touch(join(models, name, '1', 'model.onnx'))
    }
    await touch(join(models, 'README.md'), '# models')
    await touch(join(models, 'loose.onnx'))
    const scan = await scanRepository(models)
    expect(scan.models).toEqual([])
    expect(ignored(scan)).toEqual({
      '-bad': false,
      _bad: false,
      'has space': false,
      ünïcode: false,
      ['a'.repeat(129)]: false,
      'semi;colon': false,
      'README.md': false,
      'loose.onnx': false,
    })
  })

  it('skips the .modelgate state folder silently', async () => {
    await touch(join(models, '.modelgate', 'state.json'), '{}')
    await touch(join(models, '.modelgate', '1', 'model.onnx'))
    await touch(join(models, 'iris', '1', 'model.onnx'))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({ iris: [[1, 'folder']] })
    expect(scan.ignored).toEqual([])
  })
})

describe('scanRepository: symlinks', () => {
  it('refuses a model folder that links outside the models directory', async () => {
    await touch(join(root, 'elsewhere', 'evil', '1', 'model.onnx'))
    await link(join(root, 'elsewhere', 'evil'), join(models, 'evil'))
    const scan = await scanRepository(models)
    expect(scan.models).toEqual([])
    expect(ignored(scan)).toEqual({ evil: true })
  })

  it('refuses a link to a sibling folder whose name merely starts with the models directory name', async () => {
    await touch(join(root, 'models-evil', 'm', '1', 'model.onnx'))
    await link(join(root, 'models-evil', 'm'), join(models, 'm'))
    await link('../models-evil/m', join(models, 'relative'))
    const scan = await scanRepository(models)
    expect(scan.models).toEqual([])
    expect(ignored(scan)).toEqual({ m: true, relative: true })
  })

  it('refuses model.onnx, version folders and flat files that link outside', async () => {
    await touch(join(root, 'outside.onnx'))
    await touch(join(root, 'outside-version', 'model.onnx'))
    await touch(join(models, 'm', '1', 'model.onnx'))
    await link(join(root, 'outside.onnx'), join(models, 'm', '2', 'model.onnx'))
    await link(join(root, 'outside-version'), join(models, 'm', '3'))
    await link(join(root, 'outside.onnx'), join(models, 'm', '4.onnx'))
    await link('../../../outside.onnx', join(models, 'm', '5', 'model.onnx'))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({ m: [[1, 'folder']] })
    expect(ignored(scan)).toEqual({
      'm/2/model.onnx': true,
      'm/3': true,
      'm/4.onnx': true,
      'm/5/model.onnx': true,
    })
  })

  it('accepts links that stay inside the models directory', async () => {
    await touch(join(models, 'real', '1', 'model.onnx'))
    await touch(join(models, 'real', '2.onnx'))
    await link(join(models, 'real'), join(models, 'alias'))
    await link('../../real/1/model.onnx', join(models, 'other', '7', 'model.onnx'))
    await link(join(models, 'real', '2.onnx'), join(models, 'other', '8.onnx'))
    await link(join(models, 'real', '1'), join(models, 'other', '9'))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({
      alias: [
        [1, 'folder'],
        [2, 'file'],
      ],
      other: [
        [7, 'folder'],
        [8, 'file'],
        [9, 'folder'],
      ],
      real: [
        [1, 'folder'],
        [2, 'file'],
      ],
    })
    expect(scan.ignored).toEqual([])
    // Paths are reported as found (under the link), not resolved: the reader checks them again.
    expect(scan.models[0]!.versions[0]!.file).toBe(join(models, 'alias', '1', 'model.onnx'))
  })

  it('resolves a models directory that is itself a link, and judges links against its real path', async () => {
    await touch(join(models, 'iris', '1', 'model.onnx'))
    await link(join(models, 'iris', '1', 'model.onnx'), join(models, 'viaroot', '1', 'model.onnx'))
    await link(models, join(root, 'models-link'))
    const scan = await scanRepository(join(root, 'models-link'))
    expect(scan.root).toBe(models)
    expect(served(scan)).toEqual({ iris: [[1, 'folder']], viaroot: [[1, 'folder']] })
    expect(scan.ignored).toEqual([])
  })

  it('ignores dangling links and link loops without throwing', async () => {
    await link(join(root, 'nowhere'), join(models, 'dangling'))
    await link(join(models, 'loop'), join(models, 'loop'))
    await link(join(models, 'm', 'nowhere.onnx'), join(models, 'm', '1', 'model.onnx'))
    const scan = await scanRepository(models)
    expect(served(scan)).toEqual({ m: [] })
    expect(ignored(scan)).toEqual({ dangling: false, loop: false, 'm/1': false })
  })
})
