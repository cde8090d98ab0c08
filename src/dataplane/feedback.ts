import { z } from 'zod'
import type { ModelRegistry } from '../lifecycle/versions/model-registry.js'
import type { ModelView } from '../lifecycle/versions/version-state.js'
import { type LiveFigures, windowSizes } from '../metrics/live-figures.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import type { Answer } from './prediction-answer.js'
import type { PredictionLogs } from './prediction-logs.js'

const label = z.union([z.string(), z.number(), z.boolean()])
const feedbackItem = z
  .object({
    id: z.string().min(1).max(128),
    /** The true label (one per row for a prediction of several rows). */
    label: z.union([label, z.array(label).min(1)]).optional(),
    /** The true value (regression; one per row for several rows). */
    value: z.union([z.number(), z.array(z.number()).min(1)]).optional(),
  })
  .strict()
  .refine((i) => (i.label === undefined) !== (i.value === undefined), {
    message: 'each item gives either "label" or "value"',
  })

export const MAX_FEEDBACK_ITEMS = 10_000

export const feedbackRequestSchema = z.union([
  feedbackItem,
  z.object({ items: z.array(feedbackItem).min(1).max(MAX_FEEDBACK_ITEMS) }).strict(),
])

type FeedbackItem = z.infer<typeof feedbackItem>
export type FeedbackRequest = z.infer<typeof feedbackRequestSchema>

export interface FeedbackResult {
  readonly accepted: number
  /** Ids not remembered: never seen, or forgotten (older than the last `feedback.remember`). */
  readonly unknown: string[]
  /** Items for a prediction that already had feedback: the first one counts. */
  readonly duplicates: number
  /** Items that cannot score their prediction (no label or value in its outputs, rows that do not match). */
  readonly invalid: { id: string; reason: string }[]
  /**
   * With other replicas sharing the state directory: ids this one did not answer, handed to the
   * others (the one that answered scores them; feedback-relay.ts). Absent on a server alone.
   */
  readonly relayed?: string[]
}

/** Where feedback for predictions this replica did not answer goes (FeedbackRelay), when other replicas run. */
export interface FeedbackForwarding {
  readonly active: () => boolean
  readonly relay: (model: string, items: readonly FeedbackItem[]) => void
}

/** A feedback item that scored its prediction, as listeners are told of it. */
export interface AcceptedFeedback {
  readonly id: string
  /** The version that answered the prediction. */
  readonly version: number
  readonly label?: FeedbackItem['label']
  readonly value?: FeedbackItem['value']
}

/** Told of every accepted item, after it is scored (the payload log writes it beside the prediction). */
export type FeedbackListener = (model: ModelView, item: AcceptedFeedback) => void

/**
 * `POST /models/{name}/feedback`: the truth about predictions already answered, scored against
 * what the version that answered said. Accuracy (labels) or mean absolute error (values) go into
 * that version's live window. Unknown, repeated or unusable items are counted, never an error for
 * the whole batch.
 */
export class Feedback {
  readonly #registry: ModelRegistry
  readonly #logs: PredictionLogs
  readonly #live: LiveFigures
  readonly #metrics: ServerMetrics
  readonly #onAccepted: FeedbackListener | undefined
  /** Set once the server knows whether it has peers (server.ts wires the relay after the lifecycle). */
  forwarding: FeedbackForwarding | undefined

  constructor(
    registry: ModelRegistry,
    logs: PredictionLogs,
    live: LiveFigures,
    metrics: ServerMetrics,
    onAccepted?: FeedbackListener,
  ) {
    this.#registry = registry
    this.#logs = logs
    this.#live = live
    this.#metrics = metrics
    this.#onAccepted = onAccepted
  }

  submit(model: string, request: FeedbackRequest): FeedbackResult {
    const items = 'items' in request ? request.items : [request]
    const forwarding = this.forwarding?.active() ? this.forwarding : undefined
    const result = this.#score(model, items, forwarding !== undefined)
    const unknown = result.unknownItems
    if (!forwarding || unknown.length === 0) return result.answer
    forwarding.relay(model, unknown)
    return { ...result.answer, unknown: [], relayed: unknown.map((i) => i.id) }
  }

  /**
   * Items another replica relayed: those whose predictions this replica answered are scored as if
   * sent here; the others were answered elsewhere, and are ignored.
   */
  relayed(model: string, items: readonly unknown[]): void {
    if (!this.#registry.list().some((m) => m.name === model)) return
    const parsed = items.flatMap((i) => {
      const p = feedbackItem.safeParse(i)
      return p.success ? [p.data] : []
    })
    this.#score(model, parsed, true)
  }

  #score(
    model: string,
    items: readonly FeedbackItem[],
    mayBeElsewhere: boolean,
  ): { answer: FeedbackResult; unknownItems: FeedbackItem[] } {
    const view = this.#registry.require(model)
    const config = view.config
    const log = this.#logs.of(model, config.feedback.remember)
    let accepted = 0
    let duplicates = 0
    const unknown: string[] = []
    const unknownItems: FeedbackItem[] = []
    const invalid: FeedbackResult['invalid'] = []
    const count = (version: string, outcome: string) =>
      this.#metrics.feedback.inc({ model, version, result: outcome })
    for (const item of items) {
      const p = log.get(item.id)
      if (!p) {
        unknown.push(item.id)
        unknownItems.push(item)
        // Counted by the replica that answered it, or as unknown by none: relayed ids are not counted here.
        if (!mayBeElsewhere) count('', 'unknown')
        continue
      }
      const version = String(p.version)
      if (p.scored) {
        duplicates++
        count(version, 'duplicate')
        continue
      }
      const scored = score(item, p.answer)
      if (typeof scored === 'string') {
        invalid.push({ id: item.id, reason: scored })
        count(version, 'invalid')
        continue
      }
      log.markScored(item.id)
      accepted++
      const window = this.#live.window(model, p.version, windowSizes(config.feedback.window))
      for (const s of scored) {
        if (s.kind === 'label') window.recordLabel(s.right)
        else window.recordValue(s.error)
        count(version, s.kind === 'value' ? 'value' : s.right ? 'right' : 'wrong')
      }
      this.#onAccepted?.(view, {
        id: item.id,
        version: p.version,
        label: item.label,
        value: item.value,
      })
    }
    return { answer: { accepted, unknown, duplicates, invalid }, unknownItems }
  }
}

type Score = { kind: 'label'; right: boolean } | { kind: 'value'; error: number }

/** The item's truth against the answer, row by row; a string says why it cannot be scored. */
function score(item: FeedbackItem, answer: Answer): Score[] | string {
  if (item.label !== undefined) {
    if (!answer.labels) return 'its prediction has no label output to compare with'
    const truth = Array.isArray(item.label) ? item.label : [item.label]
    if (truth.length !== answer.labels.length)
      return `${truth.length} labels for a prediction of ${answer.labels.length} rows`
    return truth.map((t, i) => ({ kind: 'label', right: String(t) === answer.labels![i] }))
  }
  if (!answer.values) return 'its prediction has no numeric output to compare with'
  const truth = Array.isArray(item.value) ? item.value : [item.value!]
  if (truth.length !== answer.values.length)
    return `${truth.length} values for a prediction of ${answer.values.length} rows`
  return truth.map((t, i) => ({ kind: 'value', error: Math.abs(t - answer.values![i]!) }))
}
