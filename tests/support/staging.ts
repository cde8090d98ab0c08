import { mkdir, mkdtemp, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/**
 * Shipping a version the atomic way, as the README tells users to: build it beside the models
 * directory, on the same file system, then rename it into place, so it appears whole at once.
 */

type Files = Readonly<Record<string, Uint8Array | string>>

/** Writes `files` (paths relative to the folder) into `dir`, making the folders they need. */
export async function writeFiles(dir: string, files: Files): Promise<void> {
  for (const [name, bytes] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true })
    await writeFile(join(dir, name), bytes)
  }
}

/** A fresh folder holding `files`, beside `modelsDir` (in its parent), from where a rename is atomic. */
export async function stageFolder(modelsDir: string, files: Files): Promise<string> {
  const dir = await mkdtemp(join(dirname(modelsDir), 'staging-'))
  await writeFiles(dir, files)
  return dir
}

/** `mv staged <modelsDir>/<model>/<version>`: the whole version folder appears at once. */
export async function dropFolder(
  modelsDir: string,
  model: string,
  version: number,
  files: Files,
): Promise<void> {
  const staged = await stageFolder(modelsDir, files)
  await mkdir(join(modelsDir, model), { recursive: true })
  await rename(staged, join(modelsDir, model, String(version)))
}

/** dropFolder of a version's `model.onnx` and any `extra` files beside it (`smoke.json`, ...). */
export function dropVersion(
  modelsDir: string,
  model: string,
  version: number,
  bytes: Uint8Array | string,
  extra: Readonly<Record<string, string>> = {},
): Promise<void> {
  return dropFolder(modelsDir, model, version, { ...extra, 'model.onnx': bytes })
}

/** A file written elsewhere on the same file system, then renamed to `target`. */
export async function renameFileInto(
  modelsDir: string,
  target: string,
  bytes: Uint8Array | string,
): Promise<void> {
  const staged = join(await stageFolder(modelsDir, { file: bytes }), 'file')
  await mkdir(dirname(target), { recursive: true })
  await rename(staged, target)
}
