import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { SMOKE_FILE_MAX_BYTES } from '../repository/repository-file.js'
import type { SmokeFile } from '../repository/smoke-file.js'
import { refused, usageError } from './exit.js'
import { formatSmokeFile } from './smoke-cases.js'

/** Writes a smoke.json the server will accept: within its size limit, replaced in one rename. */
export async function writeSmokeFile(path: string, file: SmokeFile): Promise<void> {
  const text = formatSmokeFile(file)
  if (Buffer.byteLength(text) > SMOKE_FILE_MAX_BYTES)
    throw refused(
      'the recorded smoke.json would be over 64 MiB, which the server refuses: fewer or smaller inputs',
    )
  await writeAtomically(path, text)
}

/**
 * A server may read the file at any moment (smoke.json, a model in a watched folder): it sees the
 * old file or the new, never half of one.
 */
export async function writeAtomically(path: string, data: string | Uint8Array): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const handle = await open(temp, 'wx')
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (e) {
    await rm(temp, { force: true })
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw usageError(`cannot write ${path}: its folder does not exist`)
    throw e
  }
}
