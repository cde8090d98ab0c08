import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { MODEL_CONFIG_FILE } from './layout.js'

/** `<model>/model.json`: serving configuration for one model. Unknown keys are errors (typos). */
export const modelConfigSchema = z
  .object({
    session: z
      .object({
        intraOpNumThreads: z.number().int().min(0).max(256).optional(),
        interOpNumThreads: z.number().int().min(0).max(256).optional(),
        graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).optional(),
      })
      .strict()
      .default({}),
  })
  .strict()

export type ModelConfig = z.infer<typeof modelConfigSchema>

export const DEFAULT_MODEL_CONFIG: ModelConfig = Object.freeze(modelConfigSchema.parse({}))

export class ConfigFileError extends Error {}

/**
 * Reads and validates a JSON config file. A missing file gives `undefined`; anything else wrong
 * throws ConfigFileError naming the file and the offending path (`session.intraOpNumThreads: ...`).
 */
export async function readJsonFile<T>(path: string, schema: z.ZodType<T>): Promise<T | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ConfigFileError(`${path}: cannot read: ${(e as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new ConfigFileError(`${path}: not valid JSON: ${(e as Error).message}`)
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    throw new ConfigFileError(`${path}: ${issues.join('; ')}`)
  }
  return parsed.data
}

export async function readModelConfig(modelDir: string): Promise<ModelConfig> {
  return (await readJsonFile(join(modelDir, MODEL_CONFIG_FILE), modelConfigSchema)) ?? DEFAULT_MODEL_CONFIG
}
