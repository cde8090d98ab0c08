import { readdir, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  MODEL_CONFIG_FILE,
  MODEL_FILE,
  SMOKE_FILE,
  STATE_DIR_NAME,
  isInside,
  isJunk,
  isModelName,
  versionFile,
  versionFolder,
} from './layout.js'

/** One version as it sits on disk. Paths are absolute and were inside the models directory when scanned. */
export interface VersionSource {
  readonly model: string
  readonly version: number
  readonly kind: 'folder' | 'file'
  /** The .onnx file. */
  readonly file: string
  /** The version folder (kind 'folder' only): holds sidecars and version-level smoke tests. */
  readonly dir: string | undefined
}

export interface ModelSource {
  readonly name: string
  readonly dir: string
  /** Ascending by version. */
  readonly versions: readonly VersionSource[]
}

export interface Ignored {
  readonly path: string
  readonly reason: string
  /** Refused for safety (it points outside the models directory), not merely skipped. */
  readonly refused: boolean
}

export interface RepositoryScan {
  readonly root: string
  readonly models: readonly ModelSource[]
  readonly ignored: readonly Ignored[]
}

/** Lists what is on disk; knows nothing of what is loaded. Never throws for one bad entry. */
export async function scanRepository(modelsDir: string): Promise<RepositoryScan> {
  const root = await realpath(modelsDir)
  const ignored: Ignored[] = []
  const models: ModelSource[] = []
  for (const name of (await readdir(root)).sort()) {
    const path = join(root, name)
    if (name === STATE_DIR_NAME) continue
    if (isJunk(name)) {
      ignored.push({ path, reason: 'hidden or temporary name', refused: false })
      continue
    }
    const kind = await entryKind(root, path)
    if (kind === 'outside') {
      ignored.push({ path, reason: 'resolves outside the models directory', refused: true })
      continue
    }
    if (kind !== 'dir') {
      ignored.push({ path, reason: 'not a model folder', refused: false })
      continue
    }
    if (!isModelName(name)) {
      ignored.push({ path, reason: 'not a valid model name ([A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters)', refused: false })
      continue
    }
    models.push(await scanModel(root, name, path, ignored))
  }
  return { root, models, ignored }
}

/** One model folder; exported for the watcher, which rescans a single model when it changes. */
export async function scanModel(root: string, name: string, dir: string, ignored: Ignored[]): Promise<ModelSource> {
  const byVersion = new Map<number, VersionSource>()
  let entries: string[] = []
  try {
    entries = (await readdir(dir)).sort()
  } catch (e) {
    ignored.push({ path: dir, reason: `cannot list: ${(e as Error).message}`, refused: false })
  }
  const flatFiles: VersionSource[] = []
  for (const entry of entries) {
    const path = join(dir, entry)
    if (entry === MODEL_CONFIG_FILE || entry === SMOKE_FILE) continue
    if (isJunk(entry)) {
      ignored.push({ path, reason: 'hidden or temporary name', refused: false })
      continue
    }
    const folderVersion = versionFolder(entry)
    const fileVersion = versionFile(entry)
    if (folderVersion === undefined && fileVersion === undefined) {
      ignored.push({ path, reason: 'not a version (<n>/model.onnx or <n>.onnx)', refused: false })
      continue
    }
    const kind = await entryKind(root, path)
    if (kind === 'outside') {
      ignored.push({ path, reason: 'resolves outside the models directory', refused: true })
      continue
    }
    if (folderVersion !== undefined && kind === 'dir') {
      const file = join(path, MODEL_FILE)
      const fileKind = await entryKind(root, file)
      if (fileKind === 'outside') ignored.push({ path: file, reason: 'resolves outside the models directory', refused: true })
      else if (fileKind !== 'file') ignored.push({ path, reason: `version folder without ${MODEL_FILE}`, refused: false })
      else byVersion.set(folderVersion, { model: name, version: folderVersion, kind: 'folder', file, dir: path })
    } else if (fileVersion !== undefined && kind === 'file') {
      flatFiles.push({ model: name, version: fileVersion, kind: 'file', file: path, dir: undefined })
    } else {
      ignored.push({ path, reason: 'not a version (<n>/model.onnx or <n>.onnx)', refused: false })
    }
  }
  for (const flat of flatFiles) {
    if (byVersion.has(flat.version)) {
      ignored.push({ path: flat.file, reason: `version ${flat.version} also exists as a folder, which wins`, refused: false })
    } else {
      byVersion.set(flat.version, flat)
    }
  }
  const versions = [...byVersion.values()].sort((a, b) => a.version - b.version)
  return { name, dir, versions }
}

type EntryKind = 'file' | 'dir' | 'outside' | 'other' | 'missing'

/** What a path is, following symlinks only while they stay inside `root`. */
export async function entryKind(root: string, path: string): Promise<EntryKind> {
  try {
    // A symlink, or a plain entry under a symlinked parent: the real path is what counts.
    const real = await realpath(path)
    if (!isInside(root, real)) return 'outside'
    const s = await stat(real)
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other'
  } catch {
    return 'missing'
  }
}
