import { constants, type Stats } from 'node:fs'
import { open, realpath, stat, type FileHandle } from 'node:fs/promises'
import { isAbsolute, relative } from 'node:path'
import { formatBytes } from '../format-bytes.js'
import { isInside } from './layout.js'

/**
 * The one way modelgate reads a file from the models directory: model files, model.json,
 * smoke.json and `.sha256` sidecars alike. Whatever sits there (a FIFO, /dev/zero behind a symlink,
 * a 20 GB sparse file, a link to /etc/passwd), reading it neither blocks a libuv threadpool thread
 * nor reads more than a bound nor leaves the models directory, and a refusal never quotes the file.
 */

/** model.json and `.sha256` sidecars: configuration, a few hundred bytes in practice. */
export const CONFIG_FILE_MAX_BYTES = 2 ** 20
/** smoke.json holds tensors (an image case is ~1.5 MB of JSON): room for a few dozen of them. */
export const SMOKE_FILE_MAX_BYTES = 64 * 2 ** 20
/**
 * onnxruntime-node takes a model as one buffer, and an ONNX protobuf cannot exceed 2 GiB:
 * the most `--max-model-size` allows.
 */
export const MODEL_FILE_MAX_BYTES = 2 ** 31 - 1

/** Why a file was not read; each is also a rejection reason when the file is a version's. */
export const FILE_REFUSALS = [
  'escapes_models_dir',
  'not_a_regular_file',
  'too_large',
  'unreadable',
] as const
export type FileRefusal = (typeof FILE_REFUSALS)[number]

/** Which file this is, as the file system sees it: a different inode, size or mtime is a different file. */
export interface FileIdentity {
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
}

function identityOf(s: Stats): FileIdentity {
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs }
}

export class RepositoryFileError extends Error {
  constructor(
    readonly reason: FileRefusal,
    message: string,
    /** The refused file, when it could be examined: the same file is not judged twice. */
    readonly identity: FileIdentity | undefined,
  ) {
    super(message)
  }
}

export interface RepositoryFile {
  readonly bytes: Buffer
  /** From the handle the bytes were read from. */
  readonly identity: FileIdentity
}

export interface ReadOptions {
  /** The models directory (real path): the file must resolve inside it. Undefined: no such rule (`modelgate validate`). */
  readonly root: string | undefined
  /** Larger files are refused before a byte is read. */
  readonly maxBytes: number
  /** Read into a SharedArrayBuffer, for worker threads to share one copy. */
  readonly shared?: boolean
  /** Sees each chunk as it arrives (a hash computed while reading, never over the whole buffer at once). */
  readonly onChunk?: (chunk: Buffer) => void
}

/**
 * One read call takes at most this much, so other work on the libuv threadpool interleaves, and a
 * chunk hashed on the event loop (onChunk) holds it for a millisecond or two, not for a whole model.
 */
const CHUNK_BYTES = 2 * 2 ** 20

// O_NONBLOCK: opening a FIFO nobody writes to returns at once instead of holding a threadpool
// thread forever (four of them wedge every fs, zlib and crypto call of the process). O_NOFOLLOW:
// the last component cannot have been swapped for a symlink since realpath looked at it.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW

/**
 * Reads a whole file if it is a regular file inside `root` of at most `maxBytes`; undefined when
 * there is no such file. Checked before opening (no device or FIFO is ever opened) and again on
 * the open handle, which is what is read: the file checked is the file read.
 */
export async function readRepositoryFile(
  path: string,
  o: ReadOptions,
): Promise<RepositoryFile | undefined> {
  const shown = displayPath(o.root, path)
  let real: string
  let before: Stats
  try {
    real = await realpath(path)
    if (o.root !== undefined && !isInside(o.root, real)) {
      throw new RepositoryFileError(
        'escapes_models_dir',
        `${shown} resolves outside the models directory`,
        undefined,
      )
    }
    before = await stat(real)
  } catch (e) {
    if (e instanceof RepositoryFileError) throw e
    if (isMissing(e)) return undefined
    throw unreadable(shown, e)
  }
  refuseUnlessSmallRegular(shown, before, o.maxBytes)
  let handle: FileHandle
  try {
    handle = await open(real, OPEN_FLAGS)
  } catch (e) {
    if (isMissing(e)) return undefined
    throw unreadable(shown, e)
  }
  try {
    const opened = await handle.stat()
    refuseUnlessSmallRegular(shown, opened, o.maxBytes)
    return { bytes: await readAll(handle, opened.size, o), identity: identityOf(opened) }
  } catch (e) {
    throw e instanceof RepositoryFileError ? e : unreadable(shown, e)
  } finally {
    await handle.close()
  }
}

/** A path as API answers may show it: relative to the models directory, never the server's layout. */
export function displayPath(root: string | undefined, path: string): string {
  if (root === undefined) return path
  const rel = relative(root, path)
  if (rel === '') return '.'
  return rel.startsWith('..') || isAbsolute(rel) ? '(outside the models directory)' : rel
}

/** An fs error without the path Node puts in its message: `EACCES: permission denied`. */
export function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  if (
    typeof err?.code === 'string' &&
    typeof err.message === 'string' &&
    err.message.startsWith(`${err.code}:`)
  ) {
    return err.message.split(',', 1)[0]!
  }
  return err?.code ?? 'error'
}

function refuseUnlessSmallRegular(shown: string, s: Stats, maxBytes: number): void {
  if (!s.isFile())
    throw new RepositoryFileError(
      'not_a_regular_file',
      `${shown} is not a regular file (${kindOf(s)})`,
      identityOf(s),
    )
  if (s.size > maxBytes) {
    throw new RepositoryFileError(
      'too_large',
      `${shown} is ${s.size} bytes, over the limit of ${formatBytes(maxBytes)}`,
      identityOf(s),
    )
  }
}

async function readAll(
  handle: FileHandle,
  size: number,
  o: Pick<ReadOptions, 'shared' | 'onChunk'>,
): Promise<Buffer> {
  const bytes = o.shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size)
  let filled = 0
  while (filled < size) {
    const { bytesRead } = await handle.read(
      bytes,
      filled,
      Math.min(CHUNK_BYTES, size - filled),
      filled,
    )
    if (bytesRead === 0) break // truncated meanwhile: the caller's fingerprint check sees it
    o.onChunk?.(bytes.subarray(filled, filled + bytesRead))
    filled += bytesRead
  }
  return filled === size ? bytes : bytes.subarray(0, filled)
}

function kindOf(s: Stats): string {
  if (s.isFIFO()) return 'a FIFO'
  if (s.isDirectory()) return 'a directory'
  if (s.isCharacterDevice()) return 'a character device'
  if (s.isBlockDevice()) return 'a block device'
  if (s.isSocket()) return 'a socket'
  return 'not a file'
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code
  return code === 'ENOENT' || code === 'ENOTDIR'
}

function unreadable(shown: string, e: unknown): RepositoryFileError {
  return new RepositoryFileError(
    'unreadable',
    `cannot read ${shown}: ${describeFsError(e)}`,
    undefined,
  )
}
