import { stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { Contract, GateJob, GateReport, StageResult } from './lifecycle/gate/gate-types.js'
import { runGate } from './lifecycle/gate/run-gate.js'
import { warmUp } from './lifecycle/gate/warmup.js'
import { MODEL_FILE, versionFile, versionFolder } from './repository/layout.js'
import { ConfigFileError, readModelConfig, type ModelConfig } from './repository/model-config.js'
import { readModelFile, VersionReadError, type VersionBytes } from './repository/read-version.js'
import { readSmokeSet, type SmokeSet } from './repository/smoke-file.js'
import { ModelLoadError, ModelSession } from './runtime/session.js'

/**
 * `modelgate validate`: the server's gate, offline, for a CI pipeline to refuse a model before it
 * is ever copied to a server. The same stages and rules; it runs in this process.
 */

export interface ValidateOptions {
  /** A version folder (holding model.onnx) or an .onnx file. */
  readonly path: string
  /** The model's folder (model.json, smoke.json); default: the parent of the version folder. */
  readonly modelDir?: string | undefined
  /** The version serving today (folder or .onnx): the signature contract and the latency/agreement baseline. */
  readonly active?: string | undefined
  readonly requireSmoke?: boolean
}

export interface ValidateResult {
  readonly path: string
  readonly model: string
  readonly version: number | null
  readonly sha256: string | null
  readonly passed: boolean
  readonly unverified: boolean
  readonly stages: readonly StageResult[]
  readonly warnings: readonly string[]
  /** Set when the gate could not run at all (a broken model.json or smoke.json). */
  readonly error?: string
}

export class UsageError extends Error {}

interface Located {
  readonly file: string
  readonly versionDir: string | undefined
  readonly version: number | undefined
}

/** Where the model file is, given a version folder, a folder's model.onnx, or a flat <v>.onnx. */
async function locate(path: string): Promise<Located> {
  const full = resolve(path)
  const s = await stat(full).catch(() => undefined)
  if (!s) throw new UsageError(`${path} does not exist`)
  if (s.isDirectory()) {
    const file = join(full, MODEL_FILE)
    if (!(await stat(file).catch(() => undefined))?.isFile()) throw new UsageError(`${path} is a folder without ${MODEL_FILE}`)
    return { file, versionDir: full, version: versionFolder(basename(full)) }
  }
  if (!full.endsWith('.onnx')) throw new UsageError(`${path} is neither a version folder nor an .onnx file`)
  if (basename(full) === MODEL_FILE) return { file: full, versionDir: dirname(full), version: versionFolder(basename(dirname(full))) }
  return { file: full, versionDir: undefined, version: versionFile(basename(full)) }
}

/** Read like the server reads: a FIFO or a file too large for onnxruntime-node is refused, not waited on. */
async function readLocalModel(file: string): Promise<VersionBytes> {
  try {
    return await readModelFile(undefined, file)
  } catch (e) {
    if (e instanceof VersionReadError) throw new UsageError(e.message)
    throw e
  }
}

export async function validate(o: ValidateOptions): Promise<ValidateResult> {
  const located = await locate(o.path)
  const modelDir = resolve(o.modelDir ?? (located.versionDir ? dirname(located.versionDir) : dirname(located.file)))
  const model = basename(modelDir)
  const active = o.active ? await locate(o.active) : undefined
  const base = { path: o.path, model, version: located.version ?? null }

  const { bytes, sha256 } = await readLocalModel(located.file)
  let config: ModelConfig
  let smoke: SmokeSet
  try {
    config = await readModelConfig(undefined, modelDir)
    smoke = await readSmokeSet(undefined, modelDir, located.versionDir)
  } catch (e) {
    if (!(e instanceof ConfigFileError)) throw e
    return { ...base, sha256, passed: false, unverified: false, stages: [], warnings: [], error: e.message }
  }

  let contract: Contract | undefined
  let reference: GateJob['reference']
  const declared = config.signature
  if (declared) {
    const spec = (t: (typeof declared.inputs)[number]) => ({ name: t.name, type: t.type, shape: t.shape })
    contract = { source: 'model.json', inputs: declared.inputs.map(spec), outputs: declared.outputs.map(spec) }
  }
  if (active) {
    const { bytes: activeBytes, sha256: activeSha256 } = await readLocalModel(active.file)
    reference = { file: active.file, sha256: activeSha256, version: active.version ?? 0 }
    if (!contract) {
      try {
        const session = await ModelSession.create(activeBytes, config.session)
        contract = { source: 'active', inputs: session.signature.inputs, outputs: session.signature.outputs }
        await session.release()
      } catch (e) {
        if (e instanceof ModelLoadError) throw new UsageError(`--active ${o.active} does not load: ${e.message}`)
        throw e
      }
    }
  }

  const report: GateReport = await runGate({
    model,
    version: located.version ?? 0,
    candidate: { file: located.file, sha256 },
    root: undefined,
    sessionOptions: config.session,
    smoke,
    requireSmoke: o.requireSmoke === true || config.requireSmoke === true,
    contract,
    allowSignatureChange: config.allowSignatureChange,
    latency: config.latency,
    agreement: config.agreement,
    reference,
  })
  const stages = [...report.stages]
  if (report.passed) {
    // The server warms the session that will serve; here, one made the same way.
    const session = await ModelSession.create(bytes, config.session)
    try {
      stages.push(await warmUp(session, { runs: config.warmup.runs, batchSizes: config.warmup.batchSizes ?? [1], fallbackFeeds: [] }))
    } finally {
      await session.release()
    }
  }
  return { ...base, sha256, passed: report.passed, unverified: report.unverified, stages, warnings: report.warnings }
}

/** The report a person reads in a CI log. */
export function formatReport(r: ValidateResult): string {
  const lines = [`modelgate validate ${r.path}: model '${r.model}'${r.version !== null ? `, version ${r.version}` : ''}`]
  if (r.sha256) lines.push(`  sha256 ${r.sha256}`)
  if (r.error) lines.push(`  cannot run the gate: ${r.error}`)
  for (const s of r.stages) {
    const ms = s.status === 'skipped' ? '' : `${s.ms.toFixed(1)} ms`
    const why = [s.reason && s.status !== 'passed' ? `[${s.reason}]` : '', s.message ?? ''].filter(Boolean).join(' ')
    lines.push(`  ${s.stage.padEnd(10)} ${s.status.padEnd(8)} ${ms.padStart(10)}  ${why}`)
    const cases = (s.details as { cases?: { name: string; passed: boolean; message?: string }[] } | undefined)?.cases
    for (const c of cases ?? []) if (!c.passed) lines.push(`               x ${c.name}: ${c.message ?? 'failed'}`)
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`)
  lines.push(r.passed ? (r.unverified ? 'PASS (unverified: no smoke cases)' : 'PASS') : 'FAIL')
  return `${lines.join('\n')}\n`
}
