import { dirname } from 'node:path'
import type { LoadedVersion } from '../../lifecycle/versions/loaded-version.js'
import type { ModelRegistry } from '../../lifecycle/versions/model-registry.js'
import type { ModelView } from '../../lifecycle/versions/version-state.js'
import type { DriftFeature, HistoryEntry } from '../../lifecycle/state/history.js'
import type { Logger } from '../../log.js'
import type { ServerMetrics } from '../../metrics/server-metrics.js'
import type { ModelConfig } from '../../repository/model-config.js'
import type { Feeds, Fetches } from '../../runtime/feeds.js'
import { answerOf, answerPlan, type AnswerPlan } from '../prediction-answer.js'
import type { RequestTap, TapFollowUp, TapRequest } from '../request-taps.js'
import { FeatureWindow } from './feature-window.js'
import { InputFeatures, type ValueSink } from './input-features.js'
import { readReference } from './reference-file.js'

type DriftSettings = NonNullable<ModelConfig['drift']>

/** `GET /models/{name}`'s `drift`. */
export interface DriftView {
  /** Where the reference comes from; `loading` while reference.json is being read. */
  readonly reference: 'reference.json' | 'first_window' | 'loading'
  /** reference.json could not be used (the first window is the reference instead). */
  readonly referenceError: string | null
  /** Rows in the reference: taken so far while the first window is being taken. */
  readonly referenceRows: number
  /** The reference's bins are fixed (on the timer, once it is complete): later rows are live. */
  readonly referenceReady: boolean
  readonly liveRows: number
  readonly detected: boolean
  /** Each feature's PSI at the last judgement (a feature appears once its live window is full). */
  readonly features: readonly DriftFeature[]
}

export interface DriftMonitorOptions {
  readonly registry: ModelRegistry
  readonly metrics: ServerMetrics
  readonly logger: Logger
  /** Appends a history entry (and so publishes it as an event). */
  readonly record: (entry: Omit<HistoryEntry, 'time'>) => void
}

/**
 * Input and prediction drift (README: model.json `drift`): a request tap that counts the features
 * of requests routed to a model's active version, and a timer per model that compares the live
 * window with the reference and records `drift_detected` / `drift_cleared`. The request path only
 * bins values into counters; PSI is computed on the timer.
 */
export class DriftMonitor implements RequestTap {
  readonly #o: DriftMonitorOptions
  /** Model name -> the drift of its active version (a new active version starts a new one). */
  readonly #models = new Map<string, ModelDrift>()
  #closed = false

  constructor(o: DriftMonitorOptions) {
    this.#o = o
  }

  observe(request: TapRequest, feeds: Feeds): TapFollowUp | undefined {
    const { model, version } = request
    // Canary and shadow candidates, and versions a client named, are not the model's traffic.
    if (model.config.drift === undefined || !request.routed || version !== model.active)
      return undefined
    const d = this.#current(model)
    if (!d) return undefined
    d.observe(feeds)
    return d.label ? d : undefined
  }

  /** The drift of the model's active version; null when model.json does not configure it. */
  view(model: ModelView): DriftView | null {
    return this.#current(model)?.view() ?? null
  }

  close(): void {
    this.#closed = true
    for (const d of this.#models.values()) d.stop()
    this.#models.clear()
  }

  /**
   * The model's drift for its active version and settings as they are now. A different active
   * version, or a change to model.json's `drift`, ends the one before (and any episode) and starts
   * afresh; a closed monitor starts nothing (no timer outlives the server).
   */
  #current(model: ModelView): ModelDrift | undefined {
    if (this.#closed) return undefined
    const settings = model.config.drift
    const active = model.active
    const d = this.#models.get(model.name)
    const ended = d && endOf(d, active, settings)
    if (d && !ended) return d
    if (d && ended) {
      this.#models.delete(model.name)
      this.#end(d, ended)
    }
    if (settings === undefined || active === undefined) return undefined
    const next = new ModelDrift(model, active, settings)
    this.#models.set(model.name, next)
    next.timer = setInterval(() => this.#judge(next), settings.intervalSeconds * 1000)
    next.timer.unref()
    void this.#loadReference(next, model)
    return next
  }

  #end(d: ModelDrift, reason: string): void {
    d.stop()
    for (const w of d.windows) this.#o.metrics.driftPsi.remove(labelsOf(d, w))
    if (d.detected)
      this.#o.record({
        model: d.model,
        version: d.version.version,
        event: 'drift_cleared',
        reason,
        features: [],
      })
  }

  async #loadReference(d: ModelDrift, model: ModelView): Promise<void> {
    try {
      // The model's folder is <root>/<name>, root the models directory's real path.
      const feeds = await readReference(dirname(model.dir), model.dir, d.version.signature)
      if (d.stopped) return
      if (feeds) d.takeReference(feeds)
      else d.reference = 'first_window'
    } catch (e) {
      if (d.stopped) return
      d.reference = 'first_window'
      d.referenceError = (e as Error).message
      this.#o.logger.error('drift_reference_invalid', {
        model: d.model,
        version: d.version.version,
        error: d.referenceError,
        message: 'the first rows served are the reference instead',
      })
    }
  }

  /** On the timer: every feature's PSI, and an episode begun or ended. */
  #judge(d: ModelDrift): void {
    const model = this.#o.registry.get(d.model)
    // The model is gone, or serves another version now: this drift ends (and the timer with it).
    if (!model || this.#current(model) !== d) {
      if (!d.stopped) {
        this.#models.delete(d.model)
        this.#end(d, 'the model is gone')
      }
      return
    }
    const judged: DriftFeature[] = []
    for (const w of d.windows) {
      if (w.sampleFull) w.freeze()
      const psi = w.psi()
      if (psi === null) continue
      this.#o.metrics.driftPsi.set(labelsOf(d, w), psi)
      judged.push({ input: w.input, feature: w.feature, psi: rounded(psi) })
    }
    d.judged = judged
    const threshold = d.settings.threshold
    const drifted = judged.filter((f) => f.psi >= threshold)
    const entry = { model: d.model, version: d.version.version, threshold }
    if (!d.detected && drifted.length > 0) {
      d.detected = true
      this.#o.record({ ...entry, event: 'drift_detected', features: drifted })
    } else if (d.detected && judged.every((f) => f.psi < threshold / 2)) {
      d.detected = false
      this.#o.record({ ...entry, event: 'drift_cleared', features: judged })
    }
  }
}

/** The drift of one model's active version: its features' windows, its reference, its episode. */
class ModelDrift implements TapFollowUp {
  readonly model: string
  readonly version: LoadedVersion
  readonly settings: DriftSettings
  readonly #inputs: InputFeatures
  readonly #inputWindows: readonly FeatureWindow[]
  /** The predicted label's frequencies, when the version has a label output. */
  readonly label: { readonly plan: AnswerPlan; readonly window: FeatureWindow } | undefined
  readonly windows: readonly FeatureWindow[]
  reference: DriftView['reference'] = 'loading'
  referenceError: string | undefined
  detected = false
  judged: readonly DriftFeature[] = []
  timer: NodeJS.Timeout | undefined
  stopped = false

  constructor(model: ModelView, version: LoadedVersion, settings: DriftSettings) {
    this.model = model.name
    this.version = version
    this.settings = settings
    this.#inputs = new InputFeatures(version.signature)
    this.#inputWindows = this.#inputs.features.map(
      (f) => new FeatureWindow(f.input, f.feature, f.kind, settings.window),
    )
    const plan = answerPlan(version.signature, model.config.feedback.output)
    this.label = plan.label && {
      plan,
      window: new FeatureWindow(plan.label.output, 'frequency', 'category', settings.window),
    }
    this.windows = this.label ? [...this.#inputWindows, this.label.window] : this.#inputWindows
  }

  observe(feeds: Feeds): void {
    // While reference.json is read, rows would land in the wrong window: they are not counted.
    if (this.reference !== 'loading') this.#inputs.observe(feeds, this.#inputWindows)
  }

  /** After the answer: the predicted labels (the label's reference is always the first window). */
  after(_id: string, fetched: Fetches): void {
    const labels = answerOf(this.label!.plan, fetched).labels
    if (!labels) return
    const w = this.label!.window
    for (const l of labels) w.add(l)
  }

  /** reference.json's rows become every input feature's reference. */
  takeReference(feeds: Feeds): void {
    const samples = this.#inputs.features.map(() => new Sample())
    this.#inputs.observe(feeds, samples)
    this.#inputWindows.forEach((w, i) => w.freeze(samples[i]!.values))
    this.reference = 'reference.json'
  }

  view(): DriftView {
    const inputs = this.#inputWindows
    return {
      reference: this.reference,
      referenceError: this.referenceError ?? null,
      referenceRows: inputs.length ? Math.min(...inputs.map((w) => w.referenceRows)) : 0,
      // The label's too: a script that waits for this may count on every row after it being live.
      referenceReady: this.reference !== 'loading' && this.windows.every((w) => w.frozen),
      liveRows: inputs.length ? Math.min(...inputs.map((w) => w.liveRows)) : 0,
      detected: this.detected,
      features: this.judged,
    }
  }

  stop(): void {
    this.stopped = true
    clearInterval(this.timer)
  }
}

/** reference.json's values of one feature, before its bins are fixed on them. */
class Sample implements ValueSink {
  readonly values: unknown[] = []
  add(value: unknown): void {
    this.values.push(value)
  }
}

/** Why `d` no longer measures the model (its `drift_cleared` reason), or undefined while it does. */
function endOf(
  d: ModelDrift,
  active: LoadedVersion | undefined,
  settings: DriftSettings | undefined,
): string | undefined {
  if (settings === undefined) return 'drift is no longer configured'
  if (active === undefined) return 'the model is no longer served'
  if (active !== d.version) return `version ${active.version} is active`
  const s = d.settings
  if (
    s.window !== settings.window ||
    s.intervalSeconds !== settings.intervalSeconds ||
    s.threshold !== settings.threshold
  )
    return "model.json's drift changed"
  return undefined
}

function labelsOf(d: ModelDrift, w: FeatureWindow) {
  return { model: d.model, input: w.input, feature: w.feature }
}

/** Four decimals: plenty for a person, and for a script comparing to the threshold. */
function rounded(x: number): number {
  return Math.round(x * 10_000) / 10_000
}
