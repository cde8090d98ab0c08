// Sends readings of one world to the `sensor` model, and their true states as feedback, the way an
// application would: predict, and later report what was right. Prints how often the answers were
// right, per version that answered.
//
//   node examples/retrain-on-drift/traffic.mjs --world old|new [--rows 200] [--url URL]
import { randomInt } from 'node:crypto'
import { parseArgs } from 'node:util'
import { draw, INPUT, MODEL, seeded } from './world.mjs'

const { values: flags } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    world: { type: 'string', default: 'new' },
    rows: { type: 'string', default: '200' },
    batch: { type: 'string', default: '10' },
    seed: { type: 'string' },
  },
})
const batch = Number(flags.batch)
const rand = seeded(flags.seed === undefined ? randomInt(2 ** 31) : Number(flags.seed))
const { rows, labels } = draw(flags.world, Number(flags.rows), rand)

async function post(path, body) {
  const res = await fetch(`${flags.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const answer = await res.json()
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(answer)}`)
  return answer
}

const answeredBy = {}
for (let i = 0; i < rows.length; i += batch) {
  const truth = labels.slice(i, i + batch)
  const prediction = await post(`/models/${MODEL}/predict`, {
    inputs: { [INPUT]: rows.slice(i, i + batch) },
    outputs: ['label'],
  })
  await post(`/models/${MODEL}/feedback`, { items: [{ id: prediction.id, label: truth }] })
  answeredBy[prediction.version] ??= { rows: 0, right: 0 }
  const tally = answeredBy[prediction.version]
  tally.rows += truth.length
  tally.right += prediction.outputs.label.filter((label, j) => label === truth[j]).length
}
console.log(JSON.stringify({ world: flags.world, rows: rows.length, answeredBy }))
