import type { StageResult } from '../lifecycle/gate/gate-types.js'
import { roundMs, roundStages } from '../lifecycle/gate/stage-results.js'
import type { ModelRegistry } from '../lifecycle/versions/model-registry.js'
import type {
  ModelView,
  VersionView as VersionRecordView,
} from '../lifecycle/versions/version-state.js'
import type { LiveFigures, LiveSnapshot, LiveWindow } from '../metrics/live-figures.js'
import type { RequestRates } from '../metrics/request-rates.js'
import { probationRules, type RuleResult } from '../lifecycle/promotion/probation-rules.js'
import {
  canaryRules,
  shadowFigures,
  type ShadowFigures,
} from '../lifecycle/promotion/rollout-rules.js'
import type { Signature, TensorSpec } from '../runtime/signature.js'
import type { DriftMonitor, DriftView } from './drift/drift-monitor.js'
import { fileProblem, restartOutlook, type RestartOutlook } from './restart-outlook.js'

/** What `GET /models` and `GET /models/{name}` show: plain data, no HTTP. */

export interface VersionView {
  readonly version: number
  readonly status: string
  readonly note?: string
  readonly source: string
  /** false once the file was deleted (a loaded version keeps serving). */
  readonly onDisk: boolean
  readonly sha256: string | null
  readonly loaded: boolean
  readonly unverified?: boolean
  readonly stage?: string
  readonly reason?: string
  readonly message?: string
  readonly rolledBack?: { readonly reason: string; readonly at: string }
  /**
   * The file's own verdict, when the file holds other bytes than the version serves (it was
   * replaced in place): what the log reported about the new bytes.
   */
  readonly file?: {
    readonly sha256: string
    readonly verdict: 'passed' | 'rejected'
    readonly stage?: string
    readonly reason?: string
    readonly message?: string
  }
  readonly gate?: {
    readonly passed: boolean
    readonly ms: number
    readonly stages: readonly StageResult[]
    readonly warnings: readonly string[]
  }
  /** Its figures over its last requests and feedback (null: it has served nothing yet). */
  readonly live: LiveView | null
}

/** Live figures as shown: without the counts only probation needs, rounded for people. */
export type LiveView = Omit<LiveSnapshot, 'labels' | 'values'> & {
  /** Requests answered per second over the last ten seconds (null: not measured yet). */
  readonly requestsPerSecond: number | null
}

export interface ProbationView {
  readonly version: number
  readonly previous: number
  readonly startedAt: string
  readonly endsAt: string
  readonly rules: readonly RuleResult[]
}

export interface RolloutView {
  readonly version: number
  readonly mode: 'shadow' | 'canary'
  /** The active version it is compared with. */
  readonly against: number
  readonly startedAt: string
  /** Canary: the step running (0-based), its share (%), every step's share, when the step ends. */
  readonly step: number | null
  readonly percent: number | null
  readonly steps: readonly number[] | null
  readonly stepEndsAt: string | null
  /** Shadow: how its answers compare with the active version's. */
  readonly shadow: ShadowFigures | null
  /** Canary: the probation rules on this step, against the active version over the same period. */
  readonly rules: readonly RuleResult[] | null
}

export interface ModelSummary {
  readonly name: string
  readonly active: number | null
  readonly versions: readonly { readonly version: number; readonly status: string }[]
}

export interface ModelDetail {
  readonly name: string
  readonly active: number | null
  readonly retained: readonly number[]
  readonly configError: string | null
  readonly versions: readonly VersionView[]
  readonly signature: SignatureView | null
  /** The active version's batching: on or off, and why. */
  readonly batching: { readonly enabled: boolean; readonly reason: string } | null
  /** Where the active version's sessions run (main thread or workers), how many workers, and why. */
  readonly execution: {
    readonly mode: 'main' | 'workers'
    readonly workers: number
    readonly reason: string
  } | null
  /** Entries of the model's folder refused for safety (they resolve outside the models directory). */
  readonly refused: readonly { readonly path: string; readonly reason: string }[]
  /** What a restart would serve, and why. */
  readonly restart: RestartOutlook
  /** What an operator should know and the states alone do not say (a serving file replaced or gone). */
  readonly warnings: readonly string[]
  /** The active version's probation while it runs, each rule as it stands (null: none). */
  readonly probation: ProbationView | null
  /** A candidate being rolled out beside the active version, with its figures (null: none). */
  readonly rollout: RolloutView | null
  /** The active version's input and prediction drift (null: model.json has no `drift`, or nothing serves). */
  readonly drift: DriftView | null
}

export interface SignatureView {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  readonly omittedOutputs: Signature['omittedOutputs']
}

export function listModels(registry: ModelRegistry): ModelSummary[] {
  return registry.list().map((m) => ({
    name: m.name,
    active: m.active?.version ?? null,
    versions: sortedVersions(m).map((v) => ({ version: v.version, status: v.state.status })),
  }))
}

export function describeModel(
  registry: ModelRegistry,
  live: LiveFigures,
  name: string,
  drift?: DriftMonitor,
  rates?: RequestRates,
): ModelDetail {
  const m = registry.require(name)
  const signature = m.active?.signature
  return {
    name: m.name,
    active: m.active?.version ?? null,
    retained: m.retained.map((v) => v.version),
    configError: m.configError ?? null,
    versions: sortedVersions(m).map((v) => {
      const window = live.find(m.name, v.version)
      return versionView(v, window && liveView(window, rates))
    }),
    signature: signature
      ? {
          inputs: signature.inputs,
          outputs: signature.outputs,
          omittedOutputs: signature.omittedOutputs,
        }
      : null,
    batching: m.active ? m.active.batching : null,
    execution: m.active
      ? {
          mode: m.active.execution.mode,
          workers: m.active.execution.workers,
          reason: m.active.execution.reason,
        }
      : null,
    refused: m.refused,
    restart: restartOutlook(m),
    warnings: modelWarnings(m),
    probation: probationView(m, live),
    rollout: rolloutView(m, live),
    drift: drift?.view(m) ?? null,
  }
}

function rolloutView(m: ModelView, live: LiveFigures): RolloutView | null {
  const r = m.rollout
  if (!r) return null
  const s = r.settings
  const canary = s.mode === 'canary'
  const shadow =
    s.mode === 'shadow' ? shadowFigures(r.shadow, s.minRequests, s.agreement.min) : undefined
  const rules = canaryRules(m, live)
  return {
    version: r.version,
    mode: r.mode,
    against: r.against,
    startedAt: r.startedAt,
    step: canary ? r.step : null,
    percent: canary ? r.percent : null,
    steps: canary ? s.steps : null,
    stepEndsAt: r.stepEndsAt ?? null,
    shadow: shadow
      ? {
          ...shadow,
          agreement: rounded(shadow.agreement),
          meanAbsDiff: rounded(shadow.meanAbsDiff),
        }
      : null,
    rules: rules ? roundedRules(rules) : null,
  }
}

function probationView(m: ModelView, live: LiveFigures): ProbationView | null {
  const p = m.probation
  const rules = probationRules(m, live)
  if (!p || !rules) return null
  return {
    version: p.version,
    previous: p.previous,
    startedAt: p.startedAt,
    endsAt: p.endsAt,
    rules: roundedRules(rules),
  }
}

function roundedRules(rules: readonly RuleResult[]): RuleResult[] {
  return rules.map((r) => ({ ...r, observed: rounded(r.observed), limit: rounded(r.limit) }))
}

function liveView(window: LiveWindow, rates: RequestRates | undefined): LiveView {
  const s = window.snapshot()
  const perSecond = rates?.perSecond(window) ?? null
  return {
    requests: s.requests,
    errors: s.errors,
    errorRate: rounded(s.errorRate),
    p50Ms: rounded(s.p50Ms),
    p99Ms: rounded(s.p99Ms),
    feedback: s.feedback,
    accuracy: rounded(s.accuracy),
    mae: rounded(s.mae),
    requestsPerSecond: perSecond === null ? null : Math.round(perSecond * 10) / 10,
  }
}

/** Four significant decimals are plenty for a person (and for a script comparing to a limit). */
function rounded(x: number | null): number | null {
  return x === null ? null : Math.round(x * 10_000) / 10_000
}

function modelWarnings(m: ModelView): string[] {
  const warnings: string[] = []
  for (const loaded of [m.active, ...m.retained]) {
    if (!loaded) continue
    const problem = fileProblem(loaded.version, loaded.sha256, m.versions.get(loaded.version))
    if (problem) warnings.push(problem)
  }
  for (const r of m.refused) warnings.push(`${r.path} ${r.reason}: refused`)
  return warnings
}

function sortedVersions(m: ModelView): VersionRecordView[] {
  return [...m.versions.values()].sort((a, b) => a.version - b.version)
}

function versionView(v: VersionRecordView, live: LiveView | undefined): VersionView {
  const state = v.state
  return {
    version: v.version,
    status: state.status,
    ...(state.status === 'discovered' && state.note && { note: state.note }),
    ...(state.status === 'discovered' &&
      state.waiting && { reason: state.waiting.reason, message: state.waiting.message }),
    source: v.source.kind === 'folder' ? `${v.version}/model.onnx` : `${v.version}.onnx`,
    onDisk: v.onDisk,
    sha256: v.loaded?.sha256 ?? v.verdict?.sha256 ?? null,
    loaded: v.loaded !== undefined && !v.loaded.retired,
    ...(v.verdict?.unverified && { unverified: true }),
    ...(state.status === 'rejected' && {
      stage: state.stage,
      reason: state.reason,
      message: state.message,
    }),
    ...(state.status === 'unloaded' && { reason: state.reason }),
    ...(v.rolledBack && { rolledBack: { reason: v.rolledBack.reason, at: v.rolledBack.at } }),
    ...(v.loaded &&
      v.verdict &&
      v.verdict.sha256 !== v.loaded.sha256 && {
        file: {
          sha256: v.verdict.sha256,
          verdict: v.verdict.kind,
          ...(v.verdict.stage !== undefined && { stage: v.verdict.stage }),
          ...(v.verdict.reason !== undefined && { reason: v.verdict.reason }),
          ...(v.verdict.message !== undefined && { message: v.verdict.message }),
        },
      }),
    ...(v.gate && {
      gate: {
        passed: v.gate.passed,
        ms: roundMs(v.gate.ms),
        stages: roundStages(v.gate.stages),
        warnings: v.gate.warnings,
      },
    }),
    live: live ?? null,
  }
}
