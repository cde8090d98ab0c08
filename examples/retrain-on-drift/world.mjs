// The demo's world: readings of a machine's two sensors, [temperature, vibration] in standard
// units, and the machine's state. In the new world the temperature sensor was replaced by one
// that reads 3 units higher: the inputs move, and so does where each state lies.

export const MODEL = 'sensor'
export const INPUT = 'features'
export const CLASSES = ['ok', 'worn', 'failing']

const CENTERS = [
  [0, 0],
  [3, 0],
  [0, 3],
]
const SPREAD = 0.6
const OFFSETS = { old: [0, 0], new: [3, 0] }

/** A seeded generator (mulberry32): the same rows for the same seed. */
export function seeded(seed) {
  let a = seed | 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` readings of `world` ('old' or 'new') with their true states, as class indices. */
export function draw(world, n, rand) {
  const offset = OFFSETS[world]
  if (!offset) throw new Error(`no world '${world}': 'old' or 'new'`)
  const rows = []
  const labels = []
  for (let i = 0; i < n; i++) {
    const label = Math.floor(rand() * CLASSES.length)
    rows.push(CENTERS[label].map((c, j) => c + offset[j] + SPREAD * gaussian(rand)))
    labels.push(label)
  }
  return { rows, labels }
}

/** Box-Muller: a standard normal draw from two uniform ones. */
function gaussian(rand) {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
}
