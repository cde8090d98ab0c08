import {
  ModelNotFoundError,
  ModelNotReadyError,
  NoDefaultModelError,
  VersionNotFoundError,
  VersionNotLoadedError,
} from '../../errors.js'
import type { Lease } from './loaded-version.js'
import type { ModelVersions } from './model-versions.js'
import type { ModelView } from './version-state.js'

/**
 * Model name -> the owner of its versions. The data plane looks models up here and leases the
 * version that serves; what it gets are read-only views (changes go through each ModelVersions).
 */
export class ModelRegistry {
  #models = new Map<string, ModelVersions>()
  /** `--default-model`, when given: it wins, and is recorded as the default. */
  readonly #configuredDefault: string | undefined
  /** The default recorded in state: the model that served alone first, or the last configured one. */
  #recordedDefault: string | undefined

  constructor(configuredDefault: string | undefined) {
    this.#configuredDefault = configuredDefault
    this.#recordedDefault = configuredDefault
  }

  add(versions: ModelVersions): void {
    this.#models.set(versions.name, versions)
  }

  get(name: string): ModelView | undefined {
    return this.#models.get(name)
  }

  require(name: string): ModelView {
    const model = this.#models.get(name)
    if (!model) throw new ModelNotFoundError(name)
    return model
  }

  list(): ModelView[] {
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

  /**
   * Lease the version that serves (the active one, or a canary for its share of requests; `sticky`
   * keeps a key on one side), or a specific loaded version. The caller releases it in `finally`.
   */
  lease(name: string, version?: number, sticky?: string): Lease {
    const model = this.require(name)
    if (version === undefined) {
      const routed = model.route(sticky)
      if (!routed) throw new ModelNotReadyError(name)
      return routed.lease()
    }
    const record = model.versions.get(version)
    const loaded =
      model.active?.version === version
        ? model.active
        : model.rollout?.version === version
          ? model.rollout.candidate
          : model.retained.find((v) => v.version === version)
    if (loaded) return loaded.lease()
    if (!record) throw new VersionNotFoundError(`model '${name}' has no version ${version}`)
    throw new VersionNotLoadedError(
      `version ${version} of model '${name}' is not loaded (${record.state.status})`,
    )
  }
}
