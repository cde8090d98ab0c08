// npm run bench [-- scenario...]: runs the benchmarks and writes bench/results/.
// Each figure is a ratio against a baseline measured in the same run: machines here are shared.
// A scenario fails when any of its requests fails (non-2xx answer, socket error, timeout) unless it
// expects errors; a failed scenario writes no results, the others still run, and the exit code is 1.
import { LoadErrorsFound } from './lib/load.mjs'
import { benchSettings } from './lib/settings.mjs'
import { scenarios } from './scenarios/index.mjs'

try {
  benchSettings() // a mistyped BENCH_* knob stops the run before anything is measured
} catch (e) {
  console.error(e.message)
  process.exit(2)
}

const wanted = process.argv.slice(2)
const names = wanted.length ? wanted : Object.keys(scenarios)
const unknown = names.filter((name) => !scenarios[name])
if (unknown.length) {
  console.error(
    `unknown scenario '${unknown.join("', '")}'; known: ${Object.keys(scenarios).join(', ')}`,
  )
  process.exit(2)
}

const failed = []
for (const name of names) {
  console.log(`\n=== ${name} ===`)
  try {
    console.log(await scenarios[name]())
  } catch (e) {
    failed.push({ name, e })
    // A load run's errors are the finding; anything else is a fault of the bench: its stack helps.
    console.error(`\n${name} FAILED: ${e instanceof LoadErrorsFound ? e.message : e.stack}`)
  }
}
if (failed.length) {
  console.error(
    `\n${failed.length} of ${names.length} scenarios failed (no results written for them):`,
  )
  for (const { name, e } of failed) console.error(`  ${name}: ${e.message}`)
  process.exitCode = 1
}
