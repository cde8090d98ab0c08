import { appendFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { JsonLinesTail } from '../lifecycle/state/json-lines-tail.js'
import type { Logger } from '../log.js'

/**
 * Feedback for a prediction another replica answered. Replicas behind a load balancer each
 * remember only the predictions they answered, and feedback often arrives later, from another
 * system, at whichever replica the balancer picks. Ids a replica does not know are relayed: one
 * line appended to `feedback-relay.jsonl` in the shared state directory, which every replica reads
 * on (every 200 ms, from where it last read), scoring the items whose predictions it answered.
 * The file is started afresh by the gatekeeper once it passes 4 MiB.
 */

const RELAY_FILE = 'feedback-relay.jsonl'
const READ_EVERY_MS = 200
const ROTATE_ABOVE_BYTES = 4 * 2 ** 20

interface RelayLine {
  readonly from: string
  readonly model: string
  readonly items: readonly unknown[]
}

export interface FeedbackRelayOptions {
  readonly stateDir: string
  readonly logger: Logger
  /** This replica's id: its own lines are not read back. */
  readonly self: () => string
  /** Whether the file is this replica's to start afresh (the gatekeeper's). */
  readonly rotates: () => boolean
  /** Items relayed by another replica: those it remembers are scored, the rest ignored. */
  readonly deliver: (model: string, items: readonly unknown[]) => void
}

export class FeedbackRelay {
  readonly #o: FeedbackRelayOptions
  readonly #path: string
  #timer: NodeJS.Timeout | undefined
  #reading = false
  /** Where this replica has read to. */
  readonly #tail: JsonLinesTail
  #starting: Promise<void> = Promise.resolve()

  constructor(o: FeedbackRelayOptions) {
    this.#o = o
    this.#path = join(o.stateDir, RELAY_FILE)
    this.#tail = new JsonLinesTail(this.#path)
  }

  start(): void {
    // Feedback relayed before this replica started is for predictions it never answered: it reads
    // on from the end of the file as it is now, or from the start of one made later.
    this.#starting = stat(this.#path).then(
      (st) => this.#tail.at(st.size, st.ino),
      () => undefined,
    )
    this.#timer = setInterval(() => void this.#readOn(), READ_EVERY_MS)
    this.#timer.unref()
  }

  close(): void {
    clearInterval(this.#timer)
  }

  /** Hands items this replica does not know to the others; a failed write is logged, never thrown. */
  relay(model: string, items: readonly unknown[]): void {
    const line: RelayLine = { from: this.#o.self(), model, items }
    appendFile(this.#path, `${JSON.stringify(line)}\n`).catch((e: unknown) =>
      this.#o.logger.warn('feedback_relay_failed', { model, items: items.length, error: e }),
    )
  }

  async #readOn(): Promise<void> {
    if (this.#reading) return
    this.#reading = true
    try {
      await this.#starting
      await this.#read()
      if (this.#o.rotates()) await this.#rotate()
    } catch (e) {
      this.#o.logger.warn('feedback_relay_unread', { path: this.#path, error: e })
    } finally {
      this.#reading = false
    }
  }

  async #read(): Promise<void> {
    for (const l of await this.#tail.read()) {
      const line = l as RelayLine
      if (line?.from === this.#o.self() || typeof line?.model !== 'string') continue
      if (Array.isArray(line.items)) this.#o.deliver(line.model, line.items)
    }
  }

  /** The gatekeeper starts the file afresh past its bound (what was not read by then is lost). */
  async #rotate(): Promise<void> {
    const size = (await stat(this.#path).catch(() => undefined))?.size ?? 0
    if (size > ROTATE_ABOVE_BYTES) await rename(this.#path, `${this.#path}.1`)
  }
}
