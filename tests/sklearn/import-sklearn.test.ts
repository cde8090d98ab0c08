import { execFile, spawnSync } from 'node:child_process'
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { modelDetail, postJson, versionView } from '../support/api-client.js'
import { CLI } from '../support/cli-server.js'
import { serve } from '../support/servers.js'
import { makeTempDir } from '../support/test-server.js'

/**
 * `modelgate import sklearn` end to end: train_estimators.py fits every kind the importer exports
 * with Debian's python3-sklearn and pickles it; the built CLI imports it; onnxruntime-node runs the
 * ONNX on every training row and on rows around split thresholds; the answers must be
 * scikit-learn's (computed by the training script, not by the importer): labels equal,
 * probabilities within 1e-6, predictions within 1e-6 × max(1, |prediction|).
 */

const PYTHON = '/usr/bin/python3'
const TRAIN = join(import.meta.dirname, 'train_estimators.py')
const PROBABILITY_TOLERANCE = 1e-6
const PREDICTION_TOLERANCE = 1e-6
const SAMPLES = 12

/** Every kind train_estimators.py fits (its KINDS), each imported and compared here. */
const KINDS = [
  'random-forest-classifier',
  'random-forest-classifier-multiclass',
  'extra-trees-classifier',
  'decision-tree-classifier',
  'gradient-boosting-classifier-binary',
  'gradient-boosting-classifier-multiclass',
  'random-forest-regressor',
  'extra-trees-regressor',
  'decision-tree-regressor',
  'gradient-boosting-regressor',
  'logistic-regression-binary',
  'logistic-regression-binary-multinomial',
  'logistic-regression-multiclass',
  'logistic-regression-ovr-string-classes',
  'linear-regression',
  'ridge',
  'scaler-gradient-boosting-classifier',
  'scaler-random-forest-classifier',
  'scaler-extra-trees-regressor',
]

interface Expected {
  rows: number[][]
  edgeRows: number
  answers: { label: (number | string)[]; probabilities: number[][] } | { prediction: number[] }
}

function importSklearn(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'import', 'sklearn', ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({
          status: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          stdout,
          stderr,
        }),
    )
  })
}

let dir: string
let trained: Record<string, { rows: number; edgeRows: number }>

beforeAll(() => {
  return makeTempDir('modelgate-sklearn-').then((d) => {
    dir = d
    const r = spawnSync(PYTHON, [TRAIN, dir], { encoding: 'utf8' })
    if (r.status !== 0)
      throw new Error(
        `${TRAIN} failed (${PYTHON} needs python3-sklearn and python3-joblib):\n${r.stderr}`,
      )
    trained = JSON.parse(r.stdout).kinds
  })
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

const pickle = (kind: string) => join(dir, `${kind}.pkl`)

const imports = new Map<string, ReturnType<typeof importWithSamples>>()

/** `kind` imported with its sample rows (once): the model and its smoke.json in `<dir>/<kind>/`. */
function imported(kind: string): ReturnType<typeof importWithSamples> {
  if (!imports.has(kind)) imports.set(kind, importWithSamples(kind))
  return imports.get(kind)!
}

async function importWithSamples(kind: string) {
  const out = join(dir, kind, 'model.onnx')
  await mkdir(join(dir, kind), { recursive: true })
  const r = await importSklearn([
    pickle(kind),
    '--out',
    out,
    '--smoke-from',
    join(dir, `${kind}.samples.csv`),
  ])
  return { ...r, out, smoke: join(dir, kind, 'smoke.json') }
}

async function runOnnx(file: string, rows: number[][]) {
  const session = await InferenceSession.create(file)
  try {
    const features = new Tensor('float32', Float32Array.from(rows.flat()), [
      rows.length,
      rows[0]!.length,
    ])
    return await session.run({ features })
  } finally {
    await session.release()
  }
}

describe('modelgate import sklearn', () => {
  it('trains every kind this file imports', () => {
    expect(Object.keys(trained).sort()).toEqual([...KINDS].sort())
  })

  describe.concurrent('answers as scikit-learn does', () => {
    for (const kind of KINDS) {
      it(`${kind}: on the training rows and the split-edge rows`, async () => {
        const r = await imported(kind)
        expect(r.stderr).toBe('')
        expect(r.status).toBe(0)
        expect(r.stdout).toMatch(/^imported .* into .*model\.onnx$/m)
        expect(r.stdout).toMatch(/checked against scikit-learn on \d+ rows \(12 sample\(s\)/)
        const expected: Expected = JSON.parse(await readFile(join(dir, `${kind}.json`), 'utf8'))
        if (!/logistic|linear|ridge/.test(kind)) expect(expected.edgeRows).toBeGreaterThan(100)
        const outputs = await runOnnx(r.out, expected.rows)
        const n = expected.rows.length
        if ('prediction' in expected.answers) {
          expect(outputs.prediction!.dims).toEqual([n])
          const got = Array.from(outputs.prediction!.data as Float32Array)
          const worst = Math.max(
            ...expected.answers.prediction.map(
              (want, i) => Math.abs(got[i]! - want) / Math.max(1, Math.abs(want)),
            ),
          )
          expect(worst).toBeLessThanOrEqual(PREDICTION_TOLERANCE)
        } else {
          const { label, probabilities } = expected.answers
          const width = probabilities[0]!.length
          expect(outputs.label!.dims).toEqual([n])
          expect(outputs.probabilities!.dims).toEqual([n, width])
          const labels = Array.from(outputs.label!.data as ArrayLike<bigint | string>, (v) =>
            typeof v === 'bigint' ? Number(v) : v,
          )
          expect(labels).toEqual(label)
          const got = outputs.probabilities!.data as Float32Array
          const worst = Math.max(
            ...probabilities.flatMap((row, i) =>
              row.map((p, k) => Math.abs(got[i * width + k]! - p)),
            ),
          )
          expect(worst).toBeLessThanOrEqual(PROBABILITY_TOLERANCE)
        }
        const smoke = JSON.parse(await readFile(r.smoke, 'utf8'))
        expect(smoke.cases).toHaveLength(SAMPLES)
        expect(smoke.cases[0].name).toBe(`${kind}.samples.csv line 2`)
      })
    }
  })

  it('writes a smoke.json the gate of a real server passes, string labels too', async () => {
    const kinds = ['random-forest-classifier', 'logistic-regression-ovr-string-classes', 'ridge']
    const models = await Promise.all(kinds.map(imported))
    for (const m of models) expect(m.stderr).toBe('')
    const t = await serve(async (modelsDir) => {
      for (const [i, m] of models.entries()) {
        const version = join(modelsDir, kinds[i]!, '1')
        await mkdir(version, { recursive: true })
        await copyFile(m.out, join(version, 'model.onnx'))
        await copyFile(m.smoke, join(version, 'smoke.json'))
      }
    })
    for (const kind of kinds) {
      const detail = await modelDetail(t.url, kind)
      expect(detail.active, JSON.stringify(detail.versions)).toBe(1)
      const smoke = versionView(detail, 1).gate.stages.find((s: any) => s.stage === 'smoke')
      expect(smoke).toMatchObject({ status: 'passed' })
      expect(smoke.message).toMatch(new RegExp(`^${SAMPLES} case\\(s\\) passed`))
    }
    const answer = await postJson(
      `${t.url}/models/logistic-regression-ovr-string-classes/predict`,
      {
        inputs: [[5.1, 3.5, 1.4, 0.2]],
      },
    )
    expect(answer.body.outputs.label).toEqual(['setosa'])
  })

  it("leaves minAccuracy to the model's smoke.json: its cases compare labels exactly instead", async () => {
    const m = await imported('random-forest-classifier')
    const smoke = JSON.parse(await readFile(m.smoke, 'utf8'))
    // A version's own minAccuracy wins over the model's for every label check of its gate, the
    // model's true-label cases included: the recorded answers must not set one.
    expect(smoke.minAccuracy).toBeUndefined()
    expect(smoke.cases.every((c: any) => c.label === undefined)).toBe(true)
    expect(smoke.cases.every((c: any) => c.expect.label !== undefined)).toBe(true)
  })

  it('refuses an estimator it does not export, naming it and what it exports', async () => {
    const refusals = [
      ['refused-svc', /^modelgate: SVC is not exported\. Supported: .*RandomForestClassifier/],
      ['refused-kneighbors', /^modelgate: KNeighborsClassifier is not exported/],
      ['refused-exponential-loss', /loss='exponential': only loss='log_loss' is exported/],
    ] as const
    await Promise.all(
      refusals.map(async ([kind, reason]) => {
        const out = join(dir, `${kind}.onnx`)
        const r = await importSklearn([pickle(kind), '--out', out])
        expect(r.status, r.stderr).toBe(1)
        expect(r.stderr).toMatch(reason)
        await expect(stat(out)).rejects.toThrow(/ENOENT/)
      }),
    )
  })

  it('names python3-sklearn when there is no Python, or no scikit-learn in it', async () => {
    const out = join(dir, 'no-python.onnx')
    const missing = await importSklearn([pickle('ridge'), '--out', out], {
      MODELGATE_PYTHON: '/nonexistent/python3',
    })
    expect(missing.status).toBe(1)
    expect(missing.stderr).toMatch(/cannot run \/nonexistent\/python3 \(ENOENT\)/)
    expect(missing.stderr).toMatch(/apt-get install python3-sklearn python3-joblib/)
    // Python without its site packages: no numpy, no scikit-learn, no joblib.
    const bare = join(dir, 'bare-python3')
    await writeFile(bare, `#!/bin/sh\nexec ${PYTHON} -S "$@"\n`)
    await chmod(bare, 0o755)
    const without = await importSklearn([pickle('ridge'), '--out', out], {
      MODELGATE_PYTHON: bare,
    })
    expect(without.status).toBe(1)
    expect(without.stderr).toMatch(/has no module '(joblib|numpy|sklearn)'.*python3-sklearn/)
    await expect(stat(out)).rejects.toThrow(/ENOENT/)
  })

  it('refuses sample rows whose header names the columns in another order than the fit', async () => {
    const csv = join(dir, 'named-columns.swapped.csv')
    await writeFile(csv, 'petal_length,sepal_length,sepal_width,petal_width\n1.4,5.1,3.5,0.2\n')
    const out = join(dir, 'named-columns.onnx')
    const r = await importSklearn([pickle('named-columns'), '--out', out, '--smoke-from', csv])
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(
      /the header names the columns \['petal_length', 'sepal_length', .*\]; the model was fit on \['sepal_length', 'sepal_width', .*\], in that order/,
    )
    await expect(stat(out)).rejects.toThrow(/ENOENT/)
  })

  it('says how it is used, and keeps a file that exists unless --force', async () => {
    const help = await importSklearn(['--help'])
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/runs code/)
    expect(help.stdout).toMatch(/MODELGATE_PYTHON/)
    const noOut = await importSklearn([pickle('ridge')])
    expect(noOut.status).toBe(2)
    expect(noOut.stderr).toMatch(/--out FILE is required/)
    const out = join(dir, 'exists.onnx')
    await writeFile(out, 'keep me')
    const kept = await importSklearn([pickle('ridge'), '--out', out])
    expect(kept.status).toBe(1)
    expect(kept.stderr).toMatch(/exists; --force replaces it/)
    expect(await readFile(out, 'utf8')).toBe('keep me')
    const forced = await importSklearn([pickle('ridge'), '--out', out, '--force'])
    expect(forced.status).toBe(0)
  })
})
