import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * The ONNX backend node-test subset in tests/fixtures/onnx-node (see its README): the manifest,
 * the comparison rules it states, and a models directory that serves every case.
 */

const CONFORMANCE_DIR = join(import.meta.dirname, '..', 'fixtures', 'onnx-node')

export type Json = number | string | boolean

export interface CaseTensor {
  readonly name: string
  readonly type: string
  readonly dims: number[]
  readonly data: Json[]
}

export interface ConformanceCase {
  readonly name: string
  readonly model: string
  readonly inputs: CaseTensor[]
  readonly outputs: CaseTensor[]
  readonly tolerance: { readonly rtol: number; readonly atol: number }
}

export const cases = (
  JSON.parse(await readFile(join(CONFORMANCE_DIR, 'manifest.json'), 'utf8')) as {
    cases: ConformanceCase[]
  }
).cases

export const FLOATS = new Set(['float32', 'float64', 'float16'])
export const BIG_INTS = new Set(['int64', 'uint64'])
export const NON_FINITE: Record<string, number> = {
  NaN: NaN,
  Infinity: Infinity,
  '-Infinity': -Infinity,
}

/** A float as the wire carries it: a number, or one of the three non-finite strings. */
export function wireFloat(value: unknown, what: string): number {
  if (typeof value === 'number') return value
  if (typeof value === 'string' && value in NON_FINITE) return NON_FINITE[value]!
  throw new Error(`${what}: ${JSON.stringify(value)} is not a float on the wire`)
}

/** The manifest's rule: |got - exp| <= atol + rtol × |exp|, NaN equals NaN. */
export function floatMatches(got: number, exp: number, tol: ConformanceCase['tolerance']): boolean {
  if (Number.isNaN(exp)) return Number.isNaN(got)
  if (!Number.isFinite(exp)) return got === exp
  return Math.abs(got - exp) <= tol.atol + tol.rtol * Math.abs(exp)
}

/** int64/uint64: a number when it is a safe integer, a decimal string beyond 2^53. */
function wireBigInt(value: unknown, what: string): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      throw new Error(`${what}: ${value} is a number but not a safe integer`)
    return BigInt(value)
  }
  if (typeof value === 'string' && /^-?\d+$/.test(value)) {
    const v = BigInt(value)
    if (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new Error(`${what}: ${value} fits a JSON number exactly but was sent as a string`)
    }
    return v
  }
  throw new Error(`${what}: ${JSON.stringify(value)} is not an int64 on the wire`)
}

/** Every mismatch between a served output and the expected one, as readable lines. */
export function compareOutput(
  got: unknown,
  exp: CaseTensor,
  tol: ConformanceCase['tolerance'],
): string[] {
  const where = `output '${exp.name}'`
  if (got === null || typeof got !== 'object')
    return [`${where}: expected a typed tensor, got ${JSON.stringify(got)}`]
  const t = got as { type?: unknown; shape?: unknown; data?: unknown }
  const problems: string[] = []
  if (t.type !== exp.type)
    problems.push(`${where}: type ${JSON.stringify(t.type)}, expected ${exp.type}`)
  if (JSON.stringify(t.shape) !== JSON.stringify(exp.dims)) {
    problems.push(
      `${where}: shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(exp.dims)}`,
    )
  }
  if (!Array.isArray(t.data) || t.data.length !== exp.data.length) {
    problems.push(
      `${where}: ${Array.isArray(t.data) ? t.data.length : 'no'} elements, expected ${exp.data.length}`,
    )
    return problems
  }
  const data = t.data as unknown[]
  for (let i = 0; i < exp.data.length && problems.length < 5; i++) {
    const at = `${where}[${i}]`
    try {
      if (FLOATS.has(exp.type)) {
        const g = wireFloat(data[i], at)
        const e = wireFloat(exp.data[i], `manifest ${at}`)
        if (!floatMatches(g, e, tol)) problems.push(`${at}: got ${g}, expected ${e}`)
      } else if (BIG_INTS.has(exp.type)) {
        const g = wireBigInt(data[i], at)
        if (g !== BigInt(exp.data[i] as string))
          problems.push(`${at}: got ${g}, expected ${exp.data[i]}`)
      } else if (data[i] !== exp.data[i]) {
        problems.push(
          `${at}: got ${JSON.stringify(data[i])}, expected ${JSON.stringify(exp.data[i])}`,
        )
      }
    } catch (e) {
      problems.push((e as Error).message)
    }
  }
  return problems
}

/** The case as a smoke test: exact expected outputs; NaN/Infinity are expected, not failures. */
function smokeFile(c: ConformanceCase) {
  const typed = (t: CaseTensor) => ({ type: t.type, shape: t.dims, data: t.data })
  return {
    tolerance: c.tolerance,
    finite: false,
    cases: [
      {
        name: c.name,
        inputs: Object.fromEntries(c.inputs.map((i) => [i.name, typed(i)])),
        expect: Object.fromEntries(c.outputs.map((o) => [o.name, typed(o)])),
      },
    ],
  }
}

/**
 * Every case (or the cases named in `only`) as a model of its own, `<case>/1/model.onnx`, gated like any model with its own case
 * as its smoke test (zeros, the check for a model without smoke cases, are meaningless for many
 * of these operators: Mod by zero).
 */
export async function writeConformanceModels(dir: string, only?: readonly string[]): Promise<void> {
  for (const c of cases) {
    if (only !== undefined && !only.includes(c.name)) continue
    await mkdir(join(dir, c.name, '1'), { recursive: true })
    await copyFile(join(CONFORMANCE_DIR, c.model), join(dir, c.name, '1', 'model.onnx'))
    await writeFile(join(dir, c.name, 'smoke.json'), JSON.stringify(smokeFile(c)))
  }
}
