import { join } from 'node:path'
import { z } from 'zod'
import { ServerError } from '../../errors.js'
import { REFERENCE_FILE } from '../../repository/layout.js'
import { ConfigFileError, readJsonFile } from '../../repository/model-config.js'
import { displayPath, SMOKE_FILE_MAX_BYTES } from '../../repository/repository-file.js'
import { decodeFeeds, type Feeds } from '../../runtime/feeds.js'
import type { Signature } from '../../runtime/signature.js'

/** `<model>/reference.json`: `{"inputs": ...}`, sample rows as a prediction request sends them. */
const referenceFileSchema = z
  .object({ inputs: z.unknown().refine((v) => v !== undefined, 'required') })
  .strict()

/** reference.json that cannot be used; the message names the file and never quotes it. */
class ReferenceFileError extends Error {}

/**
 * The model's reference rows, decoded against `signature` as a prediction's inputs are; undefined
 * when the model has no reference.json. Read like smoke.json (bounded, inside the models directory).
 */
export async function readReference(
  root: string,
  modelDir: string,
  signature: Signature,
): Promise<Feeds | undefined> {
  const path = join(modelDir, REFERENCE_FILE)
  let file: z.infer<typeof referenceFileSchema> | undefined
  try {
    file = await readJsonFile(path, referenceFileSchema, { root, maxBytes: SMOKE_FILE_MAX_BYTES })
  } catch (e) {
    if (e instanceof ConfigFileError) throw new ReferenceFileError(e.message)
    throw e
  }
  if (!file) return undefined
  try {
    return decodeFeeds(file.inputs, signature)
  } catch (e) {
    // The same checks as a request's inputs, against the version that serves.
    if (e instanceof ServerError)
      throw new ReferenceFileError(`${displayPath(root, path)}: inputs: ${e.message}`)
    throw e
  }
}
