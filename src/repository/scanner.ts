import type { Dirent } from 'node:fs'
import { lstat, readdir, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  MODEL_CONFIG_FILE,
  MODEL_FILE,
  REFERENCE_FILE,
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
  const listed = await Promise.all(
    (await readdir(root, { withFileTypes: true }))
      .sort(byName)
      .map(async (dirent): Promise<{ ignored: Ignored[]; model?: ModelSource }> => {
        const name = dirent.name
        const path = join(root, name)
        if (name === STATE_DIR_NAME) return { ignored: [] }
        if (isJunk(name))
          return { ignored: [{ path, reason: 'hidden or temporary name', refused: false }] }
        const { kind } = await entryKind(root, path, path, dirent)
        if (kind === 'outside')
          return {
            ignored: [{ path, reason: 'resolves outside the models directory', refused: true }],
          }
        if (kind !== 'dir')
          return { ignored: [{ path, reason: 'not a model folder', refused: false }] }
        if (!isModelName(name)) {
          return {
            ignored: [
              {
                path,
                reason:
                  'not a valid model name ([A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters)',
                refused: false,
              },
            ],
          }
        }
        const ignored: Ignored[] = []
        return { ignored, model: await scanModel(root, name, path, ignored) }
      }),
  )
  return {
    root,
    models: listed.flatMap((l) => (l.model ? [l.model] : [])),
    ignored: listed.flatMap((l) => l.ignored),
  }
}

/**
 * One model folder; the pipeline re-lists a single model this way on every pass. Entries are
 * examined in parallel: under load each await costs an event-loop turn, so a pass should take few.
 */
export async function scanModel(
  root: string,
  name: string,
  dir: string,
  ignored: Ignored[],
): Promise<ModelSource> {
  const empty: ModelSource = { name, dir, versions: [] }
  let realDir: string
  let entries: Dirent[]
  try {
    realDir = await realpath(dir)
    entries = (await readdir(realDir, { withFileTypes: true })).sort(byName)
  } catch (e) {
    ignored.push({ path: dir, reason: `cannot list: ${(e as Error).message}`, refused: false })
    return empty
  }
  if (!isInside(root, realDir)) {
    ignored.push({ path: dir, reason: 'resolves outside the models directory', refused: true })
    return empty
  }
  const found = await Promise.all(
    entries.map((entry) => classifyEntry(root, name, dir, realDir, entry)),
  )
  const byVersion = new Map<number, VersionSource>()
  const flatFiles: VersionSource[] = []
  for (const f of found) {
    if (f === undefined) continue
    if ('reason' in f) ignored.push(f)
    else if (f.kind === 'folder') byVersion.set(f.version, f)
    else flatFiles.push(f)
  }
  for (const flat of flatFiles) {
    if (byVersion.has(flat.version)) {
      ignored.push({
        path: flat.file,
        reason: `version ${flat.version} also exists as a folder, which wins`,
        refused: false,
      })
    } else {
      byVersion.set(flat.version, flat)
    }
  }
  const versions = [...byVersion.values()].sort((a, b) => a.version - b.version)
  return { name, dir, versions }
}

const NOT_A_VERSION = 'not a version (<n>/model.onnx or <n>.onnx)'
export const EMPTY_VERSION_FOLDER = `version folder without ${MODEL_FILE}`

async function classifyEntry(
  root: string,
  model: string,
  dir: string,
  realDir: string,
  dirent: Dirent,
): Promise<VersionSource | Ignored | undefined> {
  const entry = dirent.name
  const path = join(dir, entry)
  if (entry === MODEL_CONFIG_FILE || entry === SMOKE_FILE || entry === REFERENCE_FILE)
    return undefined
  if (isJunk(entry)) return { path, reason: 'hidden or temporary name', refused: false }
  // A flat version's checksum sidecar (3.onnx.sha256) belongs to its version.
  if (entry.endsWith('.onnx.sha256') && versionFile(entry.slice(0, -7)) !== undefined)
    return undefined
  const folderVersion = versionFolder(entry)
  const fileVersion = versionFile(entry)
  if (folderVersion === undefined && fileVersion === undefined)
    return { path, reason: NOT_A_VERSION, refused: false }
  const found = await entryKind(root, path, join(realDir, entry), dirent)
  if (found.kind === 'outside')
    return { path, reason: 'resolves outside the models directory', refused: true }
  if (folderVersion !== undefined && found.kind === 'dir') {
    const file = join(path, MODEL_FILE)
    const fileKind = (await entryKind(root, file, join(found.real, MODEL_FILE))).kind
    if (fileKind === 'outside')
      return { path: file, reason: 'resolves outside the models directory', refused: true }
    if (fileKind !== 'file') return { path, reason: EMPTY_VERSION_FOLDER, refused: false }
    return { model, version: folderVersion, kind: 'folder', file, dir: path }
  }
  if (fileVersion !== undefined && found.kind === 'file')
    return { model, version: fileVersion, kind: 'file', file: path, dir: undefined }
  return { path, reason: NOT_A_VERSION, refused: false }
}

type EntryKind = 'file' | 'dir' | 'outside' | 'other' | 'missing'

/**
 * What a path is, following symlinks only while they stay inside `root`. `realIfPlain` is the
 * path's real location when it is not itself a symlink (its parent's real path joined with its
 * name): then one lstat answers, with no realpath.
 */
async function entryKind(
  root: string,
  path: string,
  realIfPlain?: string,
  known?: Dirent,
): Promise<{ kind: EntryKind; real: string }> {
  try {
    // A directory listing already says what a plain entry is: no system call for it.
    const link = known && !known.isSymbolicLink() ? known : await lstat(path)
    if (!link.isSymbolicLink() && realIfPlain !== undefined) {
      return {
        kind: link.isFile() ? 'file' : link.isDirectory() ? 'dir' : 'other',
        real: realIfPlain,
      }
    }
    // A symlink, or a plain entry under a parent that may be one: the real path is what counts.
    const real = await realpath(path)
    if (!isInside(root, real)) return { kind: 'outside', real }
    const s = await stat(real)
    return { kind: s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other', real }
  } catch {
    return { kind: 'missing', real: path }
  }
}

function byName(a: Dirent, b: Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}
