import { createHash } from 'node:crypto'
import {
  displayPath,
  MODEL_FILE_MAX_BYTES,
  readRepositoryFile,
  RepositoryFileError,
} from './repository-file.js'
import type { VersionSource } from './scanner.js'

export interface VersionBytes {
  readonly bytes: Uint8Array
  readonly sha256: string
}

/** A version's file that was refused or could not be read; `reason` is its rejection reason. */
export class VersionReadError extends RepositoryFileError {}

/**
 * Reads a version's model file once. What is hashed is exactly what the session is created from,
 * so what was validated is what serves. The real path is checked again right before reading: a
 * symlink may have been swapped since the scan.
 */
export function readVersionBytes(
  root: string,
  source: VersionSource,
  maxBytes = MODEL_FILE_MAX_BYTES,
): Promise<VersionBytes> {
  return readModelFile(root, source.file, maxBytes, { shared: true })
}

/**
 * A model file's bytes and sha256; with `root`, the file must resolve inside it. Files over
 * `maxBytes` are refused before they are read: the whole file is held in memory. Hashed chunk by
 * chunk as it is read, so no step holds the event loop for long, however large the model.
 * `shared`: the bytes are in a SharedArrayBuffer, which inference workers read without a copy.
 */
export async function readModelFile(
  root: string | undefined,
  file: string,
  maxBytes = MODEL_FILE_MAX_BYTES,
  o: { shared?: boolean } = {},
): Promise<VersionBytes> {
  const hash = createHash('sha256')
  let read
  try {
    read = await readRepositoryFile(file, {
      root,
      maxBytes,
      shared: o.shared === true,
      onChunk: (chunk) => hash.update(chunk),
    })
  } catch (e) {
    if (!(e instanceof RepositoryFileError)) throw e
    const hint =
      e.reason === 'too_large'
        ? ` (--max-model-size; onnxruntime-node takes a model as one buffer)`
        : ''
    throw new VersionReadError(e.reason, `${e.message}${hint}`, e.identity)
  }
  if (!read)
    throw new VersionReadError(
      'unreadable',
      `cannot read ${displayPath(root, file)}: it is gone`,
      undefined,
    )
  return { bytes: read.bytes, sha256: hash.digest('hex') }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}
