import { readFile, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { Contract, GateJob, GateReport, StageResult } from './lifecycle/gate/gate-types.js'
import { runGate } from './lifecycle/gate/run-gate.js'
import { smokeFeeds, warmUp, warmupPlan } from './lifecycle/gate/warmup.js'
import { persistedStateSchema, STATE_FILE } from './lifecycle/state/state-store.js'
import { MODEL_FILE, STATE_DIR_NAME, versionFile, versionFolder } from './repository/layout.js'
import { ConfigFileError, readModelConfig, type ModelConfig } from './repository/model-config.js'
import { readModelFile, VersionReadError, type VersionBytes } from './repository/read-version.js'
import { readSmokeSet, type SmokeSet } from './repository/smoke-file.js'
import { decideBatching } from './runtime/batch-check.js'
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
  /**
   * The version serving today (folder or .onnx): the signature contract and the latency/agreement
   * baseline. Default: the active version recorded in the state directory next to the models, as
   * the server would judge the candidate; `'none'`: judge it as a model's first version.
   */
  readonly active?: string | undefined
  /** Where the server keeps state.json; default `<models>/.modelgate` (models = the model folder's parent). */
  readonly stateDir?: string | undefined
  readonly requireSmoke?: boolean
}

/** Which version the candidate was judged against, and where that came from. */
export interface ActiveReference {
  readonly version: number | null
  readonly file: string
  readonly from: 'flag' | 'state'
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
  /** The version serving today that the candidate was held to; null: judged as a first version. */
  readonly active: ActiveReference | null
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
    if (!(await stat(file).catch(() => undefined))?.isFile())
      throw new UsageError(`${path} is a folder without ${MODEL_FILE}`)
    return { file, versionDir: full, version: versionFolder(basename(full)) }
  }
  if (!full.endsWith('.onnx'))
    throw new UsageError(`${path} is neither a version folder nor an .onnx file`)
  if (basename(full) === MODEL_FILE)
    return {
      file: full,
      versionDir: dirname(full),
      version: versionFolder(basename(dirname(full))),
    }
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
  const modelDir = resolve(
    o.modelDir ?? (located.versionDir ? dirname(located.versionDir) : dirname(located.file)),
  )
  const model = basename(modelDir)
  const warnings: string[] = []
  const recorded = await findActive(o, model, modelDir, warnings)
  // The active version's own file has nothing to be held to: reporting it as held would claim a
  // comparison that never ran.
  const active = recorded?.file === located.file ? null : recorded
  if (recorded && !active) {
    warnings.push(
      `${o.path} is the version ${recorded.from === 'state' ? 'state.json records as active' : '--active names'}: judged as a first version, not against itself`,
    )
  }
  const base = { path: o.path, model, version: located.version ?? null, active }

  const { bytes, sha256 } = await readLocalModel(located.file)
  let config: ModelConfig
  let smoke: SmokeSet
  try {
    config = await readModelConfig(undefined, modelDir)
    smoke = await readSmokeSet(undefined, modelDir, located.versionDir)
  } catch (e) {
    if (!(e instanceof ConfigFileError)) throw e
    return {
      ...base,
      sha256,
      passed: false,
      unverified: false,
      stages: [],
      warnings,
      error: e.message,
    }
  }

  let contract: Contract | undefined
  let reference: GateJob['reference']
  const declared = config.signature
  if (declared) {
    const spec = (t: (typeof declared.inputs)[number]) => ({
      name: t.name,
      type: t.type,
      shape: t.shape,
    })
    contract = {
      source: 'model.json',
      inputs: declared.inputs.map(spec),
      outputs: declared.outputs.map(spec),
    }
  }
  if (active) {
    const { bytes: activeBytes, sha256: activeSha256 } = await readLocalModel(active.file)
    reference = { file: active.file, sha256: activeSha256, version: active.version ?? 0 }
    if (!contract) {
      try {
        const session = await ModelSession.create(activeBytes, config.session)
        contract = {
          source: 'active',
          inputs: session.signature.inputs,
          outputs: session.signature.outputs,
        }
        await session.release()
      } catch (e) {
        if (e instanceof ModelLoadError)
          throw new UsageError(`the active version ${active.file} does not load: ${e.message}`)
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
    // The server warms the session that will serve; here, one made and warmed the same way: the
    // same batching decision, the same batch sizes, smoke inputs for a model that refuses zeros.
    const session = await ModelSession.create(bytes, config.session)
    try {
      const feeds = smokeFeeds(smoke, session.signature)
      const batching = await decideBatching(session, config.batching, feeds)
      stages.push(await warmUp(session, { ...warmupPlan(config, batching), fallbackFeeds: feeds }))
    } finally {
      await session.release()
    }
  }
  return {
    ...base,
    sha256,
    passed: report.passed,
    unverified: report.unverified,
    stages,
    warnings: [...warnings, ...report.warnings],
  }
}

/**
 * The version the candidate is held to: `--active`, else the one state.json records as serving
 * (only if its file still holds the bytes recorded: a restarted server would not serve others).
 * Read-only: validate never writes to a server's state directory.
 */
async function findActive(
  o: ValidateOptions,
  model: string,
  modelDir: string,
  warnings: string[],
): Promise<ActiveReference | null> {
  if (o.active === 'none') return null
  if (o.active !== undefined) {
    const located = await locate(o.active)
    return { version: located.version ?? null, file: located.file, from: 'flag' }
  }
  const stateFile = join(resolve(o.stateDir ?? join(dirname(modelDir), STATE_DIR_NAME)), STATE_FILE)
  let text: string
  try {
    text = await readFile(stateFile, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null // no server has served these models yet
    throw new UsageError(`cannot read ${stateFile}: ${(e as Error).message}`)
  }
  let parsed
  try {
    parsed = persistedStateSchema.safeParse(JSON.parse(text))
  } catch {
    parsed = undefined
  }
  if (!parsed?.success)
    throw new UsageError(
      `${stateFile} is not a modelgate state file; name the serving version with --active PATH (or --active none)`,
    )
  const recorded = parsed.data.models[model]?.active
  if (!recorded) return null
  const file = await versionFileIn(modelDir, recorded.version)
  if (!file || (await readLocalModel(file)).sha256 !== recorded.sha256) {
    warnings.push(
      `${stateFile} records version ${recorded.version} as active, but its file ${file ? 'holds other bytes now' : 'is gone'}: the candidate was not held to its signature`,
    )
    return null
  }
  return { version: recorded.version, file, from: 'state' }
}

/** A version's model file in a model folder: `<v>/model.onnx`, else `<v>.onnx`. */
async function versionFileIn(modelDir: string, version: number): Promise<string | undefined> {
  for (const file of [
    join(modelDir, String(version), MODEL_FILE),
    join(modelDir, `${version}.onnx`),
  ]) {
    if ((await stat(file).catch(() => undefined))?.isFile()) return file
  }
  return undefined
}

/** The report a person reads in a CI log. */
export function formatReport(r: ValidateResult): string {
  const lines = [
    `modelgate validate ${r.path}: model '${r.model}'${r.version !== null ? `, version ${r.version}` : ''}`,
  ]
  if (r.sha256) lines.push(`  sha256 ${r.sha256}`)
  if (r.active)
    lines.push(
      `  held to the active version${r.active.version !== null ? ` ${r.active.version}` : ''} (${r.active.from === 'state' ? 'from state.json' : '--active'}: ${r.active.file})`,
    )
  else lines.push('  judged as a first version: no active version to hold it to')
  if (r.error) lines.push(`  cannot run the gate: ${r.error}`)
  for (const s of r.stages) {
    const ms = s.status === 'skipped' ? '' : `${s.ms.toFixed(1)} ms`
    const why = [s.reason && s.status !== 'passed' ? `[${s.reason}]` : '', s.message ?? '']
      .filter(Boolean)
      .join(' ')
    lines.push(`  ${s.stage.padEnd(10)} ${s.status.padEnd(8)} ${ms.padStart(10)}  ${why}`)
    const cases = (
      s.details as { cases?: { name: string; passed: boolean; message?: string }[] } | undefined
    )?.cases
    for (const c of cases ?? [])
      if (!c.passed) lines.push(`               x ${c.name}: ${c.message ?? 'failed'}`)
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`)
  lines.push(r.passed ? (r.unverified ? 'PASS (unverified: no smoke cases)' : 'PASS') : 'FAIL')
  return `${lines.join('\n')}\n`
}
