// The bench's knobs, read from the environment here and nowhere else, and checked: a typo in a
// knob must stop the run, not silently measure something else.
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'

const TOOLS = ['wrk', 'node']
/** `404`: every load run goes to a path that does not exist. */
const PLANTED_FAULTS = ['404']

/**
 * @returns {Readonly<{seconds: number | undefined, tool: 'wrk' | 'node' | undefined,
 *   plantFault: '404' | undefined, resultsDir: string}>}
 */
export function benchSettings(env = process.env) {
  const seconds = env.BENCH_SECONDS ? Number(env.BENCH_SECONDS) : undefined
  // Whole seconds: wrk's -d takes no fractions.
  if (seconds !== undefined && !(Number.isInteger(seconds) && seconds > 0))
    throw new Error(`BENCH_SECONDS must be a whole number of seconds, got '${env.BENCH_SECONDS}'`)
  const tool = env.BENCH_TOOL || undefined
  if (tool !== undefined && !TOOLS.includes(tool))
    throw new Error(`BENCH_TOOL must be one of ${TOOLS.join(', ')}, got '${tool}'`)
  const plantFault = env.BENCH_PLANT_FAULT || undefined
  if (plantFault !== undefined && !PLANTED_FAULTS.includes(plantFault)) {
    throw new Error(
      `BENCH_PLANT_FAULT must be one of ${PLANTED_FAULTS.join(', ')}, got '${plantFault}'`,
    )
  }
  const resultsDir = env.BENCH_RESULTS_DIR
    ? resolve(env.BENCH_RESULTS_DIR)
    : fileURLToPath(new URL('../results/', import.meta.url))
  return Object.freeze({ seconds, tool, plantFault, resultsDir })
}
