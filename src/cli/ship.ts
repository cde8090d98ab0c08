import { versionFolder } from '../repository/layout.js'
import { parseCommandArgs } from './command-args.js'
import { EXIT, usageError } from './exit.js'
import { clientFor, DEFAULT_URL } from './client.js'
import { shipVersion, STAGING_DIR } from './ship-version.js'
import { readModel, waitForVerdict } from './ship-wait.js'

export const SHIP_USAGE = `Usage: modelgate ship FILE --models DIR --model NAME [options]

Ships FILE as a new version the safe way: the version folder (model.onnx and its sha256 sidecar)
is written under <models>/${STAGING_DIR}/, which the server ignores, synced to disk, and renamed
in whole as <models>/<model>/<version>. The server never sees it half-written, and reads it at once.

Options:
  --models DIR      the models directory the server watches
  --model NAME      the model; its folder must exist, unless --create
  --version V       the version number (default: the highest on disk + 1); never replaces one
  --create          make the model's folder: a new model
  --smoke FILE      also put FILE into the version folder, as its own smoke.json
  --wait            wait for the server's verdict; exit 0 only once the version serves
  --url URL         the server, for --wait (default: ${DEFAULT_URL}, or MODELGATE_URL)
  --timeout SEC     how long --wait waits, a rollout included (default: 300)
  -h, --help

Exit status: 0 shipped (and serving, with --wait); 1 refused: not an ONNX model, the version
exists, or the server's verdict (rejected, rolled back); 2 usage error; 3 server unreachable
(checked before anything is written); 4 --wait timed out (the version stays shipped).
`

const DEFAULT_TIMEOUT_SECONDS = 300

export async function shipCommand(
  args: string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, OPTIONS)
  if (values.help) {
    process.stdout.write(SHIP_USAGE)
    return EXIT.ok
  }
  if (positionals.length !== 1) throw usageError('ship takes one model file')
  if (!values.models) throw usageError('--models DIR is required: the models directory')
  if (!values.model) throw usageError('--model NAME is required')
  const version = values.version === undefined ? undefined : versionFolder(values.version)
  if (values.version !== undefined && version === undefined)
    throw usageError(`invalid --version '${values.version}': a positive integer, no leading zeros`)
  const timeoutSeconds = Number(values.timeout ?? DEFAULT_TIMEOUT_SECONDS)
  if (!(timeoutSeconds > 0)) throw usageError(`invalid --timeout '${values.timeout}': seconds > 0`)
  if (!values.wait && (values.url !== undefined || values.timeout !== undefined))
    throw usageError('--url and --timeout go with --wait')
  const client = values.wait ? clientFor(values.url, env) : undefined
  // Ask the server before writing anything: an unreachable server ships nothing.
  if (client) await readModel(client, values.model)

  const shipped = await shipVersion({
    file: positionals[0]!,
    modelsDir: values.models,
    model: values.model,
    version,
    create: values.create === true,
    smoke: values.smoke,
  })
  process.stdout.write(
    `shipped ${positionals[0]} as ${shipped.model} ${shipped.version} (${shipped.dir}, sha256 ${shipped.sha256})${shipped.createdModel ? ', a new model' : ''}\n`,
  )
  if (!client) return EXIT.ok
  const verdict = await waitForVerdict({
    client,
    model: shipped.model,
    version: shipped.version,
    sha256: shipped.sha256,
    modelsDir: values.models,
    timeoutMs: timeoutSeconds * 1000,
    progress: (line) => process.stderr.write(`${line}\n`),
  })
  process.stdout.write(`${verdict.line}\n`)
  return verdict.exitCode
}

const OPTIONS = {
  models: { type: 'string' },
  model: { type: 'string' },
  version: { type: 'string' },
  create: { type: 'boolean' },
  smoke: { type: 'string' },
  wait: { type: 'boolean' },
  url: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const
