import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, realpath, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { VersionSource } from '../../src/repository/scanner.js'
import {
  decideStability,
  parseSidecar,
  readVersionWhenStable,
  sidecarPath,
} from '../../src/repository/version-file.js'

/**
 * When a version's bytes may be read: never while partial. The decision is pure; the
 * reads run on real files whose mtimes are set explicitly, so nothing waits on the clock.
 */

const WINDOW = 500
const HEX = 'ab'.repeat(32)

describe('decideStability', () => {
  const base = { windowMs: WINDOW, fastPath: false }

  it('is ready once the file has been unchanged for the window', () => {
    expect(
      decideStability({ ...base, nowMs: 10_000, mtimeMs: 9_000, firstSeenMs: 10_000 }),
    ).toEqual({ ready: true, provisional: false })
    expect(
      decideStability({ ...base, nowMs: 10_000, mtimeMs: 9_500, firstSeenMs: 10_000 }),
    ).toEqual({ ready: true, provisional: false })
  })

  it('waits until mtime + window for a file that changed recently', () => {
    expect(
      decideStability({ ...base, nowMs: 10_000, mtimeMs: 9_800, firstSeenMs: 10_000 }),
    ).toEqual({ ready: false, retryAtMs: 10_300 })
  })

  it('reads a recent file at once, provisionally, on the fast path (a folder, a sidecar)', () => {
    expect(
      decideStability({
        ...base,
        fastPath: true,
        nowMs: 10_000,
        mtimeMs: 9_990,
        firstSeenMs: 10_000,
      }),
    ).toEqual({ ready: true, provisional: true })
    // An old file on the fast path is simply ready.
    expect(
      decideStability({
        ...base,
        fastPath: true,
        nowMs: 10_000,
        mtimeMs: 1_000,
        firstSeenMs: 10_000,
      }),
    ).toEqual({ ready: true, provisional: false })
  })

  it('judges a file with an mtime in the future (clock skew) by when it was first seen', () => {
    const future = 10_000 + 3_600_000
    expect(
      decideStability({ ...base, nowMs: 10_000, mtimeMs: future, firstSeenMs: 10_000 }),
    ).toEqual({ ready: false, retryAtMs: 10_500 })
    expect(
      decideStability({ ...base, nowMs: 10_600, mtimeMs: future, firstSeenMs: 10_000 }),
    ).toEqual({ ready: true, provisional: false })
  })

  it('judges a file first seen long ago by its mtime: a fresh write resets the wait', () => {
    // The caller resets firstSeen when the fingerprint changes; mtime alone already says "recent".
    expect(decideStability({ ...base, nowMs: 10_000, mtimeMs: 9_900, firstSeenMs: 9_950 })).toEqual(
      { ready: false, retryAtMs: 10_400 },
    )
  })

  it('treats a negative mtime as the epoch', () => {
    expect(decideStability({ ...base, nowMs: 10_000, mtimeMs: -5, firstSeenMs: 10_000 })).toEqual({
      ready: true,
      provisional: false,
    })
  })

  it('with a zero window, everything is ready at once', () => {
    expect(
      decideStability({
        windowMs: 0,
        fastPath: false,
        nowMs: 10_000,
        mtimeMs: 10_000,
        firstSeenMs: 10_000,
      }),
    ).toEqual({ ready: true, provisional: false })
  })
})

describe('parseSidecar', () => {
  it('reads sha256sum output: hash, two spaces, file name', () => {
    expect(parseSidecar(`${HEX}  model.onnx\n`)).toBe(HEX)
  })

  it('reads the binary-mode marker form and a bare hash', () => {
    expect(parseSidecar(`${HEX} *model.onnx\n`)).toBe(HEX)
    expect(parseSidecar(HEX)).toBe(HEX)
    expect(parseSidecar(`\n  ${HEX}\r\n`)).toBe(HEX)
  })

  it('lowercases an uppercase hash', () => {
    expect(parseSidecar(HEX.toUpperCase())).toBe(HEX)
  })

  it('refuses anything that is not a 64-digit hex sha256', () => {
    expect(parseSidecar('')).toBeUndefined()
    expect(parseSidecar('   \n')).toBeUndefined()
    expect(parseSidecar(HEX.slice(1))).toBeUndefined()
    expect(parseSidecar(`${HEX}0`)).toBeUndefined()
    expect(parseSidecar(`${HEX.slice(0, 63)}g  model.onnx`)).toBeUndefined()
    expect(parseSidecar(`md5 ${HEX}`)).toBeUndefined()
  })
})

describe('readVersionWhenStable', () => {
  let root: string
  beforeEach(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'modelgate-vfile-')))
  })
  afterEach(() => rm(root, { recursive: true, force: true }))

  const bytes = new TextEncoder().encode('pretend these are model bytes')
  const hash = createHash('sha256').update(bytes).digest('hex')

  async function flat(version = 3, content: Uint8Array | string = bytes): Promise<VersionSource> {
    await mkdir(join(root, 'm'), { recursive: true })
    const file = join(root, 'm', `${version}.onnx`)
    await writeFile(file, content)
    return { model: 'm', version, kind: 'file', file, dir: undefined }
  }

  async function folder(version = 3, content: Uint8Array | string = bytes): Promise<VersionSource> {
    const dir = join(root, 'm', String(version))
    await mkdir(dir, { recursive: true })
    const file = join(dir, 'model.onnx')
    await writeFile(file, content)
    return { model: 'm', version, kind: 'folder', file, dir }
  }

  /** Makes the file look written `ageMs` ago. */
  async function age(path: string, ageMs: number): Promise<void> {
    const t = (Date.now() - ageMs) / 1000
    await utimes(path, t, t)
  }

  it('waits for a freshly written flat file', async () => {
    const source = await flat()
    const now = Date.now()
    const read = await readVersionWhenStable(root, source, {
      windowMs: WINDOW,
      firstSeenMs: now,
      nowMs: now,
    })
    expect(read.kind).toBe('wait')
    if (read.kind !== 'wait') return
    const { mtimeMs } = await stat(source.file)
    expect(read.retryAtMs).toBe(Math.min(mtimeMs, now) + WINDOW)
  })

  it('reads a flat file unchanged for the window, with its sha256 and fingerprint', async () => {
    const source = await flat()
    await age(source.file, 10_000)
    const read = await readVersionWhenStable(root, source, {
      windowMs: WINDOW,
      firstSeenMs: Date.now(),
    })
    expect(read).toMatchObject({
      kind: 'ready',
      provisional: false,
      fingerprint: { size: bytes.length },
    })
    if (read.kind !== 'ready') return
    expect(read.bytes.sha256).toBe(hash)
    expect(Buffer.from(read.bytes.bytes).equals(Buffer.from(bytes))).toBe(true)
  })

  it('reads a file once the window has passed since it was first seen, even with a future mtime', async () => {
    const source = await flat()
    const future = (Date.now() + 3_600_000) / 1000
    await utimes(source.file, future, future)
    const now = Date.now()
    expect(
      (
        await readVersionWhenStable(root, source, {
          windowMs: WINDOW,
          firstSeenMs: now,
          nowMs: now,
        })
      ).kind,
    ).toBe('wait')
    expect(
      (
        await readVersionWhenStable(root, source, {
          windowMs: WINDOW,
          firstSeenMs: now - WINDOW - 1,
          nowMs: now,
        })
      ).kind,
    ).toBe('ready')
  })

  it('reads a fresh file in a version folder renamed in at once, provisionally', async () => {
    // Renamed in whole (the folder's ctime is after its file was written). A folder made and
    // filled in place only passed here when both fell in one tick of the file system's clock,
    // which a busy machine missed now and then.
    const staged = join(root, 'staging-3')
    await mkdir(staged, { recursive: true })
    await writeFile(join(staged, 'model.onnx'), bytes)
    await mkdir(join(root, 'm'), { recursive: true })
    await rename(staged, join(root, 'm', '3'))
    const dir = join(root, 'm', '3')
    const source: VersionSource = {
      model: 'm',
      version: 3,
      kind: 'folder',
      file: join(dir, 'model.onnx'),
      dir,
    }
    const now = Date.now()
    const read = await readVersionWhenStable(root, source, {
      windowMs: WINDOW,
      firstSeenMs: now,
      nowMs: now,
    })
    expect(read).toMatchObject({ kind: 'ready', provisional: true })
  })

  it('waits for a file written in place after its folder was made (mkdir 3; cp big.onnx 3/model.onnx)', async () => {
    const source = await folder()
    // Still being written, a clock tick later: the file is newer than its folder's ctime.
    await new Promise((r) => setTimeout(r, 25))
    await writeFile(source.file, 'pretend these are model bytes, and more of them')
    const now = Date.now()
    expect(
      (
        await readVersionWhenStable(root, source, {
          windowMs: WINDOW,
          firstSeenMs: now,
          nowMs: now,
        })
      ).kind,
    ).toBe('wait')
  })

  it('reads a folder renamed in whole at once, even one made a moment ago', async () => {
    const staged = join(root, 'staging-3')
    await mkdir(staged)
    await writeFile(join(staged, 'model.onnx'), bytes)
    await new Promise((r) => setTimeout(r, 25))
    await mkdir(join(root, 'm'))
    await rename(staged, join(root, 'm', '3'))
    const source: VersionSource = {
      model: 'm',
      version: 3,
      kind: 'folder',
      file: join(root, 'm', '3', 'model.onnx'),
      dir: join(root, 'm', '3'),
    }
    const now = Date.now()
    expect(
      await readVersionWhenStable(root, source, { windowMs: WINDOW, firstSeenMs: now, nowMs: now }),
    ).toMatchObject({ kind: 'ready', provisional: true })
    // ... unless the pipeline saw the folder empty before (its file was written in place).
    expect(
      (
        await readVersionWhenStable(root, source, {
          windowMs: WINDOW,
          firstSeenMs: now,
          nowMs: now,
          folderFastPath: false,
        })
      ).kind,
    ).toBe('wait')
  })

  it('reads a fresh file at once, for good, when it matches its sidecar (flat and folder)', async () => {
    const f = await flat()
    await writeFile(sidecarPath(f), `${hash}  3.onnx\n`)
    expect(sidecarPath(f)).toBe(`${f.file}.sha256`)
    const now = Date.now()
    expect(
      await readVersionWhenStable(root, f, { windowMs: WINDOW, firstSeenMs: now, nowMs: now }),
    ).toMatchObject({ kind: 'ready', provisional: false })

    const d = await folder(4)
    expect(sidecarPath(d)).toBe(join(d.dir!, 'model.onnx.sha256'))
    await writeFile(sidecarPath(d), `${hash}  model.onnx\n`)
    expect(
      await readVersionWhenStable(root, d, { windowMs: WINDOW, firstSeenMs: now, nowMs: now }),
    ).toMatchObject({ kind: 'ready', provisional: false })
  })

  it('waits, rather than rejects, while a fresh file does not match its sidecar yet', async () => {
    const source = await folder()
    await writeFile(sidecarPath(source), `${'0'.repeat(64)}  model.onnx\n`)
    const now = Date.now()
    const read = await readVersionWhenStable(root, source, {
      windowMs: WINDOW,
      firstSeenMs: now,
      nowMs: now,
    })
    expect(read).toMatchObject({ kind: 'wait', why: expect.stringMatching(/sidecar/) })
  })

  it('rejects a stable file that does not match its sidecar, with both hashes', async () => {
    const source = await folder()
    await writeFile(sidecarPath(source), `${'0'.repeat(64)}  model.onnx\n`)
    await age(source.file, 10_000)
    const read = await readVersionWhenStable(root, source, {
      windowMs: WINDOW,
      firstSeenMs: Date.now(),
    })
    expect(read.kind).toBe('checksum_mismatch')
    if (read.kind !== 'checksum_mismatch') return
    expect(read.sha256).toBe(hash)
    expect(read.message).toContain(hash)
    expect(read.message).toContain('0'.repeat(64))
  })

  it('rejects a stable file whose sidecar holds no sha256', async () => {
    const source = await flat()
    await writeFile(sidecarPath(source), 'not a hash\n')
    await age(source.file, 10_000)
    const read = await readVersionWhenStable(root, source, {
      windowMs: WINDOW,
      firstSeenMs: Date.now(),
    })
    expect(read).toMatchObject({
      kind: 'checksum_mismatch',
      message: expect.stringMatching(/does not hold a sha256/),
    })
  })

  it('does not take the fast path for a fresh flat file whose sidecar is invalid', async () => {
    const source = await flat()
    await writeFile(sidecarPath(source), 'half a ha')
    const now = Date.now()
    expect(
      (
        await readVersionWhenStable(root, source, {
          windowMs: WINDOW,
          firstSeenMs: now,
          nowMs: now,
        })
      ).kind,
    ).toBe('wait')
  })

  it('says a file that is not there is gone', async () => {
    const source: VersionSource = {
      model: 'm',
      version: 9,
      kind: 'file',
      file: join(root, 'm', '9.onnx'),
      dir: undefined,
    }
    expect(
      await readVersionWhenStable(root, source, { windowMs: WINDOW, firstSeenMs: Date.now() }),
    ).toEqual({ kind: 'gone' })
  })

  it('reads an empty stable file as ready (the gate, not this rule, rejects it)', async () => {
    const source = await flat(5, '')
    await age(source.file, 10_000)
    expect(
      await readVersionWhenStable(root, source, { windowMs: WINDOW, firstSeenMs: Date.now() }),
    ).toMatchObject({ kind: 'ready', fingerprint: { size: 0 } })
  })
})
