// Multinomial logistic regression by full-batch gradient descent, and its ONNX graph:
// probabilities = Softmax(features · W + b), label = ArgMax(probabilities). Small on purpose: the
// example is about the loop around the trainer, not the trainer.
//
// The ONNX file is written with modelgate's own writer, from the build (`npm run build`, which
// `npm start` runs): the same one scripts/train-iris.mjs uses, so the example carries no protobuf
// code of its own.
import { buildModel } from '../../dist/onnx/builder.js'

const EPOCHS = 400
const RATE = 0.5

/**
 * Fits `rows` (arrays of F numbers) to `labels` (class indices below `classes`). The features are
 * standardized while training, so one learning rate suits any scale, and the scaling is folded
 * back into the weights: the model takes the raw readings.
 */
export function train(rows, labels, classes) {
  const features = rows[0].length
  const { mean, std } = moments(rows, features)
  const z = rows.map((r) => r.map((v, j) => (v - mean[j]) / std[j]))
  const w = Array.from({ length: features }, () => new Float64Array(classes))
  const b = new Float64Array(classes)
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const gw = Array.from({ length: features }, () => new Float64Array(classes))
    const gb = new Float64Array(classes)
    z.forEach((x, i) => {
      const p = softmax(scores(x, w, b))
      p[labels[i]] -= 1
      for (let k = 0; k < classes; k++) {
        gb[k] += p[k]
        for (let j = 0; j < features; j++) gw[j][k] += p[k] * x[j]
      }
    })
    for (let k = 0; k < classes; k++) {
      b[k] -= (RATE * gb[k]) / z.length
      for (let j = 0; j < features; j++) w[j][k] -= (RATE * gw[j][k]) / z.length
    }
  }
  // (x - mean) / std · w + b  =  x · (w / std) + (b - Σ mean / std · w)
  const weights = w.map((col, j) => col.map((v) => v / std[j]))
  const bias = b.map((v, k) => v - weights.reduce((s, col, j) => s + mean[j] * col[k], 0))
  return { features, classes, weights, bias }
}

/** The class the model gives each row. */
export function predict(model, rows) {
  return rows.map((x) => argmax(scores(x, model.weights, model.bias)))
}

/** The share of rows whose predicted class is the label. */
export function accuracy(model, rows, labels) {
  const predicted = predict(model, rows)
  return predicted.filter((p, i) => p === labels[i]).length / rows.length
}

/**
 * The model as ONNX: input `input` float32 [batch, F], outputs `label` int64 [batch] and
 * `probabilities` float32 [batch, K], the signature the served versions must keep.
 */
export function toOnnx(model, input) {
  const { features, classes } = model
  return buildModel({
    inputs: [{ name: input, type: 'float32', shape: ['batch', features] }],
    outputs: [
      { name: 'label', type: 'int64', shape: ['batch'] },
      { name: 'probabilities', type: 'float32', shape: ['batch', classes] },
    ],
    initializers: [
      {
        name: 'W',
        type: 'float32',
        dims: [features, classes],
        data: Float32Array.from(model.weights.flatMap((col) => [...col])),
      },
      { name: 'B', type: 'float32', dims: [classes], data: Float32Array.from(model.bias) },
    ],
    nodes: [
      { op: 'MatMul', inputs: [input, 'W'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'B'], outputs: ['logits'] },
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
    ],
    producer: 'modelgate-example-retrain-on-drift',
  })
}

function moments(rows, features) {
  const mean = Array.from(
    { length: features },
    (_, j) => rows.reduce((s, r) => s + r[j], 0) / rows.length,
  )
  const std = mean.map((m, j) => {
    const variance = rows.reduce((s, r) => s + (r[j] - m) ** 2, 0) / rows.length
    // A constant column carries nothing: scale 1 keeps it from dividing by zero.
    return Math.sqrt(variance) || 1
  })
  return { mean, std }
}

function scores(x, w, b) {
  return Array.from(b, (bk, k) => x.reduce((s, v, j) => s + v * w[j][k], bk))
}

function softmax(s) {
  const top = Math.max(...s)
  const e = s.map((v) => Math.exp(v - top))
  const sum = e.reduce((a, v) => a + v, 0)
  return e.map((v) => v / sum)
}

function argmax(s) {
  return s.reduce((best, v, k) => (v > s[best] ? k : best), 0)
}
