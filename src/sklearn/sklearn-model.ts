import {
  buildModel,
  type AttributeValue,
  type NodeSpec,
  type TensorSpec,
  type ValueSpec,
} from '../onnx/builder.js'
import { ONNX_DATA_TYPES } from '../onnx/data-types.js'
import type { EstimatorDump, ScoreDump } from './estimator-dump.js'
import { ML_DOMAIN, treeEnsembleNode } from './tree-ensemble.js'

/**
 * The ONNX model of a dumped scikit-learn estimator. One input, `features` float32 [batch,
 * nFeatures], as the bundled iris model takes; a classifier answers `label` (int64, or string when
 * its classes are strings) [batch] and `probabilities` float32 [batch, classes]; a regressor
 * `prediction` float32 [batch], the shape of sklearn's predict.
 *
 * Everything between the input and the outputs is float64, as scikit-learn computes: the scaler,
 * the scores, the link, and the argmax that picks the label. Only the probabilities and the
 * prediction are rounded to float32 at the end. The operations are sklearn's, in its order (sum the
 * trees, then divide; `1 - p`; the decision's sign for a binary linear label).
 */

export const INPUT = 'features'

/** ONNX 1.16 (IR 10, opset 21): the release that brought ai.onnx.ml 5 and its TreeEnsemble. */
const IR_VERSION = 10
const OPSETS = [
  { domain: '', version: 21 },
  { domain: ML_DOMAIN, version: 5 },
]

export function sklearnModel(dump: EstimatorDump): Uint8Array {
  const g = new GraphWriter()
  let x = g.node('Cast', [INPUT], { to: { i: ONNX_DATA_TYPES.float64 } })
  if (dump.scaler?.mean) x = g.node('Sub', [x, g.float64(dump.scaler.mean)])
  if (dump.scaler?.scale) x = g.node('Div', [x, g.float64(dump.scaler.scale)])
  const scores = scoreNodes(g, dump.score, x, dump.scaler !== null)
  const outputs =
    dump.task === 'regressor' ? regressorHead(g, scores) : classifierHead(g, dump, scores)
  return buildModel({
    irVersion: IR_VERSION,
    opsets: OPSETS,
    producer: 'modelgate import sklearn',
    metadata: {
      'sklearn.estimator': dump.estimator,
      'sklearn.version': dump.sklearn,
      ...(dump.featureNames && { 'sklearn.feature_names': JSON.stringify(dump.featureNames) }),
    },
    inputs: [{ name: INPUT, type: 'float32', shape: ['batch', dump.nFeatures] }],
    outputs,
    nodes: g.nodes,
    initializers: g.initializers,
  })
}

/** Output names and the ONNX signature the server will read: for the command's report. */
export function outputSpecs(dump: EstimatorDump): readonly ValueSpec[] {
  if (dump.task === 'regressor') return [{ name: 'prediction', type: 'float32', shape: ['batch'] }]
  const classes = dump.classes ?? []
  return [
    { name: 'label', type: typeof classes[0] === 'string' ? 'string' : 'int64', shape: ['batch'] },
    { name: 'probabilities', type: 'float32', shape: ['batch', classes.length] },
  ]
}

function scoreNodes(g: GraphWriter, score: ScoreDump, x: string, scaled: boolean): string {
  if (score.kind === 'linear') {
    const features = score.coef[0]!.length
    // coef is [scores, features]; MatMul wants its transpose.
    const transposed = Array.from({ length: features }, (_, f) => score.coef.map((row) => row[f]!))
    const product = g.node('MatMul', [
      x,
      g.float64(transposed.flat(), [features, score.coef.length]),
    ])
    return g.node('Add', [product, g.float64(score.intercept)])
  }
  // sklearn's trees cast their input to float32: after a scaler, the float64 it computed too.
  const input = scaled
    ? g.node('Cast', [g.node('Cast', [x], { to: { i: ONNX_DATA_TYPES.float32 } })], {
        to: { i: ONNX_DATA_TYPES.float64 },
      })
    : x
  let s = g.name('scores')
  g.nodes.push(treeEnsembleNode(score.trees, score.nScores, input, s))
  if (score.divideBy !== 1) s = g.node('Div', [s, g.float64([score.divideBy], [])])
  if (score.add) s = g.node('Add', [s, g.float64(score.add)])
  return s
}

function regressorHead(g: GraphWriter, scores: string): ValueSpec[] {
  const flat = g.node('Squeeze', [scores, g.int64([1])])
  g.node('Cast', [flat], { to: { i: ONNX_DATA_TYPES.float32 } }, 'prediction')
  return [{ name: 'prediction', type: 'float32', shape: ['batch'] }]
}

function classifierHead(g: GraphWriter, dump: EstimatorDump, scores: string): ValueSpec[] {
  const probabilities = linkNodes(g, dump.link, scores)
  // A binary linear model's label is `decision > 0`: the argmax of [-d, d] (ties go to class 0).
  const labelFrom =
    dump.labelFrom === 'probabilities'
      ? probabilities
      : dump.link === 'logistic'
        ? g.node('Concat', [g.node('Neg', [scores]), scores], { axis: { i: 1 } })
        : scores
  // ArgMax takes the first of equal values, as numpy's argmax does.
  const index = g.node('ArgMax', [labelFrom], { axis: { i: 1 }, keepdims: { i: 0 } })
  const classes = dump.classes!
  const table = classes.every((c) => typeof c === 'number')
    ? g.constant({
        type: 'int64',
        dims: [classes.length],
        data: BigInt64Array.from(classes, (c) => BigInt(c)),
      })
    : g.constant({ type: 'string', dims: [classes.length], data: classes.map(String) })
  g.node('Gather', [table, index], { axis: { i: 0 } }, 'label')
  g.node('Cast', [probabilities], { to: { i: ONNX_DATA_TYPES.float32 } }, 'probabilities')
  return [...outputSpecs(dump)]
}

/** Class probabilities (float64 [batch, classes]) from the scores, as the estimator computes them. */
function linkNodes(g: GraphWriter, link: EstimatorDump['link'], scores: string): string {
  switch (link) {
    case 'probabilities':
      return scores
    case 'logistic': {
      const p = g.node('Sigmoid', [scores])
      return g.node('Concat', [g.node('Sub', [g.float64([1], []), p]), p], { axis: { i: 1 } })
    }
    case 'softmax':
      return g.node('Softmax', [scores], { axis: { i: 1 } })
    case 'ovr': {
      const e = g.node('Sigmoid', [scores])
      return g.node('Div', [e, g.node('ReduceSum', [e, g.int64([1])], { keepdims: { i: 1 } })])
    }
    case 'identity':
      throw new Error('a classifier whose link is identity')
  }
}

/** Nodes and initializers with names of their own. */
class GraphWriter {
  readonly nodes: NodeSpec[] = []
  readonly initializers: TensorSpec[] = []
  #count = 0

  name(prefix: string): string {
    return `${prefix}_${this.#count++}`
  }

  node(
    op: string,
    inputs: readonly string[],
    attributes?: Readonly<Record<string, AttributeValue>>,
    output = this.name(op.toLowerCase()),
  ): string {
    this.nodes.push({ op, inputs, outputs: [output], ...(attributes && { attributes }) })
    return output
  }

  constant(tensor: Omit<TensorSpec, 'name'>): string {
    const name = this.name('const')
    this.initializers.push({ ...tensor, name })
    return name
  }

  /** A float64 constant; a vector unless `dims` says otherwise ([] for a scalar). */
  float64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant({ type: 'float64', dims, data: Float64Array.from(values) })
  }

  int64(values: readonly number[]): string {
    return this.constant({
      type: 'int64',
      dims: [values.length],
      data: BigInt64Array.from(values, (v) => BigInt(v)),
    })
  }
}
