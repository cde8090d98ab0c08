#!/usr/bin/env node
import { parseArgs } from 'node:util'
import {
  BOOLEAN_OPTIONS,
  ConfigError,
  envName,
  flagName,
  loadServeConfig,
  OPTION_KEYS,
  type OptionKey,
  REPEATABLE_OPTIONS,
} from './config.js'
import { historyCommand, promoteCommand, rollbackCommand } from './cli/admin-commands.js'
import { IMPORT_USAGE, importCommand } from './cli/import-sklearn.js'
import { runRemote } from './cli/remote-command.js'
import { replicasCommand } from './cli/replicas.js'
import { statusCommand } from './cli/status.js'
import { SHIP_USAGE, shipCommand } from './cli/ship.js'
import { runCommand } from './cli/exit.js'
import { SMOKE_USAGE, smokeCommand } from './cli/smoke-record.js'
import { runPrimary } from './cluster/primary.js'
import { isClusterWorker, PrimaryLink } from './cluster/worker.js'
import { createLogger } from './log.js'
import { type ModelgateServer, startServer, StartupError } from './server.js'
import { formatReport, UsageError, validate } from './validate.js'
import { VERSION } from './version.js'

const USAGE = `modelgate ${VERSION}: an ONNX inference server for continuous deployment of models

Usage:
  modelgate serve [options]              serve the models directory over HTTP
  modelgate validate <version> [options] run the gate on a version offline (for CI)
  modelgate status [MODEL]               every model, or one model's versions, live figures, probation
  modelgate history MODEL [--limit N]    a model's lifecycle events
  modelgate replicas                     the servers sharing the state directory, and who is behind
  modelgate rollback MODEL [--to V]      serve an earlier version again
  modelgate promote MODEL V              serve version V now
  modelgate ship FILE --models DIR --model NAME [--wait]
                                         ship a model file as a new version, the safe way
  modelgate smoke record MODEL --inputs FILE
                                         write smoke.json from today's outputs on sample inputs
  modelgate import sklearn MODEL.pkl --out FILE.onnx [--smoke-from ROWS.csv]
                                         convert a scikit-learn model to ONNX (runs Python,
                                         which runs the pickle's code: trusted files only)
  modelgate --help                       this text
  modelgate <command> --help             the options of a command
  modelgate --version
`

const VALIDATE_USAGE = `Usage: modelgate validate <version folder | .onnx file> [options]

Runs the gate a server would run (load, signature, smoke, latency, agreement, warm-up) and
prints a report. Exit status: 0 pass, 1 fail, 2 usage error.

Options:
  --model-dir DIR   the model's folder, with model.json and smoke.json (default: the
                    parent of the version folder, or the folder of the .onnx file)
  --active PATH     the version serving today (folder or .onnx): the signature contract
                    and the baseline for latency.maxRatio and agreement. Default: the
                    active version recorded in the state directory, as the server judges
                    it; 'none' judges the candidate as a model's first version
  --state-dir DIR   the server's state directory (default: <models>/.modelgate, where
                    <models> is the model folder's parent)
  --require-smoke   fail a version that has no smoke cases
  --json            the report as JSON on stdout
  -h, --help
`

const SERVE_HELP: Record<OptionKey, readonly [string, string]> = {
  models: ['DIR', 'models directory (default: ./models)'],
  port: ['N', 'port to listen on (default: 8080; 0 picks a free port)'],
  host: ['HOST', 'address to bind (default: 127.0.0.1; 0.0.0.0 for all)'],
  grpcPort: ['N', 'also serve the Open Inference Protocol over gRPC here (default: off)'],
  grpcMaxMessageSize: ['SIZE', 'largest gRPC message received (default: 32mb)'],
  stateDir: ['DIR', 'state and history (default: <models>/.modelgate)'],
  defaultModel: ['NAME', 'model that POST /predict serves (default: the only one)'],
  maxBodySize: ['SIZE', 'largest request body, e.g. 512k, 32mb (default: 32mb)'],
  maxOutputSize: ['SIZE', 'largest answer, as encoded (default: 64mb)'],
  logLevel: ['LEVEL', 'debug, info, warn, error or silent (default: info)'],
  stabilityMs: ['MS', 'a file must be unchanged this long before it is read (500)'],
  poll: ['', 'poll the file system (network file systems) instead of events'],
  rescanMs: ['MS', 're-list every model folder this often (default: 5000)'],
  requireSmoke: ['', 'reject versions that have no smoke cases'],
  shutdownTimeout: ['SEC', 'on SIGTERM, in-flight requests get this long (default: 30)'],
  adminTokenFile: ['FILE', 'admin token from a file (or set MODELGATE_ADMIN_TOKEN)'],
  maxInflightBodySize: ['SIZE', 'request-body bytes held at once, all requests (default: 256mb)'],
  headerTimeout: ['SEC', 'time to send the request headers (default: 10)'],
  bodyTimeout: ['SEC', 'a request body with no bytes this long gets 408 (default: 30)'],
  requestTimeout: ['SEC', 'time to send a whole request (default: 300)'],
  maxModelSize: ['SIZE', 'refuse larger model files unread (default: 2 GiB - 1)'],
  threadpoolStallMs: ['MS', '/healthz 503 after a threadpool stall this long (10000)'],
  execution: ['MODE', 'where models run unless model.json says: auto, main, workers (auto)'],
  maxMemory: ['SIZE', 'refuse a version that would take the process past this (default: none)'],
  webhook: ['URL', 'POST every lifecycle event here (repeat the flag for more than one)'],
  webhookSecretFile: ['FILE', 'sign webhook bodies with this secret (or MODELGATE_WEBHOOK_SECRET)'],
  workers: ['N', 'server processes sharing the port, 1 to 64 (default: 1, no cluster)'],
}

function serveUsage(): string {
  const rows = OPTION_KEYS.map((key) => {
    const [arg, text] = SERVE_HELP[key]
    return { flag: arg ? `${flagName(key)} ${arg}` : flagName(key), text, env: envName(key) }
  })
  const width = Math.max(...rows.map((r) => r.flag.length)) + 2
  // The description and its environment variable on two lines: aligned however long either is.
  const lines = rows.map(
    (r) => `  ${r.flag.padEnd(width)}${r.text}\n  ${' '.repeat(width)}env ${r.env}`,
  )
  return `Usage: modelgate serve [options]

Options (a flag, or the environment variable under it; a flag wins):
${lines.join('\n')}
  ${'-h, --help'.padEnd(width)}this text
`
}

function fail(message: string): never {
  process.stderr.write(`modelgate: ${message}\n`)
  process.exit(2)
}

async function serve(args: string[]): Promise<void> {
  let values: Record<string, string | boolean | string[] | undefined>
  try {
    ;({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(
          OPTION_KEYS.map((key) => [
            flagName(key).slice(2),
            {
              type: BOOLEAN_OPTIONS.has(key) ? ('boolean' as const) : ('string' as const),
              multiple: REPEATABLE_OPTIONS.has(key),
            },
          ]),
        ),
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (e) {
    fail(`${(e as Error).message}\n\n${serveUsage()}`)
  }
  if (values.help) {
    process.stdout.write(serveUsage())
    return
  }
  const flags = Object.fromEntries(OPTION_KEYS.map((key) => [key, values[flagName(key).slice(2)]]))
  let config
  try {
    config = loadServeConfig(flags, process.env)
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message)
    throw e
  }
  const logger = createLogger(config.logLevel)
  if (config.workers > 1 && !isClusterWorker()) {
    runPrimary(config, logger)
    return
  }
  // A worker links to its primary before its server starts: see PrimaryLink.
  const primary = isClusterWorker() ? new PrimaryLink(logger, config.workers) : undefined
  const log = primary?.logger ?? logger
  let server: ModelgateServer
  try {
    server = await startServer(config, log, {
      exposition: primary && ((own) => primary.exposition(own.registry)),
      listenOnceLoaded: primary?.replacement,
    })
  } catch (e) {
    if (e instanceof StartupError) fail(e.message)
    throw e
  }
  let stopping = false
  let signals = 0
  const stop = (fields: { signal: string } | { primary: string }) => {
    if ('signal' in fields && ++signals > 1) {
      // A second signal: the operator does not want to wait. (A worker's first may come after its
      // primary's request: Ctrl-C signals every process of the group, the primary passes it on.)
      log.warn('stopping_now', fields)
      process.exit(1)
    }
    if (stopping) return
    stopping = true
    log.info('stopping', fields)
    server.close().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error('stop_failed', { error: e })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop({ signal: 'SIGTERM' }))
  process.on('SIGINT', () => stop({ signal: 'SIGINT' }))
  primary?.serving((reason) => stop({ primary: reason }))
}

async function validateCommand(args: string[]): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        'model-dir': { type: 'string' },
        active: { type: 'string' },
        'state-dir': { type: 'string' },
        'require-smoke': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (e) {
    fail(`${(e as Error).message}\n\n${VALIDATE_USAGE}`)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(VALIDATE_USAGE)
    return
  }
  if (positionals.length !== 1)
    fail(`validate takes one version folder or .onnx file\n\n${VALIDATE_USAGE}`)
  let result
  try {
    result = await validate({
      path: positionals[0]!,
      modelDir: values['model-dir'],
      active: values.active,
      stateDir: values['state-dir'],
      requireSmoke: values['require-smoke'] === true,
    })
  } catch (e) {
    if (e instanceof UsageError) fail(e.message)
    throw e
  }
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result))
  // The gate process is not used here, but onnxruntime's threads may keep the process alive.
  process.exit(result.passed ? 0 : 1)
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'validate':
      return validateCommand(rest)
    case 'status':
      return runRemote(statusCommand, rest, process.env)
    case 'history':
      return runRemote(historyCommand, rest, process.env)
    case 'replicas':
      return runRemote(replicasCommand, rest, process.env)
    case 'rollback':
      return runRemote(rollbackCommand, rest, process.env)
    case 'promote':
      return runRemote(promoteCommand, rest, process.env)
    case 'ship':
      return runCommand(SHIP_USAGE, () => shipCommand(rest, process.env))
    case 'smoke':
      return runCommand(SMOKE_USAGE, () => smokeCommand(rest, process.env))
    case 'import':
      return runCommand(IMPORT_USAGE, () => importCommand(rest, process.env))
    case '--version':
    case '-v':
      process.stdout.write(`${VERSION}\n`)
      return
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE)
      return
    default:
      fail(`unknown command '${command}'\n\n${USAGE}`)
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`modelgate: ${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
