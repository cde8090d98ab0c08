import { join, relative } from 'node:path'
import { z } from 'zod'
import { SMOKE_FILE } from './layout.js'
import { readJsonFile } from './model-config.js'
import { displayPath, SMOKE_FILE_MAX_BYTES } from './repository-file.js'

/**
 * `smoke.json`: the cases a version must pass in its gate before it serves. A model-level file
 * applies to every version; a version folder may add its own. Tensor values are checked against the
 * candidate's signature when the gate runs, not here.
 */

const tolerance = z
  .object({ atol: z.number().min(0).optional(), rtol: z.number().min(0).optional() })
  .strict()

const labelValue = z.union([z.number(), z.string()])

const smokeCase = z
  .object({
    name: z.string().min(1).optional(),
    inputs: z.unknown().refine((v) => v !== undefined, { message: 'is required' }),
    /** Expected outputs (nested arrays or typed objects), compared within the tolerance. */
    expect: z.record(z.string(), z.unknown()).optional(),
    /** Expected class of a named output: its argmax (scores) or its value (a label output); one per row. */
    label: z
      .object({
        output: z.string().min(1),
        value: z.union([labelValue, z.array(labelValue).min(1)]),
      })
      .strict()
      .optional(),
    /** Every value of the named outputs within [min, max]. */
    range: z
      .record(
        z.string(),
        z.object({ min: z.number().optional(), max: z.number().optional() }).strict(),
      )
      .optional(),
    /** Every output finite (no NaN/Infinity); on by default. */
    finite: z.boolean().optional(),
    tolerance: tolerance.optional(),
  })
  .strict()

export const smokeFileSchema = z
  .object({
    tolerance: tolerance.optional(),
    /** Fraction of label checks that must be right; default 1 (all). */
    minAccuracy: z.number().min(0).max(1).optional(),
    /** Default of `finite` for every case. */
    finite: z.boolean().optional(),
    cases: z.array(smokeCase),
  })
  .strict()

export type SmokeFile = z.infer<typeof smokeFileSchema>
export type SmokeCaseSpec = z.infer<typeof smokeCase>

export interface SmokeCase extends SmokeCaseSpec {
  readonly name: string
  /** Where the case came from, for reports: `smoke.json#3`, `2/smoke.json#0`. */
  readonly origin: string
  readonly tolerance: { readonly atol: number; readonly rtol: number }
  readonly finite: boolean
}

export interface SmokeSet {
  readonly cases: readonly SmokeCase[]
  readonly minAccuracy: number
  /** The files that were read, for the report: relative to the models directory. */
  readonly files: readonly string[]
}

export const DEFAULT_TOLERANCE = Object.freeze({ atol: 1e-5, rtol: 1e-3 })

/**
 * Model-level smoke cases plus the version's own, with defaults applied. Throws ConfigFileError
 * naming the file and path of anything invalid. A version-level `minAccuracy` wins.
 */
export async function readSmokeSet(
  root: string | undefined,
  modelDir: string,
  versionDir: string | undefined,
): Promise<SmokeSet> {
  const files: { label: string; path: string }[] = [
    { label: SMOKE_FILE, path: join(modelDir, SMOKE_FILE) },
  ]
  if (versionDir)
    files.push({
      label: join(relative(modelDir, versionDir), SMOKE_FILE),
      path: join(versionDir, SMOKE_FILE),
    })
  const cases: SmokeCase[] = []
  const read: string[] = []
  let minAccuracy = 1
  const contents = await Promise.all(
    files.map(async (f) => ({
      ...f,
      file: await readJsonFile(f.path, smokeFileSchema, { root, maxBytes: SMOKE_FILE_MAX_BYTES }),
    })),
  )
  for (const { label, path, file } of contents) {
    if (!file) continue
    read.push(displayPath(root, path))
    if (file.minAccuracy !== undefined) minAccuracy = file.minAccuracy
    file.cases.forEach((c, i) => cases.push(normalizeCase(c, file, `${label}#${i}`)))
  }
  return { cases, minAccuracy, files: read }
}

export function normalizeCase(
  c: SmokeCaseSpec,
  file: Pick<SmokeFile, 'tolerance' | 'finite'>,
  origin: string,
): SmokeCase {
  return {
    ...c,
    name: c.name ?? origin,
    origin,
    tolerance: { ...DEFAULT_TOLERANCE, ...file.tolerance, ...c.tolerance },
    finite: c.finite ?? file.finite ?? true,
  }
}
