import { formatRate } from './format.js'

const WIDTH = 120
const HEIGHT = 24

/** Requests per second over the last minute, drawn inline (no chart library, nothing to fetch). */
export function Sparkline({ rates }: { rates: readonly number[] }) {
  if (rates.length < 2) return null
  const peak = Math.max(...rates)
  // A scale of at least 1/s: a trickle does not fill the box as a flood would.
  const top = Math.max(peak, 1)
  const step = WIDTH / (rates.length - 1)
  const points = rates
    .map((r, i) => `${(i * step).toFixed(1)},${(HEIGHT - 1 - (r / top) * (HEIGHT - 2)).toFixed(1)}`)
    .join(' ')
  const label = `requests per second over the last minute: from ${formatRate(rates[0])} to ${formatRate(rates[rates.length - 1])}, at most ${formatRate(peak)}`
  return (
    <svg
      class="sparkline"
      role="img"
      aria-label={label}
      viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
      width={WIDTH}
      height={HEIGHT}
    >
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  )
}
