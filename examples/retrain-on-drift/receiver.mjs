// A webhook receiver that closes the loop: on `drift_detected` it retrains the model from its
// payload log joined with feedback and ships the result as the next version, which modelgate
// then gates, rolls out and judges on probation like any other. See README.md beside this file.
//
//   node examples/retrain-on-drift/receiver.mjs --models DIR [--port 8090] [--min-rows 200] ...
//
// MODELGATE_WEBHOOK_SECRET, the variable `modelgate serve` signs with, is checked on every POST
// when set. Logs one JSON object per line on stdout.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { labelledRows } from './payload-log.mjs'
import { shipVersion } from './ship-version.mjs'
import { accuracy, toOnnx, train } from './softmax-regression.mjs'

const MAX_BODY_BYTES = 1024 * 1024
const HOLDOUT_SHARE = 0.2

const { values: flags } = parseArgs({
  options: {
    models: { type: 'string' },
    'state-dir': { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8090' },
    'min-rows': { type: 'string', default: '200' },
    'max-rows': { type: 'string', default: '2000' },
    'min-accuracy': { type: 'string', default: '0.8' },
    'poll-seconds': { type: 'string', default: '1' },
    'wait-seconds': { type: 'string', default: '3600' },
  },
})
if (!flags.models) {
  console.error(
    'usage: node receiver.mjs --models DIR [--state-dir DIR] [--port N] (see README.md)',
  )
  process.exit(2)
}
const settings = {
  models: flags.models,
  stateDir: flags['state-dir'] ?? join(flags.models, '.modelgate'),
  minRows: Number(flags['min-rows']),
  maxRows: Number(flags['max-rows']),
  minAccuracy: Number(flags['min-accuracy']),
  pollMs: Number(flags['poll-seconds']) * 1000,
  waitMs: Number(flags['wait-seconds']) * 1000,
  secret: process.env.MODELGATE_WEBHOOK_SECRET,
}

function log(event, fields = {}) {
  console.log(JSON.stringify({ time: new Date().toISOString(), event, ...fields }))
}

/**
 * The events that start a retrain. To retrain on falling accuracy as well, add a rule here, for
 * example `(e) => e.type === 'auto_rolled_back' && e.rule === 'accuracy'` (a new version lost on
 * its live labels), or poll `GET /models/{name}` for `versions[].live.accuracy` and call
 * `startRetrain` below when it falls under your bar.
 */
const TRIGGERS = [(e) => e.type === 'drift_detected']

/** Model name -> the retrain under way: never two at once for one model. */
const retraining = new Map()

function startRetrain(event) {
  const model = event.model
  if (retraining.has(model)) {
    log('retrain_skipped', {
      model,
      trigger: event.type,
      reason: 'a retrain of this model is under way',
    })
    return
  }
  log('retrain_started', { model, trigger: event.type, version: event.version, since: event.time })
  const run = retrain(model, new Date(event.time))
    .catch((e) => log('retrain_failed', { model, error: e.message }))
    .finally(() => retraining.delete(model))
  retraining.set(model, run)
}

/**
 * Waits until at least `minRows` predictions made since the trigger have their labels, trains on
 * the newest `maxRows` of them, and ships the model when it scores well enough on the rows it
 * held out. Rows from before the trigger are left out: the alarm says they describe a world that
 * has gone.
 */
async function retrain(model, since) {
  const data = await waitForLabels(model, since)
  if (!data) return
  const rows = data.rows.slice(-settings.maxRows)
  const labels = data.labels.slice(-settings.maxRows)
  const cut = Math.floor(rows.length * (1 - HOLDOUT_SHARE))
  const trained = train(rows.slice(0, cut), labels.slice(0, cut), data.classes)
  const held = { rows: rows.slice(cut), labels: labels.slice(cut) }
  const holdoutAccuracy = accuracy(trained, held.rows, held.labels)
  if (holdoutAccuracy < settings.minAccuracy) {
    log('retrain_refused', {
      model,
      rows: rows.length,
      holdoutAccuracy,
      minAccuracy: settings.minAccuracy,
    })
    return
  }
  // The held-out rows become this version's own smoke cases: the gate checks, in onnxruntime,
  // that the file modelgate will serve scores as well as the trainer said.
  const smoke = {
    minAccuracy: settings.minAccuracy,
    cases: [
      {
        name: 'held-out feedback',
        inputs: { [data.input]: held.rows },
        label: { output: 'label', value: held.labels },
      },
    ],
  }
  const shipped = await shipVersion(settings.models, model, {
    'model.onnx': toOnnx(trained, data.input),
    'smoke.json': `${JSON.stringify(smoke)}\n`,
  })
  log('version_shipped', { model, ...shipped, rows: rows.length, holdoutAccuracy })
}

async function waitForLabels(model, since) {
  const deadline = Date.now() + settings.waitMs
  let seen = -1
  for (;;) {
    const data = await labelledRows(settings.stateDir, model, since)
    if (data.rows.length >= settings.minRows) return data
    if (data.rows.length !== seen) {
      seen = data.rows.length
      log('waiting_for_labels', { model, rows: seen, minRows: settings.minRows })
    }
    if (Date.now() > deadline) {
      log('retrain_abandoned', { model, rows: seen, reason: 'too few labelled rows in time' })
      return undefined
    }
    await sleep(settings.pollMs)
  }
}

/** `sha256=<hex>` of the exact body with the shared secret, compared in constant time. */
function signedBySecret(body, header) {
  const expected = Buffer.from(
    `sha256=${createHmac('sha256', settings.secret).update(body).digest('hex')}`,
  )
  const got = Buffer.from(String(header ?? ''))
  return got.length === expected.length && timingSafeEqual(got, expected)
}

const server = createServer(function onWebhook(req, res) {
  const chunks = []
  let size = 0
  req.on('data', (chunk) => {
    size += chunk.length
    if (size > MAX_BODY_BYTES) req.destroy()
    else chunks.push(chunk)
  })
  req.on('end', () => {
    const body = Buffer.concat(chunks)
    if (req.method !== 'POST') return answer(res, 405)
    if (settings.secret && !signedBySecret(body, req.headers['x-modelgate-signature'])) {
      log('webhook_refused', { reason: 'bad or missing X-Modelgate-Signature' })
      return answer(res, 401)
    }
    let event
    try {
      event = JSON.parse(body.toString('utf8'))
    } catch {
      return answer(res, 400)
    }
    // Answered at once: modelgate holds the model's later events back until this one is taken.
    answer(res, 202)
    log('event_received', { type: event.type, model: event.model, version: event.version })
    if (TRIGGERS.some((trigger) => trigger(event))) startRetrain(event)
  })
})

function answer(res, status) {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(`${status}\n`)
}

server.listen(Number(flags.port), flags.host, () => {
  const { address, port } = server.address()
  log('listening', {
    url: `http://${address}:${port}/`,
    models: settings.models,
    stateDir: settings.stateDir,
  })
})
// A retrain cut short leaves only its hidden staging folder, which the next one clears.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0))
