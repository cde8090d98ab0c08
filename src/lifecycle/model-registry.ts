import {
  ModelNotFoundError,
  ModelNotReadyError,
  NoDefaultModelError,
  VersionNotFoundError,
  VersionNotLoadedError,
} from '../errors.js'
import type { ModelConfig } from '../repository/model-config.js'
import type { VersionSource } from '../repository/scanner.js'
import type { FileFingerprint } from '../repository/version-file.js'
import type { GateReport } from './gate/gate-types.js'
import type { Lease, LoadedVersion } from './loaded-version.js'
import type { Verdict, VersionState } from './version-state.js'

export interface VersionRecord {
  readonly version: number
  source: VersionSource
  /** False once its file is gone; a loaded version keeps serving regardless. */
  onDisk: boolean
  /**
   * The file as last seen, when that fingerprint was first seen (for the stability window), and
   * whether it was ever seen changing.
   */
  seen: { fingerprint: FileFingerprint; sinceMs: number; changed: boolean } | undefined
  state: VersionState
  /** The session serving (or retained) for this version, if any. */
  loaded: LoadedVersion | undefined
  /** The last gate run, with every stage's result. */
  gate: GateReport | undefined
  verdict: Verdict | undefined
  /** The fingerprint of the file whose bytes the verdict is about: unchanged, no need to hash again. */
  verdictFingerprint: FileFingerprint | undefined
  rolledBack: { readonly sha256: string; readonly reason: string; readonly at: string } | undefined
}

export interface ModelRecord {
  readonly name: string
  readonly dir: string
  /** model.json as last read, defaults filled in; DEFAULT_MODEL_CONFIG until it is read (or while it has no model.json). */
  config: ModelConfig
  /** model.json could not be read or validated: nothing is gated until it is fixed. */
  configError: string | undefined
  readonly versions: Map<number, VersionRecord>
  /** The version that serves. Changed only by one assignment in `activate`. */
  active: LoadedVersion | undefined
  /** Replaced versions kept loaded for rollback, most recent first. */
  retained: LoadedVersion[]
  /** Versions in the order they became active, the current one last: the rollback targets. */
  activations: number[]
  /** Unloaded on request (V2 repository extension): nothing is promoted until it is loaded again. */
  unloaded: boolean
  /**
   * Entries of the model's folder refused for safety at the last listing (a version folder or file
   * that resolves outside the models directory), paths relative to the models directory.
   */
  refused: readonly { readonly path: string; readonly reason: string }[]
}

export function newVersionRecord(source: VersionSource): VersionRecord {
  return {
    version: source.version,
    source,
    onDisk: true,
    seen: undefined,
    state: { status: 'discovered' },
    loaded: undefined,
    gate: undefined,
    verdict: undefined,
    verdictFingerprint: undefined,
    rolledBack: undefined,
  }
}

/** Model name -> its versions and the one that serves. Lookups for requests; changes from lifecycle/. */
export class ModelRegistry {
  #models = new Map<string, ModelRecord>()
  /** `--default-model`, when given: it wins, and is recorded as the default. */
  readonly #configuredDefault: string | undefined
  /** The default recorded in state: the model that served alone first, or the last configured one. */
  #recordedDefault: string | undefined

  constructor(configuredDefault: string | undefined) {
    this.#configuredDefault = configuredDefault
    this.#recordedDefault = configuredDefault
  }

  add(record: ModelRecord): void {
    this.#models.set(record.name, record)
  }

  get(name: string): ModelRecord | undefined {
    return this.#models.get(name)
  }

  require(name: string): ModelRecord {
    const model = this.#models.get(name)
    if (!model) throw new ModelNotFoundError(name)
    return model
  }

  list(): ModelRecord[] {
    return [...this.#models.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    )
  }

  /** The default model as state.json records it (undefined: none chosen yet). */
  get recordedDefault(): string | undefined {
    return this.#recordedDefault
  }

  /**
   * Takes the default state.json recorded (unless `--default-model` says otherwise), and, when
   * there is none yet, the only model: once chosen, adding models does not change it. Returns
   * true when the recorded default changed (the caller persists it).
   */
  settleDefault(recorded: string | undefined): boolean {
    const before = this.#recordedDefault
    if (this.#configuredDefault === undefined) {
      this.#recordedDefault ??= recorded
      if (this.#recordedDefault === undefined && this.#models.size === 1)
        this.#recordedDefault = this.#models.keys().next().value
    }
    return this.#recordedDefault !== before
  }

  /** The model `POST /predict` serves: the configured or recorded default, else the only model. */
  defaultModel(): string {
    if (this.#recordedDefault !== undefined) return this.#recordedDefault
    if (this.#models.size === 1) return this.#models.keys().next().value!
    const names = this.list().map((m) => m.name)
    throw new NoDefaultModelError(
      names.length === 0
        ? 'no model is served yet'
        : `${names.length} models are served (${names.join(', ')}) and none was chosen as the default; use /models/{name}/predict or start with --default-model`,
    )
  }

  /** Lease the active version, or a specific loaded version. The caller releases it in `finally`. */
  lease(name: string, version?: number): Lease {
    const model = this.require(name)
    if (version === undefined) {
      const active = model.active
      if (!active) throw new ModelNotReadyError(name)
      return active.lease()
    }
    const record = model.versions.get(version)
    const loaded =
      model.active?.version === version
        ? model.active
        : model.retained.find((v) => v.version === version)
    if (loaded) return loaded.lease()
    if (!record) throw new VersionNotFoundError(`model '${name}' has no version ${version}`)
    throw new VersionNotLoadedError(
      `version ${version} of model '${name}' is not loaded (${record.state.status})`,
    )
  }

  /** Serve nothing (an unload); returns the version that served. */
  deactivate(model: ModelRecord): LoadedVersion | undefined {
    const previous = model.active
    model.active = undefined // one assignment, as in activate
    return previous
  }

  /** Serve `next` from now on; returns the version it replaces so the caller can retain or retire it. */
  activate(model: ModelRecord, next: LoadedVersion): LoadedVersion | undefined {
    const previous = model.active
    model.active = next // one assignment: no request sees a half-swap
    return previous
  }
}
