/**
 * Live figures of one version over sliding windows: its last requests (outcome and latency) and
 * its last feedback items (right or wrong, absolute error). Recording is O(1) into fixed rings on
 * the request path; figures are computed when read (a status page, a probation check).
 */

/** The figures `GET /models/{name}` shows per version (null: no sample yet). */
export interface LiveSnapshot {
  /** Requests in the window (client errors are not counted). */
  readonly requests: number
  /** Of those, runtime failures (answered 5xx). */
  readonly errors: number
  readonly errorRate: number | null
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  /** Feedback items in the window: `labels` + `values`. */
  readonly feedback: number
  /** Label items in the window (what `accuracy` is over). */
  readonly labels: number
  /** Value items in the window (what `mae` is over). */
  readonly values: number
  /** Labelled items right / labelled items (null: no label feedback). */
  readonly accuracy: number | null
  /** Mean absolute error of value feedback (null: no value feedback). */
  readonly mae: number | null
}

/** Requests and feedback kept per version for its live figures. */
export interface LiveWindowSizes {
  readonly requests: number
  readonly feedback: number
}

const DEFAULT_WINDOW_SIZES: LiveWindowSizes = { requests: 1000, feedback: 1000 }

/** The sizes of a model's windows: the last 1000 requests, and its `feedback.window` items. */
export function windowSizes(feedbackWindow: number): LiveWindowSizes {
  return { requests: DEFAULT_WINDOW_SIZES.requests, feedback: feedbackWindow }
}

/** A ring of the last `size` numbers, with their count and how many were ever pushed. */
class Ring {
  readonly #values: Float64Array
  #next = 0
  #count = 0
  #total = 0

  constructor(size: number) {
    this.#values = new Float64Array(size)
  }

  push(value: number): void {
    this.#values[this.#next] = value
    this.#next = (this.#next + 1) % this.#values.length
    if (this.#count < this.#values.length) this.#count++
    this.#total++
  }

  get count(): number {
    return this.#count
  }

  /** Numbers ever pushed: a mark to read only what came after (`since`). */
  get total(): number {
    return this.#total
  }

  /** The numbers held, in no particular order; with `since`, only those pushed after that total. */
  values(since?: number): Float64Array {
    if (since !== undefined) {
      const k = Math.min(this.#count, Math.max(0, this.#total - since))
      if (k < this.#count) return this.#last(k)
    }
    return this.#count === this.#values.length
      ? this.#values
      : this.#values.subarray(0, this.#count)
  }

  #last(k: number): Float64Array {
    const out = new Float64Array(k)
    const size = this.#values.length
    for (let i = 0; i < k; i++) out[i] = this.#values[(this.#next - 1 - i + size) % size]!
    return out
  }
}

/** Where a window stood at some moment: a snapshot `since` it covers only what came after. */
export interface LiveMark {
  readonly requests: number
  readonly labels: number
  readonly values: number
}

export class LiveWindow {
  /** Each request's latency in ms, negative for a failure (so one ring holds both). */
  readonly #requests: Ring
  /** Label feedback: 1 right, 0 wrong. */
  readonly #labels: Ring
  /** Value feedback: the absolute error. */
  readonly #values: Ring
  /** Every feedback item since the window was made (the rings hold the last ones). */
  #feedbackTotal = 0

  constructor(sizes: LiveWindowSizes = DEFAULT_WINDOW_SIZES) {
    this.#requests = new Ring(sizes.requests)
    this.#labels = new Ring(sizes.feedback)
    this.#values = new Ring(sizes.feedback)
  }

  /** A request answered (`ok`) or failed at run time, after `ms`. */
  recordRequest(ok: boolean, ms: number): void {
    // -0 would read as a success: a failure is at least a nanosecond.
    this.#requests.push(ok ? ms : -Math.max(ms, 1e-6))
  }

  recordLabel(right: boolean): void {
    this.#labels.push(right ? 1 : 0)
    this.#feedbackTotal++
  }

  recordValue(absoluteError: number): void {
    this.#values.push(absoluteError)
    this.#feedbackTotal++
  }

  /** Feedback items since the window was made. */
  get feedbackTotal(): number {
    return this.#feedbackTotal
  }

  /** Where the window stands now. */
  mark(): LiveMark {
    return {
      requests: this.#requests.total,
      labels: this.#labels.total,
      values: this.#values.total,
    }
  }

  /**
   * The figures over the window, or over what it recorded after `since` (still within the window:
   * a canary step compares two versions over the same period).
   */
  snapshot(since?: LiveMark): LiveSnapshot {
    return pooledSnapshot([this.sample(since)])
  }

  /** The raw figures behind `snapshot`, which pool exactly with other replicas' (pooledSnapshot). */
  sample(since?: LiveMark): WindowSample {
    const requests = this.#requests.values(since?.requests)
    let errors = 0
    const latencies: number[] = []
    for (const v of requests) {
      if (v < 0) errors++
      else latencies.push(v)
    }
    latencies.sort((a, b) => a - b)
    const labels = this.#labels.values(since?.labels)
    const values = this.#values.values(since?.values)
    return {
      requests: requests.length,
      errors,
      latencies,
      labels: labels.length,
      right: sum(labels),
      values: values.length,
      absErrorSum: sum(values),
    }
  }
}

/**
 * A window's figures as raw counts, sums and latencies: what replicas publish so that the
 * gatekeeper judges a version on every replica's requests, not only its own.
 */
export interface WindowSample {
  readonly requests: number
  readonly errors: number
  /** Latencies of the answered requests (ms), ascending. */
  readonly latencies: readonly number[]
  readonly labels: number
  /** Label feedback items that were right. */
  readonly right: number
  readonly values: number
  readonly absErrorSum: number
}

/** What other replicas saw of a version being judged, for the gatekeeper to pool with its own. */
export interface PeerSamples {
  probation(model: string, version: number, sha256: string): readonly WindowSample[]
  canary(
    model: string,
    version: number,
    sha256: string,
    step: number,
  ): { readonly candidate: readonly WindowSample[]; readonly active: readonly WindowSample[] }
}

/** The figures over several windows' samples together: exact, as if one window had seen them all. */
export function pooledSnapshot(samples: readonly WindowSample[]): LiveSnapshot {
  let requests = 0
  let errors = 0
  let labels = 0
  let right = 0
  let values = 0
  let absErrorSum = 0
  for (const s of samples) {
    requests += s.requests
    errors += s.errors
    labels += s.labels
    right += s.right
    values += s.values
    absErrorSum += s.absErrorSum
  }
  const latencies =
    samples.length === 1
      ? samples[0]!.latencies
      : samples.flatMap((s) => s.latencies).sort((a, b) => a - b)
  return {
    requests,
    errors,
    errorRate: requests === 0 ? null : errors / requests,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    feedback: labels + values,
    labels,
    values,
    accuracy: labels === 0 ? null : right / labels,
    mae: values === 0 ? null : absErrorSum / values,
  }
}

/** Nearest-rank quantile of sorted values (null when there are none). */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)))
  return sorted[rank - 1]!
}

function sum(values: Float64Array): number {
  let s = 0
  for (const v of values) s += v
  return s
}

/**
 * Every version's live window, by model and version number: the data plane records into them,
 * probation and the status pages read them. A window outlives its sessions (feedback for a version
 * just replaced still counts), and each model keeps the windows of its most recent versions only.
 */
export class LiveFigures {
  readonly #models = new Map<string, Map<number, LiveWindow>>()
  readonly #keepPerModel: number
  /**
   * What the other replicas sharing the state directory saw of the versions being judged (their
   * heartbeats): probations and canary steps are judged on everyone's figures pooled with these.
   */
  peers: PeerSamples | undefined

  constructor(o: { keepPerModel?: number } = {}) {
    this.#keepPerModel = o.keepPerModel ?? 16
  }

  /** The version's window, made on first use with `sizes`. */
  window(model: string, version: number, sizes?: LiveWindowSizes): LiveWindow {
    let versions = this.#models.get(model)
    if (!versions) {
      versions = new Map()
      this.#models.set(model, versions)
    }
    let w = versions.get(version)
    if (!w) {
      w = new LiveWindow(sizes)
      versions.set(version, w)
      // Oldest first: the window made longest ago leaves.
      if (versions.size > this.#keepPerModel) versions.delete(versions.keys().next().value!)
    }
    return w
  }

  /** A new window for the version (a promotion: its figures start from nothing). */
  restart(model: string, version: number, sizes?: LiveWindowSizes): LiveWindow {
    this.#models.get(model)?.delete(version)
    return this.window(model, version, sizes)
  }

  /** The version's window if it has one. */
  find(model: string, version: number): LiveWindow | undefined {
    return this.#models.get(model)?.get(version)
  }

  /** Every window, for metrics. */
  *entries(): Iterable<{ model: string; version: number; window: LiveWindow }> {
    for (const [model, versions] of this.#models)
      for (const [version, window] of versions) yield { model, version, window }
  }
}
