import {
  DEFAULT_TOLERANCE,
  smokeFileSchema,
  type SmokeCaseSpec,
  type SmokeFile,
} from '../repository/smoke-file.js'
import type { TypedTensorJson } from '../runtime/tensor-encode.js'
import { usageError } from './exit.js'
import type { RecordedOutputs } from './smoke-source.js'

/**
 * Today's outputs as smoke cases, so the next version is gated against today's behaviour:
 * - a classifier (it has a label output) gets `label` cases: a retrained model's scores move, its
 *   labels on the samples should not; `minAccuracy` (default 1) says how many may change;
 * - any other model gets `expect` cases on every output: floats within a tolerance a re-export or
 *   an optimized graph meets (float32: atol 1e-5, rtol 1e-3; float16 looser), other types exact.
 * Pure: no I/O.
 */

export interface RecordedCase {
  readonly name: string
  readonly inputs: unknown
  readonly outputs: RecordedOutputs
}

export interface CaseOptions {
  /** `--label`: an output name, 'none', or undefined to decide from the outputs. */
  readonly label: string | undefined
  /** model.json `feedback.output`: what the server itself takes for the label. */
  readonly configuredLabel: string | undefined
  /** `--expect`: expect cases on every output for a classifier too. */
  readonly expectAll: boolean
  readonly tolerance: { readonly atol?: number | undefined; readonly rtol?: number | undefined }
  readonly minAccuracy: number | undefined
}

export interface RecordedSmoke {
  readonly file: SmokeFile
  /** The output label cases check, if any. */
  readonly labelOutput: string | undefined
}

const FLOAT = new Set(['float32', 'float64', 'float16'])
/** The label types of the server's own rule (feedback, drift): an int or a string class. */
const LABEL = new Set(['int64', 'int32', 'string'])
/** float16 carries about 3 significant digits: float32's tolerance would fail a faithful copy. */
const FLOAT16_TOLERANCE = Object.freeze({ atol: 1e-3, rtol: 1e-2 })

export function recordSmoke(cases: readonly RecordedCase[], o: CaseOptions): RecordedSmoke {
  const labelOutput = chooseLabel(cases[0]!.outputs, o)
  const tuned = o.tolerance.atol !== undefined || o.tolerance.rtol !== undefined
  const specs = cases.map((c) => caseSpec(c, labelOutput, o, tuned))
  const anyExpect = specs.some((s) => s.expect)
  const file: SmokeFile = {
    ...(anyExpect && { tolerance: { ...DEFAULT_TOLERANCE, ...defined(o.tolerance) } }),
    ...(labelOutput !== undefined && { minAccuracy: o.minAccuracy ?? 1 }),
    cases: specs,
  }
  // What is written is what the server will read: a file it would refuse is a bug here.
  return { file: smokeFileSchema.parse(file), labelOutput }
}

function chooseLabel(outputs: RecordedOutputs, o: CaseOptions): string | undefined {
  if (o.label === 'none') return undefined
  const names = Object.keys(outputs)
  if (o.label !== undefined) {
    if (!names.includes(o.label))
      throw usageError(`--label ${o.label}: the model's outputs are ${names.join(', ')}`)
    return o.label
  }
  if (o.configuredLabel !== undefined && names.includes(o.configuredLabel)) return o.configuredLabel
  if (names.includes('label')) return 'label'
  return names.find((n) => LABEL.has(outputs[n]!.type))
}

function caseSpec(
  c: RecordedCase,
  labelOutput: string | undefined,
  o: CaseOptions,
  tuned: boolean,
): SmokeCaseSpec {
  const labels = labelOutput === undefined ? [] : labelsOf(c.outputs[labelOutput]!)
  const withLabel = labels.length > 0
  const withExpect = !withLabel || o.expectAll
  const outputs = Object.values(c.outputs)
  const float16 = withExpect && !tuned && outputs.some((t) => t.type === 'float16')
  const nonFinite = outputs.some(
    (t) => FLOAT.has(t.type) && t.data.some((v) => typeof v === 'string' || !Number.isFinite(v)),
  )
  return {
    name: c.name,
    inputs: c.inputs as SmokeCaseSpec['inputs'],
    ...(withLabel && {
      label: { output: labelOutput!, value: labels.length === 1 ? labels[0]! : labels },
    }),
    ...(withExpect && { expect: { ...c.outputs } }),
    ...(float16 && { tolerance: { ...FLOAT16_TOLERANCE } }),
    ...(nonFinite && { finite: false }),
  }
}

/**
 * One label per row, as the gate predicts them: the values of an int or string output, or the
 * argmax over the last axis of a float output.
 */
function labelsOf(t: TypedTensorJson): (number | string)[] {
  if (!FLOAT.has(t.type))
    // int64 beyond 2^53 arrives as a decimal string; the gate compares it as a number too.
    return t.data.map((v) => (t.type === 'string' ? String(v) : Number(v)))
  const width = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1]!
  if (width === 0) return []
  const labels: number[] = []
  for (let row = 0; row < t.data.length / width; row++) {
    let best = 0
    for (let j = 1; j < width; j++)
      if (Number(t.data[row * width + j]) > Number(t.data[row * width + best])) best = j
    labels.push(best)
  }
  return labels
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** Top-level keys one per line, each case on one line: a recorded file reads and diffs by case. */
export function formatSmokeFile(file: SmokeFile): string {
  const { cases, ...head } = file
  const entries = Object.entries(head).map(
    ([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`,
  )
  const body = cases.map((c) => `    ${JSON.stringify(c)}`).join(',\n')
  entries.push(`  "cases": [\n${body}\n  ]`)
  return `{\n${entries.join(',\n')}\n}\n`
}
