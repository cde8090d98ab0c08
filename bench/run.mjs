// npm run bench [-- scenario...]: runs the benchmarks and writes bench/results/.
// Each figure is a ratio against a baseline measured in the same run: machines here are shared.
import { scenarios } from './scenarios/index.mjs'

const wanted = process.argv.slice(2)
const names = wanted.length ? wanted : Object.keys(scenarios)
for (const name of names) {
  const scenario = scenarios[name]
  if (!scenario) {
    console.error(`unknown scenario '${name}'; known: ${Object.keys(scenarios).join(', ')}`)
    process.exit(2)
  }
  console.log(`\n=== ${name} ===`)
  const md = await scenario()
  console.log(md)
}
