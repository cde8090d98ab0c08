import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, realpath, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigFileError, readModelConfig } from '../../src/repository/model-config.js'
import {
  displayPath,
  readRepositoryFile,
  RepositoryFileError,
} from '../../src/repository/repository-file.js'

/**
 * The one reader of files in the models directory, against real files: FIFOs (mkfifo), symlinks
 * to files outside, /dev/zero, sparse files. Refusals happen before a byte is read.
 */

let outside: string // the temp folder; `models/` inside it is the models directory
let root: string

beforeEach(async () => {
  outside = await realpath(await mkdtemp(join(tmpdir(), 'modelgate-read-')))
  root = join(outside, 'models')
  await mkdir(join(root, 'm'), { recursive: true })
})
afterEach(() => rm(outside, { recursive: true, force: true }))

const LIMIT = 1024

async function refusal(
  path: string,
  o: { root?: string | undefined; maxBytes?: number } = {},
): Promise<RepositoryFileError> {
  const error = await readRepositoryFile(path, {
    root: 'root' in o ? o.root : root,
    maxBytes: o.maxBytes ?? LIMIT,
  }).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(RepositoryFileError)
  return error as RepositoryFileError
}

describe('readRepositoryFile', () => {
  it('reads a regular file inside the models directory, with its identity', async () => {
    const path = join(root, 'm', 'model.json')
    await writeFile(path, '{"retain": 1}')
    const read = await readRepositoryFile(path, { root, maxBytes: LIMIT })
    const s = await stat(path)
    expect(read?.bytes.toString()).toBe('{"retain": 1}')
    expect(read?.identity).toEqual({ dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs })
  })

  it('follows a symlink that stays inside', async () => {
    await writeFile(join(root, 'm', 'shared.json'), '{}')
    await symlink('shared.json', join(root, 'm', 'model.json'))
    expect(
      (
        await readRepositoryFile(join(root, 'm', 'model.json'), { root, maxBytes: LIMIT })
      )?.bytes.toString(),
    ).toBe('{}')
  })

  it('answers undefined for a file that is not there', async () => {
    expect(
      await readRepositoryFile(join(root, 'm', 'model.json'), { root, maxBytes: LIMIT }),
    ).toBeUndefined()
    await writeFile(join(root, 'm', 'file'), 'x')
    expect(
      await readRepositoryFile(join(root, 'm', 'file', 'model.json'), { root, maxBytes: LIMIT }),
    ).toBeUndefined()
  })

  it('refuses FIFOs without opening them: more than the threadpool has threads, and the pool still works', async () => {
    const fifos = Array.from({ length: 8 }, (_, i) => join(root, 'm', `fifo-${i}`))
    for (const f of fifos) execFileSync('mkfifo', [f])
    const errors = await Promise.all(fifos.map((f) => refusal(f)))
    for (const e of errors) expect(e.reason).toBe('not_a_regular_file')
    expect(errors[0]!.message).toBe('m/fifo-0 is not a regular file (a FIFO)')
    expect((await stat(root)).isDirectory()).toBe(true)
  })

  it('refuses a symlink out of the models directory without reading it, and says nothing of the target', async () => {
    await symlink('/etc/passwd', join(root, 'm', 'model.json'))
    const e = await refusal(join(root, 'm', 'model.json'))
    expect(e.reason).toBe('escapes_models_dir')
    expect(e.message).toBe('m/model.json resolves outside the models directory')
    const zero = join(root, 'm', 'smoke.json')
    await symlink('/dev/zero', zero)
    expect((await refusal(zero)).reason).toBe('escapes_models_dir')
  })

  it('refuses a device even where no models directory bounds the path (modelgate validate)', async () => {
    const e = await refusal('/dev/zero', { root: undefined })
    expect(e.reason).toBe('not_a_regular_file')
    expect(e.message).toBe('/dev/zero is not a regular file (a character device)')
  })

  it('refuses a folder', async () => {
    await mkdir(join(root, 'm', 'model.json'))
    expect((await refusal(join(root, 'm', 'model.json'))).message).toBe(
      'm/model.json is not a regular file (a directory)',
    )
  })

  it('refuses a file over the limit before reading it: a sparse 20 GB file costs nothing', async () => {
    const big = join(root, 'm', '1.onnx')
    await writeFile(big, '')
    await truncate(big, 20 * 2 ** 30)
    const e = await refusal(big, { maxBytes: 2 ** 31 - 1 })
    expect(e.reason).toBe('too_large')
    expect(e.message).toBe('m/1.onnx is 21474836480 bytes, over the limit of 2147483647 bytes')
    expect(e.identity?.size).toBe(20 * 2 ** 30)
    const edge = join(root, 'm', 'edge')
    await writeFile(edge, 'x'.repeat(LIMIT))
    expect((await readRepositoryFile(edge, { root, maxBytes: LIMIT }))?.bytes.length).toBe(LIMIT)
    await writeFile(edge, 'x'.repeat(LIMIT + 1))
    expect((await refusal(edge)).message).toBe('m/edge is 1025 bytes, over the limit of 1 KiB')
  })
})

describe('readModelConfig', () => {
  it('names the file relative to the models directory and never quotes it', async () => {
    await writeFile(join(root, 'm', 'model.json'), 'root:x:0:0:root:/root:/bin/bash\n')
    const e = await readModelConfig(root, join(root, 'm')).catch((error: unknown) => error)
    expect(e).toBeInstanceOf(ConfigFileError)
    expect((e as Error).message).toBe("m/model.json: not valid JSON: Unexpected token 'r'")
    await writeFile(join(root, 'm', 'model.json'), '{"retain": 1, "secret": [1, ]}')
    const inside = await readModelConfig(root, join(root, 'm')).catch((error: unknown) => error)
    expect((inside as Error).message).toBe("m/model.json: not valid JSON: Unexpected token ']'")
  })

  it('refuses a model.json over 1 MiB unread', async () => {
    await writeFile(join(root, 'm', 'model.json'), `{"retain": 1, "x": "${'a'.repeat(2 ** 20)}"}`)
    const e = await readModelConfig(root, join(root, 'm')).catch((error: unknown) => error)
    expect((e as Error).message).toMatch(/^m\/model\.json is \d+ bytes, over the limit of 1 MiB$/)
  })
})

describe('displayPath', () => {
  it('shows paths relative to the models directory, and never one outside it', () => {
    expect(displayPath(root, join(root, 'm', '1', 'model.onnx'))).toBe('m/1/model.onnx')
    expect(displayPath(root, '/etc/passwd')).toBe('(outside the models directory)')
    expect(displayPath(undefined, '/some/file.onnx')).toBe('/some/file.onnx')
  })
})
