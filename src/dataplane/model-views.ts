import type { ModelRecord, ModelRegistry, VersionRecord } from '../lifecycle/model-registry.js'
import type { Signature, TensorSpec } from '../runtime/signature.js'

/** What `GET /models` and `GET /models/{name}` show: plain data, no HTTP. */

export interface VersionView {
  readonly version: number
  readonly status: string
  readonly source: string
  readonly sha256: string | null
  readonly loaded: boolean
  readonly stage?: string
  readonly reason?: string
  readonly message?: string
}

export interface ModelSummary {
  readonly name: string
  readonly active: number | null
  readonly versions: readonly { readonly version: number; readonly status: string }[]
}

export interface ModelDetail {
  readonly name: string
  readonly active: number | null
  readonly configError: string | null
  readonly versions: readonly VersionView[]
  readonly signature: SignatureView | null
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

export function describeModel(registry: ModelRegistry, name: string): ModelDetail {
  const m = registry.require(name)
  const signature = m.active?.signature
  return {
    name: m.name,
    active: m.active?.version ?? null,
    configError: m.configError ?? null,
    versions: sortedVersions(m).map(versionView),
    signature: signature
      ? { inputs: signature.inputs, outputs: signature.outputs, omittedOutputs: signature.omittedOutputs }
      : null,
  }
}

function sortedVersions(m: ModelRecord): VersionRecord[] {
  return [...m.versions.values()].sort((a, b) => a.version - b.version)
}

function versionView(v: VersionRecord): VersionView {
  const state = v.state
  return {
    version: v.version,
    status: state.status,
    source: v.source.kind === 'folder' ? `${v.version}/model.onnx` : `${v.version}.onnx`,
    sha256: v.sha256 ?? null,
    loaded: v.loaded !== undefined && !v.loaded.retired,
    ...(state.status === 'rejected' && { stage: state.stage, reason: state.reason, message: state.message }),
  }
}
