// Trains the bundled example model `models/iris` (two versions) and writes its smoke tests.
//   npm run build && node scripts/train-iris.mjs
// v1: softmax regression, full-batch gradient descent. v2: MLP 4->16->3 (ReLU), Adam.
// A retrain, the file a training pipeline would hand over for shipping (models/ is left alone):
//   node scripts/train-iris.mjs --retrain 3 --out iris-v3.onnx
// v2's network trained again on the same split from another seeded start: the held-out rows that
// smoke.json checks stay unseen, so the bundled smoke tests still mean something for it.
// Plain Node on purpose: no Python, no ML library, so anyone can rebuild the example repository
// from a fresh checkout. Everything is seeded, so two runs write byte-identical files.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import { buildModel } from '../dist/onnx/builder.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const MODEL_DIR = join(ROOT, 'models', 'iris')
const CLASSES = ['setosa', 'versicolor', 'virginica']
const SEED = 20240607
const MIN_TEST_ACCURACY = 0.9
const TOLERANCE = { atol: 1e-4, rtol: 1e-3 }

// ---- data
// scikit-learn's copy of the data: the header line is "150,4,<class names>", then rows of
// "sepal length,sepal width,petal length,petal width,class index" (cm).
function loadIris() {
  const lines = readFileSync(join(ROOT, 'scripts', 'iris', 'iris.csv'), 'utf8')
    .trim()
    .split('\n')
  const cells = lines.slice(1).map((line) => line.split(',').map(Number))
  const rows = cells.map((c, i) => ({ row: i + 1, x: c.slice(0, 4), y: c[4] }))
  if (
    rows.length !== 150 ||
    rows.some((r) => r.x.some(Number.isNaN) || !(r.y >= 0 && r.y < CLASSES.length))
  ) {
    throw new Error('scripts/iris/iris.csv: expected 150 rows of 4 numbers and a class index 0..2')
  }
  return rows
}

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function shuffle(items, rand) {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

// Stratified, so the 30-row test split holds 10 of each class; a plain shuffle can skew it.
function split(rows, rand) {
  const [train, test] = [[], []]
  for (let c = 0; c < CLASSES.length; c++) {
    const mine = shuffle(
      rows.filter((r) => r.y === c),
      rand,
    )
    const nTest = Math.round(mine.length * 0.2)
    test.push(...mine.slice(0, nTest))
    train.push(...mine.slice(nTest))
  }
  return { train, test }
}

// ---- training (float64; exported as float32)
// Flat row-major weights W[nIn * nOut], so the optimizers see plain Float64Arrays.
function dense(X, W, b) {
  return X.map((x) => {
    const z = Float64Array.from(b)
    for (let i = 0; i < x.length; i++)
      for (let j = 0; j < b.length; j++) z[j] += x[i] * W[i * b.length + j]
    return z
  })
}

function denseGrads(X, dZ, nOut) {
  const [dW, db] = [new Float64Array(X[0].length * nOut), new Float64Array(nOut)]
  X.forEach((x, n) => {
    for (let j = 0; j < nOut; j++) {
      db[j] += dZ[n][j] / X.length
      for (let i = 0; i < x.length; i++) dW[i * nOut + j] += (x[i] * dZ[n][j]) / X.length
    }
  })
  return [dW, db]
}

function softmax(z) {
  const m = Math.max(...z)
  const e = z.map((v) => Math.exp(v - m))
  const s = e.reduce((a, b) => a + b, 0)
  return e.map((v) => v / s)
}

// Gradient of the mean cross-entropy with respect to the logits.
const logitGrads = (Z, y) => Z.map((z, n) => softmax(z).map((p, j) => p - (j === y[n] ? 1 : 0)))

// Statistics from the training split only, so nothing about the test rows leaks into the model.
function standardizer(X) {
  const mean = [0, 1, 2, 3].map((i) => X.reduce((s, x) => s + x[i], 0) / X.length)
  const std = mean.map((m, i) => Math.sqrt(X.reduce((s, x) => s + (x[i] - m) ** 2, 0) / X.length))
  return { mean, std, apply: (x) => x.map((v, i) => (v - mean[i]) / std[i]) }
}

const gaussian = (rand) => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())

function trainSoftmaxRegression(X, y) {
  const [W, b] = [new Float64Array(4 * 3), new Float64Array(3)]
  const l2 = 1e-3 // setosa is linearly separable: without it the weights grow without bound
  for (let step = 0; step < 3000; step++) {
    const [dW, db] = denseGrads(X, logitGrads(dense(X, W, b), y), 3)
    for (let k = 0; k < W.length; k++) W[k] -= 0.5 * (dW[k] + l2 * W[k])
    for (let k = 0; k < b.length; k++) b[k] -= 0.5 * db[k]
  }
  return { layers: [{ W, b }], predict: (Xs) => dense(Xs, W, b).map(softmax) }
}

function trainMlp(X, y, rand) {
  const he = (nIn, nOut) =>
    Float64Array.from({ length: nIn * nOut }, () => gaussian(rand) * Math.sqrt(2 / nIn))
  const params = [he(4, 16), new Float64Array(16), he(16, 3), new Float64Array(3)]
  const [W1, b1, W2, b2] = params
  const forward = (Xs) => {
    const Z1 = dense(Xs, W1, b1)
    const H = Z1.map((z) => z.map((v) => Math.max(0, v)))
    return { Z1, H, Z2: dense(H, W2, b2) }
  }
  const [m, v] = [
    params.map((p) => new Float64Array(p.length)),
    params.map((p) => new Float64Array(p.length)),
  ]
  const [lr, beta1, beta2, eps] = [0.01, 0.9, 0.999, 1e-8]
  // L2 on the weights: without it the net fits every training row, its probabilities saturate at 0/1,
  // it does worse on held-out rows, and exact smoke cases near 0/1 would catch almost no regression.
  const l2 = 1e-2
  for (let t = 1; t <= 1000; t++) {
    const { Z1, H, Z2 } = forward(X)
    const dZ2 = logitGrads(Z2, y)
    const dZ1 = dZ2.map((d, n) =>
      Z1[n].map((z, i) => (z > 0 ? d.reduce((s, dj, j) => s + dj * W2[i * 3 + j], 0) : 0)),
    )
    const [dW1, db1] = denseGrads(X, dZ1, 16)
    const [dW2, db2] = denseGrads(H, dZ2, 3)
    const grads = [dW1.map((g, i) => g + l2 * W1[i]), db1, dW2.map((g, i) => g + l2 * W2[i]), db2]
    params.forEach((p, k) => {
      for (let i = 0; i < p.length; i++) {
        m[k][i] = beta1 * m[k][i] + (1 - beta1) * grads[k][i]
        v[k][i] = beta2 * v[k][i] + (1 - beta2) * grads[k][i] ** 2
        p[i] -= (lr * (m[k][i] / (1 - beta1 ** t))) / (Math.sqrt(v[k][i] / (1 - beta2 ** t)) + eps)
      }
    })
  }
  return {
    layers: [
      { W: W1, b: b1 },
      { W: W2, b: b2 },
    ],
    predict: (Xs) => forward(Xs).Z2.map(softmax),
  }
}

// ---- export and evaluation
// features -> (x - mean) / std -> Gemm [-> Relu -> Gemm] -> logits -> Softmax / ArgMax.
// The standardization lives in the graph, so clients send raw centimetres.
function exportModel(name, { mean, std }, layers) {
  const f32 = (name, dims, data) => ({ name, type: 'float32', dims, data: Float32Array.from(data) })
  const initializers = [f32('mean', [4], mean), f32('std', [4], std)]
  const nodes = [
    { op: 'Sub', inputs: ['features', 'mean'], outputs: ['centered'] },
    { op: 'Div', inputs: ['centered', 'std'], outputs: ['h0'] },
  ]
  layers.forEach(({ W, b }, k) => {
    const out = k === layers.length - 1 ? 'logits' : `z${k + 1}`
    initializers.push(f32(`W${k}`, [W.length / b.length, b.length], W), f32(`b${k}`, [b.length], b))
    nodes.push({ op: 'Gemm', inputs: [`h${k}`, `W${k}`, `b${k}`], outputs: [out] })
    if (out !== 'logits') nodes.push({ op: 'Relu', inputs: [out], outputs: [`h${k + 1}`] })
  })
  nodes.push(
    {
      op: 'Softmax',
      inputs: ['logits'],
      outputs: ['probabilities'],
      attributes: { axis: { i: 1 } },
    },
    {
      op: 'ArgMax',
      inputs: ['logits'],
      outputs: ['label'],
      attributes: { axis: { i: 1 }, keepdims: { i: 0 } },
    },
  )
  return buildModel({
    graphName: name,
    inputs: [{ name: 'features', type: 'float32', shape: ['batch', 4] }],
    outputs: [
      { name: 'label', type: 'int64', shape: ['batch'] },
      { name: 'probabilities', type: 'float32', shape: ['batch', 3] },
    ],
    nodes,
    initializers,
    metadata: {
      description: `Iris classifier: ${name}`,
      classes: CLASSES.join(','),
      source: 'scripts/train-iris.mjs',
    },
  })
}

async function runOnnx(bytes, rows) {
  const session = await InferenceSession.create(bytes)
  const features = new Tensor('float32', Float32Array.from(rows.flatMap((r) => r.x)), [
    rows.length,
    4,
  ])
  const out = await session.run({ features })
  await session.release()
  const probs = rows.map((_, n) => Array.from(out.probabilities.data.slice(n * 3, n * 3 + 3)))
  return { labels: Array.from(out.label.data, Number), probs }
}

const accuracy = (rows, out) => out.labels.filter((l, n) => l === rows[n].y).length / rows.length

// Write-then-rename, so a server watching models/ never sees a half-written file.
function writeAtomic(path, data) {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(`${path}.tmp`, data)
  renameSync(`${path}.tmp`, path)
}

// One case per line, so diffs of regenerated smoke files stay readable.
function smokeJson({ cases, ...head }) {
  const top = Object.entries(head).map(
    ([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},\n`,
  )
  return `{\n${top.join('')}  "cases": [\n${cases.map((c) => `    ${JSON.stringify(c)}`).join(',\n')}\n  ]\n}\n`
}

// ---- main
const { values: args } = parseArgs({
  options: { retrain: { type: 'string' }, out: { type: 'string' } },
})
if (
  (args.retrain === undefined) !== (args.out === undefined) ||
  (args.retrain !== undefined && !/^[1-9][0-9]*$/.test(args.retrain))
) {
  console.error('usage: node scripts/train-iris.mjs [--retrain <version> --out <file.onnx>]')
  process.exit(2)
}

const rand = mulberry32(SEED)
const { train, test } = split(loadIris(), rand)
const scaler = standardizer(train.map((r) => r.x))
const [Xtrain, ytrain] = [train.map((r) => scaler.apply(r.x)), train.map((r) => r.y)]

// Exports, then checks the file as onnxruntime runs it: the JS model must agree with it, and it
// must score MIN_TEST_ACCURACY on the held-out rows, or nothing is written.
async function exportChecked(v) {
  v.bytes = exportModel(v.name, scaler, v.model.layers)
  v.train = await runOnnx(v.bytes, train)
  v.test = await runOnnx(v.bytes, test)
  // Guards the export itself (weight layout, node wiring): onnxruntime must agree with the JS model.
  const jsProbs = v.model.predict(test.map((r) => scaler.apply(r.x)))
  const drift = Math.max(
    ...jsProbs.flatMap((p, n) => p.map((q, j) => Math.abs(q - v.test.probs[n][j]))),
  )
  if (drift > 1e-4) throw new Error(`v${v.version}: ONNX and JS probabilities differ by ${drift}`)
  const [trainAcc, testAcc] = [accuracy(train, v.train), accuracy(test, v.test)]
  console.log(
    `v${v.version} ${v.name} (onnxruntime): train ${trainAcc.toFixed(4)}, test ${testAcc.toFixed(4)}`,
  )
  if (testAcc < MIN_TEST_ACCURACY)
    throw new Error(`v${v.version}: test accuracy ${testAcc} < ${MIN_TEST_ACCURACY}`)
  return v
}

async function writeBundledRepository() {
  const versions = [
    { version: 1, name: 'iris_softmax_regression', model: trainSoftmaxRegression(Xtrain, ytrain) },
    { version: 2, name: 'iris_mlp_4_16_3', model: trainMlp(Xtrain, ytrain, rand) },
  ]

  for (const v of versions) await exportChecked(v)

  // Model-level smoke cases: held-out rows, 4 per class, preferring rows both versions get right.
  const bothRight = (n) => versions.every((v) => v.test.labels[n] === test[n].y)
  let misses = 0
  const labelCases = CLASSES.flatMap((cls, c) => {
    const mine = test.map((r, n) => ({ r, n })).filter(({ r }) => r.y === c)
    const picked = [
      ...mine.filter(({ n }) => bothRight(n)),
      ...mine.filter(({ n }) => !bothRight(n)),
    ].slice(0, 4)
    misses += picked.filter(({ n }) => !bothRight(n)).length
    const label = { output: 'label', value: c }
    picked.sort((a, b) => a.r.row - b.r.row)
    return picked.map(({ r }) => ({
      name: `${cls} (row ${r.row})`,
      inputs: { features: [r.x] },
      label,
    }))
  })
  console.log(`smoke.json: ${labelCases.length} label cases, ${misses} of them missed by v1 or v2`)
  const batch = labelCases.filter((_, i) => i % 4 === 0).map((c) => c.inputs.features[0])
  const rangeCase = {
    name: 'batch of 3',
    inputs: { features: batch },
    range: { probabilities: { min: 0, max: 1 } },
  }
  const modelSmoke = { tolerance: TOLERANCE, minAccuracy: 0.9, cases: [...labelCases, rangeCase] }

  // v2's exact outputs on the two held-out rows it is least sure of: on a confident row the
  // probabilities sit near 0/1, where a badly broken model could still match within atol.
  const leastSure = test
    .map((r, n) => ({ r, p: versions[1].test.probs[n] }))
    .sort((a, b) => Math.max(...a.p) - Math.max(...b.p) || a.r.row - b.r.row)
    .slice(0, 2)
  const v2Smoke = {
    tolerance: TOLERANCE,
    cases: leastSure.map(({ r, p }) => ({
      name: `v2 exact (row ${r.row}, labelled ${CLASSES[r.y]})`,
      inputs: { features: [r.x] },
      expect: { probabilities: [p.map((q) => Number(q.toPrecision(6)))] },
    })),
  }

  // Smoke files first: a watching server then gates each new model file against the final cases.
  writeAtomic(join(MODEL_DIR, 'smoke.json'), smokeJson(modelSmoke))
  writeAtomic(join(MODEL_DIR, '2', 'smoke.json'), smokeJson(v2Smoke))
  for (const v of versions) writeAtomic(join(MODEL_DIR, String(v.version), 'model.onnx'), v.bytes)
  console.log(`wrote ${MODEL_DIR}: smoke.json, 1/model.onnx, 2/model.onnx, 2/smoke.json`)
}

if (args.retrain !== undefined) {
  const version = Number(args.retrain)
  // Its own generator, so the split above is the bundled versions' split, whatever the version.
  const model = trainMlp(Xtrain, ytrain, mulberry32(SEED + version))
  const v = await exportChecked({ version, name: `iris_mlp_4_16_3_retrain_${version}`, model })
  const out = resolve(args.out)
  writeAtomic(out, v.bytes)
  console.log(`wrote ${out}`)
} else {
  await writeBundledRepository()
}
