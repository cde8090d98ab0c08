import { categoryBinning, psi, quantileBinning, type Binning } from './binning.js'

/** How a feature's values are binned: by the reference's deciles, or by its most frequent values. */
export type FeatureKind = 'numeric' | 'category'

/**
 * One feature's reference and its live window. Values first fill the reference sample; once
 * `freeze` has fixed the bins on it, later values fill a ring of the last `window` rows' bin
 * indices, whose counts follow it: O(1) per value, nothing allocated. Values that arrive between
 * a full sample and `freeze` are not counted (freezing sorts the sample: not on the request path).
 */
export class FeatureWindow {
  readonly input: string
  readonly feature: string
  readonly kind: FeatureKind
  readonly #window: number
  #sample: Float64Array | unknown[]
  #sampled = 0
  #binning: Binning | undefined
  #reference: Uint32Array | undefined
  /** The live rows' bins, oldest overwritten first (every binning has fewer than 256 bins). */
  readonly #ring: Uint8Array
  #counts: Uint32Array | undefined
  #next = 0
  #filled = 0

  constructor(input: string, feature: string, kind: FeatureKind, window: number) {
    this.input = input
    this.feature = feature
    this.kind = kind
    this.#window = window
    this.#sample = this.#emptySample(window)
    this.#ring = new Uint8Array(window)
  }

  add(value: unknown): void {
    const binning = this.#binning
    if (binning === undefined) {
      if (this.sampleFull) return
      if (this.kind === 'numeric') (this.#sample as Float64Array)[this.#sampled++] = value as number
      else (this.#sample as unknown[])[this.#sampled++] = value
      return
    }
    const counts = this.#counts!
    const bin = binning.binOf(value)
    if (this.#filled === this.#window) counts[this.#ring[this.#next]!]!--
    else this.#filled++
    this.#ring[this.#next] = bin
    counts[bin]!++
    this.#next = (this.#next + 1) % this.#window
  }

  /**
   * Fixes the bins on `given` (reference.json's values), else on the sample taken so far, and bins
   * that sample as the reference. Later values are live.
   */
  freeze(given?: readonly unknown[]): void {
    if (this.#binning !== undefined) return
    const sample =
      this.kind === 'numeric'
        ? given
          ? Float64Array.from(given as readonly number[])
          : (this.#sample as Float64Array).subarray(0, this.#sampled)
        : (given ?? (this.#sample as unknown[]).slice(0, this.#sampled))
    const binning =
      this.kind === 'numeric'
        ? quantileBinning(sample as Float64Array)
        : categoryBinning(sample as readonly unknown[])
    const reference = new Uint32Array(binning.size)
    for (let i = 0; i < sample.length; i++) reference[binning.binOf(sample[i])]!++
    this.#binning = binning
    this.#reference = reference
    this.#counts = new Uint32Array(binning.size)
    this.#sample = this.#emptySample(0) // only its bins are needed from now on
  }

  /** The reference sample holds `window` values and waits for `freeze`. */
  get sampleFull(): boolean {
    return this.#binning === undefined && this.#sampled === this.#sample.length
  }

  /** The bins are fixed: values count as live. */
  get frozen(): boolean {
    return this.#binning !== undefined
  }

  get referenceRows(): number {
    return this.#reference ? total(this.#reference) : this.#sampled
  }

  get liveRows(): number {
    return this.#filled
  }

  /** PSI of the live window against the reference; null until both are there and the window is full. */
  psi(): number | null {
    if (!this.#reference || !this.#counts || this.#filled < this.#window) return null
    if (total(this.#reference) === 0) return null
    return psi(this.#reference, this.#counts)
  }

  #emptySample(size: number): Float64Array | unknown[] {
    return this.kind === 'numeric' ? new Float64Array(size) : new Array<unknown>(size)
  }
}

function total(counts: Uint32Array): number {
  let t = 0
  for (const c of counts) t += c
  return t
}
