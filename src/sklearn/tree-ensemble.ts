import type { NodeSpec } from '../onnx/builder.js'
import type { TreeDump } from './estimator-dump.js'

/** The ONNX domain of the tree operators. */
export const ML_DOMAIN = 'ai.onnx.ml'

const BRANCH_LEQ = 0
const AGGREGATE_SUM = 1
const POST_TRANSFORM_NONE = 0

/**
 * scikit-learn trees as one ai.onnx.ml TreeEnsemble (opset 5) node: input float64 [batch,
 * features], output float64 [batch, nScores], each score the sum of its trees' leaves in tree
 * order. Why this operator, and float64 throughout:
 * - sklearn sends a row left when `float64(float32(x)) <= threshold` (float64). The input here is
 *   that very float64 (the graph casts the float32 features up, exactly), and the thresholds are
 *   sklearn's own float64 values: the same comparison, no threshold rounding.
 * - The leaves are summed in float64, as sklearn sums them: the label is the argmax of these sums,
 *   and float32 sums would make ties of classes that differ in the 8th digit.
 * - An opset-5 leaf adds to one target only; a classifier's leaf holds one weight per class. So a
 *   tree with several targets is written once per target, its leaves carrying that target's
 *   weights (size and run time grow with the number of classes).
 */
export function treeEnsembleNode(
  trees: readonly TreeDump[],
  nScores: number,
  input: string,
  output: string,
): NodeSpec {
  const a = {
    roots: [] as number[],
    features: [] as number[],
    splits: [] as number[],
    trueIds: [] as number[],
    trueLeafs: [] as number[],
    falseIds: [] as number[],
    falseLeafs: [] as number[],
    leafTargets: [] as number[],
    leafWeights: [] as number[],
  }
  for (const tree of trees) {
    checkTree(tree, nScores)
    tree.targets.forEach((target, column) => writeTree(a, tree, target, column))
  }
  return {
    op: 'TreeEnsemble',
    domain: ML_DOMAIN,
    inputs: [input],
    outputs: [output],
    attributes: {
      n_targets: { i: nScores },
      aggregate_function: { i: AGGREGATE_SUM },
      post_transform: { i: POST_TRANSFORM_NONE },
      tree_roots: { ints: a.roots },
      nodes_featureids: { ints: a.features },
      nodes_splits: tensor(a.splits),
      nodes_modes: {
        t: {
          type: 'uint8',
          dims: [a.splits.length],
          data: new Uint8Array(a.splits.length).fill(BRANCH_LEQ),
        },
      },
      nodes_truenodeids: { ints: a.trueIds },
      nodes_trueleafs: { ints: a.trueLeafs },
      nodes_falsenodeids: { ints: a.falseIds },
      nodes_falseleafs: { ints: a.falseLeafs },
      leaf_targetids: { ints: a.leafTargets },
      leaf_weights: tensor(a.leafWeights),
    },
  }
}

type Arrays = {
  [K in
    | 'roots'
    | 'features'
    | 'splits'
    | 'trueIds'
    | 'trueLeafs'
    | 'falseIds'
    | 'falseLeafs'
    | 'leafTargets'
    | 'leafWeights']: number[]
}

/** One copy of `tree` whose leaves add their `column`-th value to `target`. */
function writeTree(a: Arrays, tree: TreeDump, target: number, column: number): void {
  const isLeaf = (i: number) => tree.left[i] === -1
  // ONNX ids of this copy's nodes and leaves: interior nodes and leaves are numbered apart.
  const ids = new Map<number, number>()
  let nextNode = a.splits.length
  let nextLeaf = a.leafWeights.length
  for (let i = 0; i < tree.left.length; i++) ids.set(i, isLeaf(i) ? nextLeaf++ : nextNode++)
  const id = (i: number) => ids.get(i)!
  const addLeaf = (i: number) => {
    a.leafTargets.push(target)
    a.leafWeights.push(tree.values[i]![column]!)
  }
  if (isLeaf(0)) {
    // A tree that is one leaf: one node whose both branches reach it (the ONNX spec's way).
    a.roots.push(a.splits.length)
    pushNode(a, 0, 0, [id(0), 1], [id(0), 1])
    addLeaf(0)
    return
  }
  a.roots.push(id(0))
  for (let i = 0; i < tree.left.length; i++) {
    if (isLeaf(i)) {
      addLeaf(i)
      continue
    }
    const left = tree.left[i]!
    const right = tree.right[i]!
    pushNode(
      a,
      tree.feature[i]!,
      tree.threshold[i]!,
      [id(left), isLeaf(left) ? 1 : 0],
      [id(right), isLeaf(right) ? 1 : 0],
    )
  }
}

function pushNode(
  a: Arrays,
  feature: number,
  split: number,
  [trueId, trueLeaf]: [number, number],
  [falseId, falseLeaf]: [number, number],
): void {
  a.features.push(feature)
  a.splits.push(split)
  a.trueIds.push(trueId)
  a.trueLeafs.push(trueLeaf)
  a.falseIds.push(falseId)
  a.falseLeafs.push(falseLeaf)
}

function tensor(values: readonly number[]) {
  return { t: { type: 'float64' as const, dims: [values.length], data: Float64Array.from(values) } }
}

/** A dump that does not hold together is a bug of the exporter, never a model to write. */
function checkTree(tree: TreeDump, nScores: number): void {
  const n = tree.left.length
  const lengths = [tree.right, tree.feature, tree.threshold, tree.values].map((x) => x.length)
  const inRange = (i: number) => i === -1 || (i > 0 && i < n)
  const ok =
    n > 0 &&
    lengths.every((l) => l === n) &&
    tree.targets.every((t) => t < nScores) &&
    tree.values.every((v) => v.length === tree.targets.length) &&
    tree.left.every(
      (l, i) => inRange(l) && inRange(tree.right[i]!) && (l === -1) === (tree.right[i] === -1),
    )
  if (!ok) throw new Error('dump_estimator.py wrote a tree that does not hold together')
}
