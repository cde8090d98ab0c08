import { createHash } from 'node:crypto'
import { readFile, realpath } from 'node:fs/promises'
import { isInside } from './layout.js'
import type { VersionSource } from './scanner.js'

export interface VersionBytes {
  readonly bytes: Uint8Array
  readonly sha256: string
}

export class VersionReadError extends Error {
  constructor(
    readonly reason: 'escapes_models_dir' | 'unreadable',
    message: string,
  ) {
    super(message)
  }
}

/**
 * Reads a version's model file once. What is hashed is exactly what the session is created from,
 * so what was validated is what serves. The real path is checked again right before reading: a
 * symlink may have been swapped since the scan.
 */
export function readVersionBytes(root: string, source: VersionSource): Promise<VersionBytes> {
  return readModelFile(root, source.file)
}

/** A model file's bytes and sha256; with `root`, the file must resolve inside it. */
export async function readModelFile(root: string | undefined, file: string): Promise<VersionBytes> {
  let real: string
  try {
    real = await realpath(file)
  } catch (e) {
    throw new VersionReadError('unreadable', `cannot read ${file}: ${(e as Error).message}`)
  }
  if (root !== undefined && !isInside(root, real)) {
    throw new VersionReadError('escapes_models_dir', `${file} resolves to ${real}, outside the models directory`)
  }
  let bytes: Buffer
  try {
    bytes = await readFile(real)
  } catch (e) {
    throw new VersionReadError('unreadable', `cannot read ${file}: ${(e as Error).message}`)
  }
  return { bytes, sha256: sha256Hex(bytes) }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}
