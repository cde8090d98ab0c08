import { stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { SMOKE_FILE } from '../repository/layout.js'
import type { TypedTensorJson } from '../runtime/tensor-encode.js'
import type { EstimatorDump } from '../sklearn/estimator-dump.js'
import {
  checkExport,
  PREDICTION_TOLERANCE,
  PROBABILITY_TOLERANCE,
  type ExportCheck,
} from '../sklearn/export-check.js'
import {
  DEBIAN_PACKAGES,
  DEFAULT_PYTHON,
  DumpError,
  dumpEstimator,
} from '../sklearn/python-dump.js'
import { INPUT, outputSpecs, sklearnModel } from '../sklearn/sklearn-model.js'
import { asksForHelp, parseCommandArgs } from './command-args.js'
import { EXIT, refused, usageError } from './exit.js'
import { recordSmoke, type RecordedCase } from './smoke-cases.js'
import { writeAtomically, writeSmokeFile } from './smoke-write.js'

export const IMPORT_USAGE = `Usage: modelgate import sklearn MODEL.pkl --out FILE.onnx [options]

Converts a pickled scikit-learn estimator (joblib.dump or pickle.dump) to an ONNX model modelgate
serves, then runs both on check rows (yours, and rows on either side of the trees' split points)
and writes the model only if they agree: labels equal, probabilities within ${PROBABILITY_TOLERANCE},
predictions within ${PREDICTION_TOLERANCE} × max(1, |prediction|).

Loading a pickle runs code the file names: import only pickles you trust. The pickle is loaded in
a Python child process, by this command only; the server never reads one.

Supported: RandomForest, ExtraTrees and DecisionTree (classifier and regressor), GradientBoosting
(classifier: binary and multiclass, log_loss; regressor), LogisticRegression (binary and
multiclass), LinearRegression, Ridge; and a Pipeline of a StandardScaler and one of them.
Anything else is refused, naming the estimator.

The model takes 'features' float32 [batch, n_features], the columns in the order the estimator
was fit on. A classifier answers 'label' [batch] (int64, or string for string classes) and
'probabilities' float32 [batch, n_classes] (in the order of classes_); a regressor 'prediction'
float32 [batch].

Python: ${DEFAULT_PYTHON} with scikit-learn and joblib (Debian or Ubuntu: ${DEBIAN_PACKAGES}).
MODELGATE_PYTHON names another interpreter: best the one the model was trained with, as a pickle
is read by the scikit-learn version that wrote it.

Options:
  --out FILE          the ONNX model to write
  --smoke-from CSV    sample rows, one per line (n_features numbers; a header line is optional
                      and, for a model fit on a DataFrame, must name its columns in order): also
                      write a smoke.json of scikit-learn's answers on them, which the version's
                      gate checks (labels equal, floats within atol and rtol 1e-6)
  --smoke-out FILE    where that smoke.json goes (default: smoke.json beside --out)
  --force             replace files that exist
  -h, --help

Exit status: 0 written; 1 refused (an estimator modelgate does not export, a pickle that does not
load, no Python with scikit-learn, the export and scikit-learn disagree on a check row, a file
exists); 2 usage error.
`

/** A smoke.json for this very model: as tight as the check, a little room for another thread count. */
const SMOKE_TOLERANCE = { atol: 1e-6, rtol: 1e-6 }

export async function importCommand(
  args: string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const [kind, ...rest] = args
  if (asksForHelp(kind)) {
    process.stdout.write(IMPORT_USAGE)
    return EXIT.ok
  }
  if (kind !== 'sklearn') throw usageError(`unknown import '${kind}': modelgate imports 'sklearn'`)
  const { values, positionals } = parseCommandArgs(rest, OPTIONS)
  if (values.help) {
    process.stdout.write(IMPORT_USAGE)
    return EXIT.ok
  }
  if (positionals.length !== 1) throw usageError('import sklearn takes one pickle file')
  if (!values.out) throw usageError('--out FILE is required: the ONNX model to write')
  if (values['smoke-out'] && !values['smoke-from'])
    throw usageError('--smoke-out goes with --smoke-from')
  const pickle = positionals[0]!
  const out = resolve(values.out)
  const smokeOut =
    values['smoke-from'] && resolve(values['smoke-out'] ?? join(dirname(out), SMOKE_FILE))
  for (const file of [pickle, values['smoke-from']])
    if (file && !(await stat(file).catch(() => undefined))?.isFile())
      throw usageError(`${file} is not a file`)
  for (const file of [out, smokeOut])
    if (file && !values.force && (await stat(file).catch(() => undefined)))
      throw refused(`${file} exists; --force replaces it`)

  const python = env.MODELGATE_PYTHON || DEFAULT_PYTHON
  let dump: EstimatorDump
  try {
    dump = await dumpEstimator({ python, model: pickle, rows: values['smoke-from'], env })
  } catch (e) {
    if (e instanceof DumpError) throw refused(e.message)
    throw e
  }
  for (const warning of dump.warnings) process.stderr.write(`modelgate: scikit-learn: ${warning}\n`)
  const bytes = sklearnModel(dump)
  const check = await checkExport(bytes, dump)
  if (check.disagreements.length > 0) throw refused(disagreement(dump, check))

  // smoke.json first: a model written into a watched version folder finds its cases there.
  if (smokeOut) await writeSmokeFile(smokeOut, smokeCases(dump, basename(values['smoke-from']!)))
  await writeAtomically(out, bytes)
  process.stdout.write(`${report(dump, check, out, smokeOut)}\n`)
  return EXIT.ok
}

function report(
  dump: EstimatorDump,
  check: ExportCheck,
  out: string,
  smokeOut: string | undefined,
): string {
  const samples = dump.rows.sampleLines.length
  const probes = check.rows - samples
  const signature = outputSpecs(dump)
    .map((o) => `${o.name} ${o.type} [${o.shape?.join(', ')}]`)
    .join(', ')
  const agreed =
    dump.task === 'classifier'
      ? `labels equal, probabilities within ${check.maxDifference.toExponential(1)}`
      : `predictions within ${check.maxDifference.toExponential(1)} × max(1, |prediction|)`
  const probed = dump.rows.probes === 'splitEdges' ? 'at split edges' : 'scattered'
  return [
    `imported ${dump.estimator} (scikit-learn ${dump.sklearn}, Python ${dump.python}) into ${out}`,
    `  ${INPUT} float32 [batch, ${dump.nFeatures}] -> ${signature}`,
    `  checked against scikit-learn on ${check.rows} rows (${samples} sample(s), ${probes} ${probed}): ${agreed}`,
    ...(smokeOut ? [`  wrote ${samples} smoke case(s) into ${smokeOut}`] : []),
  ].join('\n')
}

function disagreement(dump: EstimatorDump, check: ExportCheck): string {
  const shown = check.disagreements.slice(0, 3).map((d) => {
    const line = dump.rows.sampleLines[d.row]
    const where = line === undefined ? `probe row ${d.row}` : `line ${line}`
    return `  ${where} ${JSON.stringify(dump.rows.values[d.row])}: ${d.output} ${JSON.stringify(d.onnx)}, scikit-learn ${JSON.stringify(d.sklearn)}`
  })
  return [
    `the export of ${dump.estimator} disagrees with scikit-learn ${dump.sklearn} on ${check.disagreements.length} check(s) of ${check.rows} rows; nothing was written:`,
    ...shown,
  ].join('\n')
}

/** A case per sample row, with scikit-learn's own answers: the first gate checks them. */
function smokeCases(dump: EstimatorDump, source: string) {
  const cases: RecordedCase[] = dump.rows.sampleLines.map((line, row) => ({
    name: `${source} line ${line}`,
    inputs: { [INPUT]: [dump.rows.values[row]!] },
    outputs: answersOf(dump, row),
  }))
  // No label checks: each case's `expect` compares the label exactly already, and a label check
  // would bring a minAccuracy, which a version's smoke.json sets for every label check of its gate
  // (the model's own true-label cases too): the model's smoke.json keeps that say.
  return recordSmoke(cases, {
    label: 'none',
    configuredLabel: undefined,
    expectAll: true,
    tolerance: SMOKE_TOLERANCE,
    minAccuracy: undefined,
  }).file
}

function answersOf(dump: EstimatorDump, row: number): Record<string, TypedTensorJson> {
  const a = dump.answers
  if ('prediction' in a)
    return { prediction: { type: 'float32', shape: [1], data: [a.prediction[row]!] } }
  const probabilities = a.probabilities[row]!
  const label = a.label[row]!
  return {
    label: { type: typeof label === 'string' ? 'string' : 'int64', shape: [1], data: [label] },
    probabilities: { type: 'float32', shape: [1, probabilities.length], data: probabilities },
  }
}

const OPTIONS = {
  out: { type: 'string' },
  'smoke-from': { type: 'string' },
  'smoke-out': { type: 'string' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const
