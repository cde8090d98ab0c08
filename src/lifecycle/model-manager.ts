import type { Logger } from '../log.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import { readModelConfig } from '../repository/model-config.js'
import { readVersionBytes, VersionReadError } from '../repository/read-version.js'
import { scanRepository, type ModelSource, type VersionSource } from '../repository/scanner.js'
import { ModelLoadError, ModelSession } from '../runtime/session.js'
import { LoadedVersion } from './loaded-version.js'
import type { ModelRecord, ModelRegistry, VersionRecord } from './model-registry.js'

export interface ModelManagerOptions {
  readonly modelsDir: string
  readonly registry: ModelRegistry
  readonly metrics: ServerMetrics
  readonly logger: Logger
}

export interface Readiness {
  readonly ready: boolean
  readonly models: Record<string, { readonly active: number | null; readonly status: 'serving' | 'loading' | 'failed' | 'empty' }>
}

/**
 * Brings what is on disk into the registry: at start, every model is served at its highest version
 * that loads. Versions that fail are recorded as rejected with the reason.
 */
export class ModelManager {
  readonly #opts: ModelManagerOptions
  #root: string | undefined
  #started = false
  #closed = false

  constructor(options: ModelManagerOptions) {
    this.#opts = options
  }

  async start(): Promise<void> {
    const { logger } = this.#opts
    const scan = await scanRepository(this.#opts.modelsDir)
    this.#root = scan.root
    for (const ignored of scan.ignored) {
      if (ignored.refused) logger.warn('path_refused', { path: ignored.path, reason: ignored.reason })
      else logger.debug('path_ignored', { path: ignored.path, reason: ignored.reason })
    }
    for (const source of scan.models) this.#register(source)
    // Models load one after another: sessions are created on the main thread, and loading several
    // at once would only interleave the same CPU work.
    for (const source of scan.models) {
      if (this.#closed) break
      await this.#loadModel(this.#opts.registry.require(source.name))
    }
    this.#started = true
    logger.info('models_loaded', {
      models: this.#opts.registry.list().map((m) => ({ name: m.name, active: m.active?.version ?? null })),
    })
  }

  readiness(): Readiness {
    const models: Record<string, Readiness['models'][string]> = {}
    let ready = this.#started && !this.#closed
    for (const m of this.#opts.registry.list()) {
      const status =
        m.active !== undefined
          ? 'serving'
          : m.versions.size === 0
            ? 'empty'
            : !this.#started || [...m.versions.values()].some((v) => v.state.status === 'discovered' || v.state.status === 'loading')
              ? 'loading'
              : 'failed'
      // A model whose every version was rejected does not hold readiness: it would take every
      // other model out of service; /readyz still lists it as failed.
      if (status === 'loading') ready = false
      models[m.name] = { active: m.active?.version ?? null, status }
    }
    return { ready, models }
  }

  /** Retires every loaded version: sessions are released as their last requests end. */
  close(): void {
    this.#closed = true
    for (const model of this.#opts.registry.list()) {
      for (const record of model.versions.values()) record.loaded?.retire()
    }
  }

  #register(source: ModelSource): void {
    const versions = new Map<number, VersionRecord>()
    for (const v of source.versions) {
      versions.set(v.version, { version: v.version, source: v, state: { status: 'discovered' }, sha256: undefined, loaded: undefined })
    }
    this.#opts.registry.add({ name: source.name, dir: source.dir, config: undefined, configError: undefined, versions, active: undefined })
  }

  async #loadModel(model: ModelRecord): Promise<void> {
    const { logger, metrics, registry } = this.#opts
    try {
      model.config = await readModelConfig(model.dir)
    } catch (e) {
      model.configError = (e as Error).message
      for (const record of model.versions.values()) {
        record.state = { status: 'rejected', stage: 'config', reason: 'invalid_model_config', message: model.configError }
      }
      logger.error('model_config_invalid', { model: model.name, error: model.configError })
      return
    }
    const descending = [...model.versions.values()].sort((a, b) => b.version - a.version)
    for (const record of descending) {
      if (this.#closed) return
      const loaded = await this.#loadVersion(model, record)
      if (!loaded) continue
      registry.activate(model, loaded)
      record.state = { status: 'active' }
      metrics.activeVersion.set({ model: model.name }, loaded.version)
      metrics.loadedVersions.set({ model: model.name }, 1)
      logger.info('version_active', { model: model.name, version: loaded.version, sha256: loaded.sha256 })
      return
    }
    if (model.versions.size > 0) logger.error('model_unavailable', { model: model.name, reason: 'no version could be loaded' })
  }

  async #loadVersion(model: ModelRecord, record: VersionRecord): Promise<LoadedVersion | undefined> {
    const { logger } = this.#opts
    const source: VersionSource = record.source
    record.state = { status: 'loading' }
    const started = performance.now()
    try {
      const { bytes, sha256 } = await readVersionBytes(this.#root!, source)
      record.sha256 = sha256
      const session = await ModelSession.create(bytes, model.config?.session)
      const loaded = new LoadedVersion(model.name, record.version, sha256, session, logger)
      record.loaded = loaded
      logger.info('version_loaded', {
        model: model.name,
        version: record.version,
        ms: Math.round(performance.now() - started),
        omittedOutputs: session.signature.omittedOutputs,
      })
      return loaded
    } catch (e) {
      if (!(e instanceof ModelLoadError || e instanceof VersionReadError)) throw e
      record.state = { status: 'rejected', stage: 'load', reason: e.reason, message: e.message }
      logger.warn('version_rejected', { model: model.name, version: record.version, stage: 'load', reason: e.reason, error: e.message })
      return undefined
    }
  }
}
