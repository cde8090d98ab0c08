import { randomBytes } from 'node:crypto'
import { lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { readModelInfo } from '../onnx/model-info.js'
import {
  CHECKSUM_SIDECAR,
  isModelName,
  MODEL_FILE,
  SMOKE_FILE,
  versionFile,
  versionFolder,
} from '../repository/layout.js'
import { ConfigFileError, readJsonFile } from '../repository/model-config.js'
import { readModelFile, VersionReadError } from '../repository/read-version.js'
import { SMOKE_FILE_MAX_BYTES } from '../repository/repository-file.js'
import { smokeFileSchema } from '../repository/smoke-file.js'
import { refused, usageError } from './exit.js'

/**
 * Ships a model file into a models directory so the server never sees it half-written: the whole
 * version folder is built under `<models>/.staging/` (a hidden folder, which the scanner ignores,
 * on the same file system as its destination), synced to disk, and renamed in at once. The
 * checksum sidecar lets the server read it without waiting for the stability window.
 */

/** Inside the models directory: a rename from here never crosses file systems. */
export const STAGING_DIR = '.staging'

export interface ShipRequest {
  readonly file: string
  readonly modelsDir: string
  readonly model: string
  /** Default: the highest version on disk + 1. */
  readonly version?: number | undefined
  /** Make the model's folder if there is none (a new model). */
  readonly create: boolean
  /** A smoke.json for this version only. */
  readonly smoke?: string | undefined
}

export interface Shipped {
  readonly model: string
  readonly version: number
  /** The version folder, as it is now in the models directory. */
  readonly dir: string
  readonly sha256: string
  readonly createdModel: boolean
}

export async function shipVersion(r: ShipRequest): Promise<Shipped> {
  if (!isModelName(r.model))
    throw usageError(
      `'${r.model}' is not a valid model name ([A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters)`,
    )
  const modelsDir = resolve(r.modelsDir)
  if (!(await stat(modelsDir).catch(() => undefined))?.isDirectory())
    throw usageError(`the models directory ${r.modelsDir} does not exist`)
  const modelDir = join(modelsDir, r.model)
  const createdModel = await ensureModelFolder(modelDir, r)
  const { bytes, sha256 } = await readCandidate(r.file)
  const smoke = r.smoke === undefined ? undefined : await readSmoke(r.smoke)
  const version = r.version ?? (await highestVersion(modelDir)) + 1
  await refuseTaken(modelDir, r.model, version)

  const staged = join(
    modelsDir,
    STAGING_DIR,
    `${r.model}.${version}.${randomBytes(4).toString('hex')}`,
  )
  await mkdir(staged, { recursive: true })
  const target = join(modelDir, String(version))
  try {
    await writeDurably(join(staged, MODEL_FILE), bytes)
    await writeDurably(join(staged, CHECKSUM_SIDECAR), `${sha256}  ${MODEL_FILE}\n`)
    if (smoke) await writeDurably(join(staged, SMOKE_FILE), smoke)
    await syncFolder(staged)
    try {
      await rename(staged, target)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      // Another ship took the number between the check and the rename: rename(2) never
      // replaces a folder that has files in it.
      if (code === 'ENOTEMPTY' || code === 'EEXIST')
        throw refused(`version ${version} of '${r.model}' appeared meanwhile; nothing was shipped`)
      throw e
    }
    // The rename is durable once the folder that now holds the version is synced.
    await syncFolder(modelDir)
  } finally {
    await rm(staged, { recursive: true, force: true })
    // Other ships may be staging beside this one: only an empty staging folder goes.
    await rmdir(join(modelsDir, STAGING_DIR)).catch(() => {})
  }
  return { model: r.model, version, dir: target, sha256, createdModel }
}

/** A missing model folder is a typo more often than a new model: made only when asked. */
async function ensureModelFolder(modelDir: string, r: ShipRequest): Promise<boolean> {
  const s = await stat(modelDir).catch(() => undefined)
  if (s?.isDirectory()) return false
  if (s) throw usageError(`${modelDir} is not a folder`)
  if (!r.create)
    throw refused(
      `there is no model '${r.model}' in ${r.modelsDir} (no folder ${modelDir}); to ship a new model, add --create`,
    )
  await mkdir(modelDir)
  return true
}

/**
 * The bytes to ship, read once: what is hashed is what is written. They must parse as an ONNX
 * ModelProto with outputs, with the project's own reader: cheap, no runtime needed where `ship`
 * runs. Whether onnxruntime loads it and it passes its smoke tests is the gate's verdict
 * (`--wait`), or `modelgate validate`'s before shipping.
 */
async function readCandidate(file: string): Promise<{ bytes: Uint8Array; sha256: string }> {
  if (!(await stat(file).catch(() => undefined))) throw usageError(`${file} does not exist`)
  let read
  try {
    read = await readModelFile(undefined, resolve(file))
  } catch (e) {
    if (e instanceof VersionReadError) throw refused(e.message)
    throw e
  }
  let problem: string | undefined
  try {
    const info = readModelInfo(read.bytes)
    if (info.irVersion <= 0) problem = 'it declares no IR version'
    else if (info.outputs.length === 0) problem = 'its graph has no outputs'
  } catch (e) {
    problem = (e as Error).message
  }
  if (problem) throw refused(`${file} is not an ONNX model (${problem}); nothing was shipped`)
  return read
}

async function readSmoke(file: string): Promise<Buffer> {
  try {
    const parsed = await readJsonFile(resolve(file), smokeFileSchema, {
      root: undefined,
      maxBytes: SMOKE_FILE_MAX_BYTES,
    })
    if (!parsed) throw usageError(`${file} does not exist`)
  } catch (e) {
    if (e instanceof ConfigFileError) throw refused(`--smoke ${e.message}`)
    throw e
  }
  return readFile(file)
}

/** Every name that claims a version counts, folder or flat file, loadable or not: the folder is the truth. */
async function highestVersion(modelDir: string): Promise<number> {
  const names = await readdir(modelDir)
  return Math.max(0, ...names.map((n) => versionFolder(n) ?? versionFile(n) ?? 0))
}

async function refuseTaken(modelDir: string, model: string, version: number): Promise<void> {
  for (const name of [String(version), `${version}.onnx`]) {
    if (await lstat(join(modelDir, name)).catch(() => undefined))
      throw refused(
        `version ${version} of '${model}' exists (${join(basename(modelDir), name)}); a version's bytes are never replaced by ship: pick another --version, or leave it out for the next one`,
      )
  }
}

async function writeDurably(path: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(path, 'wx')
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function syncFolder(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
