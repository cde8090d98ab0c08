import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { estimatorDumpSchema, type EstimatorDump } from './estimator-dump.js'

/**
 * Runs dump_estimator.py (shipped beside this file) in a Python child process: the pickle is
 * unpickled there, never in this process, and never in a server.
 */

export const DEFAULT_PYTHON = '/usr/bin/python3'
export const DEBIAN_PACKAGES = 'apt-get install python3-sklearn python3-joblib'

const SCRIPT = fileURLToPath(new URL('./dump_estimator.py', import.meta.url))
/** The end of a crashed script's stderr: its traceback's last lines. */
const STDERR_KEPT = 4000

/** Why there is no dump: the estimator (`refused`) or the Python (`python`). */
export class DumpError extends Error {
  constructor(
    readonly kind: 'refused' | 'python',
    message: string,
  ) {
    super(message)
  }
}

export async function dumpEstimator(o: {
  readonly python: string
  readonly model: string
  readonly rows: string | undefined
  readonly env: Readonly<Record<string, string | undefined>>
}): Promise<EstimatorDump> {
  const dir = await mkdtemp(join(tmpdir(), 'modelgate-sklearn-'))
  try {
    const out = join(dir, 'dump.json')
    await runPython(o.python, [SCRIPT, o.model, out, ...(o.rows ? [o.rows] : [])], o.env)
    return parseResult(JSON.parse(await readFile(out, 'utf8')), o.python)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function runPython(
  python: string,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_KEPT)
    })
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new DumpError('python', `cannot run ${python} (${e.code ?? e.message}). ${needs(python)}`),
      ),
    )
    child.once('close', (code, signal) => {
      if (code === 0) resolve()
      else
        reject(
          new DumpError(
            'python',
            `${python} ${SCRIPT} failed (${signal ?? `exit ${code}`}):\n${stderr.trimEnd()}`,
          ),
        )
    })
  })
}

function parseResult(result: unknown, python: string): EstimatorDump {
  if (isObject(result) && typeof result.missing === 'string')
    throw new DumpError('python', `${python} has no module '${result.missing}'. ${needs(python)}`)
  if (isObject(result) && typeof result.refused === 'string')
    throw new DumpError('refused', result.refused)
  const parsed = estimatorDumpSchema.safeParse(result)
  if (!parsed.success)
    throw new DumpError(
      'python',
      `${SCRIPT} wrote a dump this modelgate does not read: ${parsed.error.issues[0]?.message}`,
    )
  return parsed.data
}

function needs(python: string): string {
  const other = python === DEFAULT_PYTHON ? '' : ` (MODELGATE_PYTHON is ${python})`
  return `modelgate import sklearn needs Python 3 with scikit-learn and joblib${other}: on Debian or Ubuntu, ${DEBIAN_PACKAGES}; elsewhere, set MODELGATE_PYTHON to a python3 that has them`
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null
}
