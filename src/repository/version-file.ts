import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CHECKSUM_SIDECAR } from './layout.js'
import { readVersionBytes, VersionReadError, type VersionBytes } from './read-version.js'
import {
  CONFIG_FILE_MAX_BYTES,
  displayPath,
  readRepositoryFile,
  RepositoryFileError,
  type FileIdentity,
} from './repository-file.js'
import type { VersionSource } from './scanner.js'

/**
 * When a version's file may be read: a partially written file is never loaded.
 * - A file untouched for the stability window is complete.
 * - A file whose bytes match its `.sha256` sidecar is complete, whatever its age.
 * - A version folder renamed in whole is read at once (its file is not newer than the folder's
 *   ctime), provisionally: if those bytes do not even load, they may be a copy in progress, and
 *   are read again once stable. A folder whose file is written in place waits like a single file.
 * - Anything else waits until it has been stable for the window.
 */

/**
 * A file's identity (device, inode, size, mtime): another file renamed over it, or the same file
 * written to, is a change. A verdict holds for one fingerprint.
 */
export interface FileFingerprint extends FileIdentity {
  /** The checksum sidecar's identity, when there is one: fixing a sidecar is a change too. */
  readonly sidecar?: string | undefined
}

export function sameFingerprint(
  a: FileFingerprint | undefined,
  b: FileFingerprint | undefined,
): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ino === b.ino &&
    a.dev === b.dev &&
    a.sidecar === b.sidecar
  )
}

export type StabilityDecision =
  | { readonly ready: true; readonly provisional: boolean }
  | { readonly ready: false; readonly retryAtMs: number }

/**
 * Stable once unchanged for `windowMs`, judged by the file's mtime or by when this fingerprint was
 * first seen here, whichever is earlier. Once the file was seen changing, only the first-seen time
 * counts: a file server whose clock runs behind would otherwise make a file being written look old.
 */
export function decideStability(o: {
  readonly nowMs: number
  readonly mtimeMs: number
  readonly firstSeenMs: number
  readonly windowMs: number
  readonly fastPath: boolean
  /** The file's size or mtime changed while this process watched it. */
  readonly seenChanging?: boolean
}): StabilityDecision {
  const stableSince = o.seenChanging
    ? o.firstSeenMs
    : Math.min(Math.max(o.mtimeMs, 0), o.firstSeenMs)
  const stableAt = stableSince + o.windowMs
  if (o.nowMs >= stableAt) return { ready: true, provisional: false }
  if (o.fastPath) return { ready: true, provisional: true }
  return { ready: false, retryAtMs: stableAt }
}

export type VersionRead =
  | {
      readonly kind: 'ready'
      readonly bytes: VersionBytes
      readonly fingerprint: FileFingerprint
      readonly provisional: boolean
    }
  | { readonly kind: 'wait'; readonly retryAtMs: number; readonly why: string }
  | { readonly kind: 'checksum_mismatch'; readonly message: string; readonly sha256: string }
  | { readonly kind: 'gone' }

export function sidecarPath(source: VersionSource): string {
  return source.kind === 'folder' ? join(source.dir!, CHECKSUM_SIDECAR) : `${source.file}.sha256`
}

/** The sha256 a sidecar declares (sha256sum format: `<hex>  <name>`, or the hex alone). */
export function parseSidecar(text: string): string | undefined {
  const token = text.trim().split(/\s+/, 1)[0]?.toLowerCase()
  return token && /^[0-9a-f]{64}$/.test(token) ? token : undefined
}

async function fingerprint(path: string): Promise<FileFingerprint | undefined> {
  try {
    const s = await stat(path)
    return { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs }
  } catch {
    return undefined
  }
}

/** A version's model file and its sidecar, as one fingerprint. */
export async function versionFingerprint(
  source: VersionSource,
): Promise<FileFingerprint | undefined> {
  const [file, sidecar] = await Promise.all([
    fingerprint(source.file),
    fingerprint(sidecarPath(source)),
  ])
  if (!file) return undefined
  return sidecar
    ? { ...file, sidecar: `${sidecar.dev}:${sidecar.ino}:${sidecar.size}:${sidecar.mtimeMs}` }
    : file
}

/**
 * The sha256 sidecar's text, if there is one. It is read like every file of the models directory:
 * one that is not a regular file, escapes, or is over the limit refuses the version.
 */
async function readSidecar(root: string, source: VersionSource): Promise<string | undefined> {
  try {
    return (
      await readRepositoryFile(sidecarPath(source), { root, maxBytes: CONFIG_FILE_MAX_BYTES })
    )?.bytes.toString('utf8')
  } catch (e) {
    if (e instanceof RepositoryFileError)
      throw new VersionReadError(e.reason, e.message, e.identity)
    throw e
  }
}

/**
 * Reads a version's bytes if they are complete, per the rules above. `firstSeenMs` is when the
 * caller first saw the file with its current fingerprint. Throws VersionReadError for files (the
 * model file or its sidecar) that escape the models directory, are not regular files, are too
 * large or cannot be read.
 */
export async function readVersionWhenStable(
  root: string,
  source: VersionSource,
  o: {
    readonly windowMs: number
    readonly firstSeenMs: number
    readonly seenChanging?: boolean
    /** May a version folder be read at once? Not one seen without its file, or seen changing. */
    readonly folderFastPath?: boolean
    readonly nowMs?: number
    /** A larger model file is refused before it is read (`--max-model-size`). */
    readonly maxBytes?: number
  },
): Promise<VersionRead> {
  const [before, sidecar, folder] = await Promise.all([
    versionFingerprint(source),
    readSidecar(root, source),
    source.kind === 'folder' ? stat(source.dir!).catch(() => undefined) : undefined,
  ])
  if (!before) return { kind: 'gone' }
  // Renaming a folder changes its ctime, after its file was last written; writing the file in
  // place (`mkdir 3; cp big.onnx 3/model.onnx`) makes the file newer than its folder's ctime.
  const renamedWhole = folder !== undefined && before.mtimeMs <= folder.ctimeMs
  const nowMs = o.nowMs ?? Date.now()
  const declared = sidecar === undefined ? undefined : parseSidecar(sidecar)
  const decision = decideStability({
    nowMs,
    mtimeMs: before.mtimeMs,
    firstSeenMs: o.firstSeenMs,
    windowMs: o.windowMs,
    fastPath: (renamedWhole && o.folderFastPath !== false) || declared !== undefined,
    seenChanging: o.seenChanging === true,
  })
  if (!decision.ready)
    return {
      kind: 'wait',
      retryAtMs: decision.retryAtMs,
      why: 'the file changed less than the stability window ago',
    }
  const bytes = await readVersionBytes(root, source, o.maxBytes)
  const after = await versionFingerprint(source)
  if (!after || !sameFingerprint(before, after) || bytes.bytes.length !== after.size) {
    return {
      kind: 'wait',
      retryAtMs: nowMs + o.windowMs,
      why: 'the file changed while it was read',
    }
  }
  if (sidecar !== undefined) {
    if (declared === bytes.sha256)
      return { kind: 'ready', bytes, fingerprint: after, provisional: false }
    // A sidecar that does not match yet may be racing its model file (or be half written itself).
    if (decision.provisional)
      return {
        kind: 'wait',
        retryAtMs: Math.min(before.mtimeMs, o.firstSeenMs) + o.windowMs,
        why: 'the bytes do not match the .sha256 sidecar yet',
      }
    const shown = displayPath(root, sidecarPath(source))
    const message = declared
      ? `the bytes hash to ${bytes.sha256}, the sidecar ${shown} says ${declared}`
      : `the sidecar ${shown} does not hold a sha256`
    return { kind: 'checksum_mismatch', message, sha256: bytes.sha256 }
  }
  return { kind: 'ready', bytes, fingerprint: after, provisional: decision.provisional }
}
