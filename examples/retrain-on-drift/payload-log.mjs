// Reads a model's payload log (<state-dir>/payloads/<model>/*.jsonl, see the README's "Payload
// log") and joins each prediction with the feedback given on it, by id: the labelled rows a
// retrain learns from.
import { createReadStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/**
 * The labelled rows of the predictions made at or after `since` (a Date), oldest first: the
 * model's one input as rows of numbers, each row's label (a class index), and the number of
 * classes its `probabilities` output has. Rows that cannot be used (a non-numeric value, a label
 * that is not a class index) are counted in `skipped`.
 */
export async function labelledRows(stateDir, model, since) {
  const predictions = new Map()
  const truths = new Map()
  for await (const line of payloadLines(join(stateDir, 'payloads', model))) {
    if (line.type === 'prediction' && Date.parse(line.time) >= since.getTime())
      predictions.set(line.id, line)
    else if (line.type === 'feedback' && line.label !== undefined) truths.set(line.id, line.label)
  }
  const joined = { input: undefined, rows: [], labels: [], classes: 0, skipped: 0 }
  for (const [id, prediction] of predictions) {
    if (truths.has(id)) addRows(joined, prediction, truths.get(id))
  }
  return joined
}

/** Every line of every file, files oldest first (their names sort by time), lines in order. */
async function* payloadLines(dir) {
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.jsonl')).sort()
  for (const name of names) {
    try {
      yield* fileLines(join(dir, name))
    } catch (e) {
      // The server removes the oldest files to stay within maxMegabytes: one may go while listed.
      if (e.code !== 'ENOENT') throw e
    }
  }
}

async function* fileLines(path) {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
  for await (const text of lines) {
    try {
      yield JSON.parse(text)
    } catch {
      // The last line of the file being written may be cut short: it is read next time.
    }
  }
}

function addRows(joined, prediction, truth) {
  const names = Object.keys(prediction.inputs)
  if (names.length !== 1)
    throw new Error(
      `the example trains models with one input; '${prediction.model}' has ${names.length}`,
    )
  joined.input = names[0]
  const rows = prediction.inputs[names[0]]
  const labels = Array.isArray(truth) ? truth : [truth]
  const probabilities = prediction.outputs.probabilities
  if (Array.isArray(probabilities?.[0]))
    joined.classes = Math.max(joined.classes, probabilities[0].length)
  rows.forEach((row, i) => {
    const label = labels[i]
    const usable =
      Array.isArray(row) &&
      row.every((v) => typeof v === 'number' && Number.isFinite(v)) &&
      Number.isInteger(label) &&
      label >= 0
    if (!usable) {
      joined.skipped++
      return
    }
    joined.rows.push(row)
    joined.labels.push(label)
    joined.classes = Math.max(joined.classes, label + 1)
  })
}
