import { realpath, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { SMOKE_FILE, versionFolder } from '../repository/layout.js'
import {
  ConfigFileError,
  DEFAULT_MODEL_CONFIG,
  readModelConfig,
} from '../repository/model-config.js'
import { asksForHelp, parseCommandArgs } from './command-args.js'
import { CommandError, EXIT, refused, usageError } from './exit.js'
import { clientFor, DEFAULT_URL } from './client.js'
import { recordSmoke, type RecordedCase } from './smoke-cases.js'
import { readSampleCases } from './smoke-inputs.js'
import { localSource } from './smoke-local-source.js'
import { serverSource } from './smoke-server-source.js'
import type { RecordSource } from './smoke-source.js'
import { writeSmokeFile } from './smoke-write.js'

export const SMOKE_USAGE = `Usage: modelgate smoke record MODEL --inputs FILE [--url URL | --models DIR] [options]

Runs sample inputs through the version serving today and writes a smoke.json of its answers, so
the next version is gated against today's behaviour. A classifier (an output named 'label', or an
int or string output) gets label cases (minAccuracy 1: every label as today); any other model gets
expect cases on every output (floats within atol 1e-5, rtol 1e-3; float16 1e-3, 1e-2; other
types exact).

--inputs FILE holds {"inputs": ...} (one request's inputs, as reference.json), a list of
{"name", "inputs"}, or a smoke.json (its cases' inputs are recorded again).

Options:
  --url URL          record from this server's active version (the default source, at
                     ${DEFAULT_URL} or MODELGATE_URL, unless --models is given alone)
  --models DIR       the models directory: smoke.json goes to <DIR>/<MODEL>/smoke.json, and
                     model.json says the label output; without --url, the version runs here
                     (onnxruntime): the one state.json records as active, else the highest
  --state-dir DIR    where state.json is, with --models (default: <DIR>/.modelgate)
  --version V        record this version instead of the active one
  --out FILE         write here instead of the model's folder
  --force            replace an existing smoke.json
  --label OUTPUT     the output label cases check; 'none': expect cases only
  --expect           expect cases on every output for a classifier too
  --atol N, --rtol N the float tolerance of expect cases
  --min-accuracy N   the share of labels that must stay as today (default 1)
  -h, --help

Exit status: 0 written; 1 refused (no such model or version, a case the model refuses, smoke.json
exists without --force); 2 usage error; 3 server unreachable.
`

export async function smokeCommand(
  args: string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const [sub, ...rest] = args
  if (asksForHelp(sub)) {
    process.stdout.write(SMOKE_USAGE)
    return EXIT.ok
  }
  if (sub !== 'record') throw usageError(`unknown command 'smoke ${sub}'`)
  const { values, positionals } = parseCommandArgs(rest, OPTIONS)
  if (values.help) {
    process.stdout.write(SMOKE_USAGE)
    return EXIT.ok
  }
  if (positionals.length !== 1) throw usageError('smoke record takes one model name')
  const model = positionals[0]!
  if (!values.inputs) throw usageError('--inputs FILE is required: the sample inputs')
  if (!values.models && !values.out)
    throw usageError('say where smoke.json goes: --models DIR (the model folder) or --out FILE')
  const version = values.version === undefined ? undefined : versionFolder(values.version)
  if (values.version !== undefined && version === undefined)
    throw usageError(`invalid --version '${values.version}': a positive integer, no leading zeros`)
  const options = {
    label: values.label,
    expectAll: values.expect === true,
    tolerance: { atol: number(values, 'atol'), rtol: number(values, 'rtol') },
    minAccuracy: number(values, 'min-accuracy'),
  }
  if (options.minAccuracy !== undefined && options.minAccuracy > 1)
    throw usageError('--min-accuracy is a share, at most 1')

  const modelsDir = values.models ? await modelsRoot(values.models) : undefined
  const modelDir = modelsDir && join(modelsDir, model)
  if (modelDir && !(await stat(modelDir).catch(() => undefined))?.isDirectory())
    throw refused(`there is no model '${model}' in ${values.models}`)
  const out = resolve(values.out ?? join(modelDir!, SMOKE_FILE))
  if (!values.force && (await stat(out).catch(() => undefined)))
    throw refused(`${out} exists; --force replaces it (or --out FILE writes elsewhere)`)
  const config = modelDir ? await modelConfig(modelDir) : DEFAULT_MODEL_CONFIG
  const samples = await readSampleCases(values.inputs)

  const source: RecordSource =
    values.url !== undefined || !modelsDir
      ? await serverSource(clientFor(values.url, env), model, version)
      : await localSource({
          modelsDir,
          model,
          modelDir: modelDir!,
          config,
          version,
          stateDir: values['state-dir'],
        })
  const recorded: RecordedCase[] = []
  try {
    for (const sample of samples) {
      try {
        recorded.push({ ...sample, outputs: await source.run(sample.inputs) })
      } catch (e) {
        if (e instanceof CommandError && e.exitCode === EXIT.refused)
          throw refused(`case '${sample.name}': ${e.message}`)
        throw e
      }
    }
  } finally {
    await source.close()
  }
  const { file, labelOutput } = recordSmoke(recorded, {
    ...options,
    configuredLabel: config.feedback.output,
  })
  await writeSmokeFile(out, file)
  const kind = labelOutput === undefined ? 'expect' : `label (${labelOutput})`
  process.stdout.write(
    `recorded ${file.cases.length} ${kind} case(s) from ${model} ${source.version} (${source.origin}) into ${out}\n`,
  )
  return EXIT.ok
}

async function modelsRoot(dir: string): Promise<string> {
  try {
    return await realpath(dir)
  } catch {
    throw usageError(`the models directory ${dir} does not exist`)
  }
}

async function modelConfig(modelDir: string) {
  try {
    return await readModelConfig(undefined, modelDir)
  } catch (e) {
    if (e instanceof ConfigFileError) throw refused(e.message)
    throw e
  }
}

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values']

function number(values: Values, key: 'atol' | 'rtol' | 'min-accuracy'): number | undefined {
  const text = values[key]
  if (text === undefined) return undefined
  const n = Number(text)
  if (text.trim() === '' || !(n >= 0)) throw usageError(`invalid --${key} '${text}': a number >= 0`)
  return n
}

const OPTIONS = {
  inputs: { type: 'string' },
  url: { type: 'string' },
  models: { type: 'string' },
  'state-dir': { type: 'string' },
  version: { type: 'string' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  label: { type: 'string' },
  expect: { type: 'boolean' },
  atol: { type: 'string' },
  rtol: { type: 'string' },
  'min-accuracy': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const
