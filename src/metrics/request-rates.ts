import type { LiveFigures, LiveWindow } from './live-figures.js'

/**
 * Requests per second of every version, off the request path: each live window already counts
 * every request it records (`mark().requests`), so a timer reads those counts once a second and a
 * rate is the difference of two counts over the time between them. Nothing is added per request.
 */

/** One second apart: a minute of them, plus the one the first second starts from. */
const KEPT_SAMPLES = 61
const SAMPLE_MS = 1000
/** The rate shown: over the last ten seconds, steady enough to read, recent enough to follow. */
const RATE_SECONDS = 10

interface Sample {
  readonly at: number
  readonly requests: number
}

export class RequestRates {
  readonly #live: LiveFigures
  readonly #now: () => number
  /** By window, not by version: a promotion starts a new window, whose count starts from 0. */
  readonly #samples = new Map<LiveWindow, Sample[]>()
  #timer: NodeJS.Timeout | undefined
  /** When the last sample was taken. */
  #lastAt: number | undefined

  constructor(live: LiveFigures, o: { now?: () => number } = {}) {
    this.#live = live
    this.#now = o.now ?? Date.now
  }

  /** Samples now, then every second until `close`; the timer never keeps the process alive. */
  start(): void {
    if (this.#timer) return
    this.sample()
    this.#timer = setInterval(() => this.sample(), SAMPLE_MS).unref()
  }

  close(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Reads every window's count once (the timer's tick; tests call it with their own clock). */
  sample(): void {
    const at = this.#now()
    const seen = new Set<LiveWindow>()
    for (const { window } of this.#live.entries()) {
      seen.add(window)
      let samples = this.#samples.get(window)
      if (!samples) {
        // Not there at the last sample: every request it counts came after that one.
        samples = this.#lastAt === undefined ? [] : [{ at: this.#lastAt, requests: 0 }]
        this.#samples.set(window, samples)
      }
      samples.push({ at, requests: window.mark().requests })
      if (samples.length > KEPT_SAMPLES) samples.shift()
    }
    for (const window of this.#samples.keys()) if (!seen.has(window)) this.#samples.delete(window)
    this.#lastAt = at
  }

  /** Requests per second over the last ten seconds (null: not sampled twice yet). */
  perSecond(window: LiveWindow | undefined): number | null {
    const samples = window && this.#samples.get(window)
    if (!samples || samples.length < 2) return null
    const last = samples[samples.length - 1]!
    return rateBetween(samples[Math.max(0, samples.length - 1 - RATE_SECONDS)]!, last)
  }

  /** Each second's rate over the last minute, oldest first (empty: not sampled twice yet). */
  lastMinute(window: LiveWindow | undefined): number[] {
    const samples = (window && this.#samples.get(window)) ?? []
    return samples.slice(1).map((s, i) => rateBetween(samples[i]!, s))
  }
}

function rateBetween(from: Sample, to: Sample): number {
  const seconds = (to.at - from.at) / 1000
  return seconds > 0 ? (to.requests - from.requests) / seconds : 0
}
