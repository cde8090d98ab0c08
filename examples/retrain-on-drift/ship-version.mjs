// Ships a new version into the models directory the safe way (the README's "Shipping a new
// version"): the whole version folder is built in a hidden folder of the models directory (ignored
// by modelgate, and on the same file system), with a sha256 sidecar, flushed to disk, then renamed
// into the model's folder in one step. modelgate never sees a half-written version.
import { createHash } from 'node:crypto'
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'

const VERSION_NAME = /^([1-9][0-9]*)(\.onnx)?$/

/** Writes `files` ({name: bytes or text}, model.onnx among them) as the model's next version. */
export async function shipVersion(modelsDir, model, files) {
  const modelDir = join(modelsDir, model)
  const version = (await highestVersion(modelDir)) + 1
  // What a retrain cut short left behind under this name goes first.
  const folder = join(modelsDir, '.retrain', `${model}.${version}`)
  await rm(folder, { recursive: true, force: true })
  await mkdir(folder, { recursive: true })
  const sha256 = createHash('sha256').update(files['model.onnx']).digest('hex')
  const all = { ...files, 'model.onnx.sha256': `${sha256}  model.onnx\n` }
  for (const [name, bytes] of Object.entries(all)) await writeDurably(join(folder, name), bytes)
  await fsyncPath(folder)
  // Had someone shipped this number meanwhile, the rename fails (their folder is not empty).
  await rename(folder, join(modelDir, String(version)))
  await fsyncPath(modelDir)
  return { version, sha256 }
}

/** The highest version in the model's folder, as a folder (`3/`) or a flat file (`3.onnx`). */
async function highestVersion(modelDir) {
  const names = await readdir(modelDir)
  return Math.max(0, ...names.map((n) => Number(VERSION_NAME.exec(n)?.[1] ?? 0)))
}

async function writeDurably(path, bytes) {
  const file = await open(path, 'wx')
  try {
    await file.writeFile(bytes)
    await file.sync()
  } finally {
    await file.close()
  }
}

/** A folder's entries reach the disk only when the folder itself is flushed. */
async function fsyncPath(path) {
  const dir = await open(path, 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
