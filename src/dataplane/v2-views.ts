import { ModelNotReadyError, VersionNotFoundError, VersionNotLoadedError } from '../errors.js'
import type { LoadedVersion } from '../lifecycle/versions/loaded-version.js'
import type { ModelRegistry } from '../lifecycle/versions/model-registry.js'
import type { ModelView } from '../lifecycle/versions/version-state.js'
import { v2Datatype } from '../v2/datatypes.js'
import { v2Shape } from '../v2/inference.js'

/** What the KServe V2 routes show of the models (statistics, metadata, ready, repository index): plain data, no HTTP. */

/** Statistics extension: every loaded version, or those of one model, or one version of it. */
export function v2Statistics(
  registry: ModelRegistry,
  name: string | undefined,
  rawVersion: string | undefined,
) {
  const models = name === undefined ? registry.list() : [registry.require(name)]
  const model_stats = models.flatMap((m) =>
    [m.active, ...m.retained]
      .filter((v): v is LoadedVersion => v !== undefined)
      .filter((v) => rawVersion === undefined || String(v.version) === rawVersion)
      .map((v) => {
        const s = v.stats
        return {
          name: m.name,
          version: String(v.version),
          last_inference: s.lastInferenceMs,
          inference_count: s.inferenceCount,
          execution_count: s.executionCount,
          inference_stats: {
            success: s.success,
            fail: s.fail,
            queue: s.queue,
            compute_input: s.computeInput,
            compute_infer: s.computeInfer,
            compute_output: s.computeOutput,
            // No response cache: nothing is ever a hit.
            cache_hit: { count: 0, ns: 0 },
            cache_miss: { count: 0, ns: 0 },
          },
          batch_stats: [...s.batches]
            .sort(([a], [b]) => a - b)
            .map(([batch_size, b]) => ({
              batch_size,
              compute_input: { count: 0, ns: 0 },
              compute_infer: { count: b.count, ns: b.ns },
              compute_output: { count: 0, ns: 0 },
            })),
        }
      }),
  )
  if (name !== undefined && rawVersion !== undefined && model_stats.length === 0) {
    throw new VersionNotLoadedError(`version ${rawVersion} of model '${name}' is not loaded`)
  }
  return { model_stats }
}

/** Model metadata: the served versions, and the inputs and outputs of the active one or of `version`. */
export function v2ModelMetadata(model: ModelView, version: number | undefined) {
  const v = version === undefined ? model.active : loadedVersion(model, version)
  if (!v) {
    // A model with nothing serving is not ready; a version that is not loaded is not there to describe.
    if (version === undefined) throw new ModelNotReadyError(model.name)
    throw new VersionNotLoadedError(
      `version ${version} of model '${model.name}' is not loaded (${model.versions.get(version)!.state.status})`,
    )
  }
  return {
    name: model.name,
    versions: servedVersions(model).map(String),
    platform: 'onnxruntime_onnx',
    inputs: v.signature.inputs.map((t) => ({
      name: t.name,
      datatype: v2Datatype(t.type),
      shape: v2Shape(t.shape),
    })),
    outputs: v.signature.outputs.map((t) => ({
      name: t.name,
      datatype: v2Datatype(t.type),
      shape: v2Shape(t.shape),
    })),
  }
}

/** Model ready: the active version, or `version`, is loaded and answers. */
export function v2ModelReady(
  model: ModelView,
  version: number | undefined,
): { name: string; ready: boolean } {
  const isReady =
    version === undefined ? model.active !== undefined : loadedVersion(model, version) !== undefined
  return { name: model.name, ready: isReady }
}

/** Model repository extension: every version of every model and its state (`ready`: the loaded ones only). */
export function v2RepositoryIndex(registry: ModelRegistry, o: { ready: boolean }) {
  const entries = registry.list().flatMap((m) =>
    [...m.versions.values()]
      .sort((a, b) => a.version - b.version)
      .map((r) => {
        const loaded =
          m.active?.version === r.version || m.retained.some((v) => v.version === r.version)
        const moving =
          r.state.status === 'loading' ||
          r.state.status === 'validating' ||
          r.state.status === 'warming'
        const state = loaded ? 'READY' : moving ? 'LOADING' : 'UNAVAILABLE'
        const reason =
          r.state.status === 'rejected' ? `${r.state.reason}: ${r.state.message}` : r.state.status
        return { name: m.name, version: String(r.version), state, reason }
      }),
  )
  return o.ready ? entries.filter((e) => e.state === 'READY') : entries
}

function loadedVersion(model: ModelView, version: number): LoadedVersion | undefined {
  if (!model.versions.has(version))
    throw new VersionNotFoundError(`model '${model.name}' has no version ${version}`)
  return model.active?.version === version
    ? model.active
    : model.retained.find((v) => v.version === version)
}

/** Versions that can answer now: the active one and the retained ones. */
function servedVersions(model: ModelView): number[] {
  return [model.active, ...model.retained]
    .filter((v) => v !== undefined)
    .map((v) => v.version)
    .sort((a, b) => a - b)
}
