/**
 * How a feature's values are sorted into bins, and the population stability index between two
 * histograms over the same bins. Pure: no I/O, no clock.
 */

/** The bins of one feature, fixed by its reference sample. */
export interface Binning {
  readonly size: number
  binOf(value: unknown): number
}

/** Quantile bins of a numeric reference: 10 between its minimum and maximum, one below, one above. */
const QUANTILE_BINS = 10
/** Categories kept by name (the reference's most frequent); every other value shares one bin. */
const TOP_CATEGORIES = 20

/**
 * Bin 0 below the reference's minimum, 1..10 between its deciles (bin k + 1 holds values from
 * the k-th decile up to the next), 11 above its maximum. NaN goes above: it is as far from the
 * reference as a value can be.
 */
export function quantileBinning(sample: Float64Array): Binning {
  const sorted = sample.filter((v) => !Number.isNaN(v)).sort()
  const n = sorted.length
  const low = n > 0 ? sorted[0]! : 0
  const high = n > 0 ? sorted[n - 1]! : 0
  const edges = new Float64Array(QUANTILE_BINS - 1)
  for (let k = 1; k < QUANTILE_BINS; k++)
    edges[k - 1] = n > 0 ? sorted[Math.floor((k * n) / QUANTILE_BINS)]! : 0
  return {
    size: QUANTILE_BINS + 2,
    binOf: function quantileBin(value: unknown): number {
      const v = value as number
      if (v < low) return 0
      if (v > high || Number.isNaN(v)) return QUANTILE_BINS + 1
      let bin = 1
      for (let k = 0; k < edges.length; k++) if (edges[k]! <= v) bin++
      return bin
    },
  }
}

/**
 * One bin per category among the reference's 20 most frequent (ties: the first seen), and one for
 * every other value. Values are compared as they are (SameValueZero: strings, numbers, bigints), so
 * counting one allocates nothing.
 */
export function categoryBinning(sample: readonly unknown[]): Binning {
  const counts = new Map<unknown, number>()
  for (const v of sample) counts.set(v, (counts.get(v) ?? 0) + 1)
  const top = [...counts.entries()]
    .map(([value, count], order) => ({ value, count, order }))
    .sort((a, b) => b.count - a.count || a.order - b.order)
    .slice(0, TOP_CATEGORIES)
  const index = new Map<unknown, number>(top.map((c, i) => [c.value, i]))
  return {
    size: TOP_CATEGORIES + 1,
    binOf: function categoryBin(value: unknown): number {
      return index.get(value) ?? TOP_CATEGORIES
    },
  }
}

/**
 * Population stability index of `live` against `reference` (counts per bin, the same bins):
 * sum over bins of (live share - reference share) * ln(live share / reference share).
 *
 * A bin empty on one side would make it infinite: its share counts as half a row of that side
 * (a bin empty on both sides counts for nothing).
 * The usual fixed floor (1e-4) weighs a single row past the range of a reference taken from a
 * first window (whose outer bins are always empty) like a shifted population: two samples of one
 * normal distribution crossed 0.2 in 18% of windows of 200 rows; with half a row, under 5%.
 */
export function psi(reference: ArrayLike<number>, live: ArrayLike<number>): number {
  const refTotal = total(reference)
  const liveTotal = total(live)
  const refFloor = 0.5 / refTotal
  const liveFloor = 0.5 / liveTotal
  let sum = 0
  for (let i = 0; i < reference.length; i++) {
    if (reference[i] === 0 && live[i] === 0) continue // a bin neither side uses says nothing
    const e = Math.max(reference[i]! / refTotal, refFloor)
    const a = Math.max(live[i]! / liveTotal, liveFloor)
    sum += (a - e) * Math.log(a / e)
  }
  return sum
}

function total(counts: ArrayLike<number>): number {
  let t = 0
  for (let i = 0; i < counts.length; i++) t += counts[i]!
  return t
}
