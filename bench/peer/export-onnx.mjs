// scikit-learn RandomForestClassifier -> ONNX (ai.onnx.ml TreeEnsembleClassifier), from the tree
// arrays train_export.py dumps; no skl2onnx. Written with the project's own ONNX writer.
//
//   node bench/peer/export-onnx.mjs DUMP_DIR MODELS_DIR
//
// writes MODELS_DIR/<model>/1/model.onnx and MODELS_DIR/<model>/smoke.json for every
// DUMP_DIR/<model>.json. What makes the outputs equal sklearn's:
// - Thresholds are the largest float32 <= sklearn's float64 threshold (train_export.py rounds them):
//   sklearn tests `float64(x_f32) <= t`, onnxruntime `x_f32 <= float32(t)`; rounding t to nearest
//   would send rows sitting between t and a rounded-up float32(t) the wrong way.
// - Each leaf votes its class distribution (value / value.sum(), as DecisionTreeClassifier's
//   predict_proba) divided by the number of trees, so the summed scores are predict_proba.
// - Two classes: onnxruntime's binary convention. Each leaf carries one weight, P(class 1), listed
//   under class id 0 (class_ids all 0); onnxruntime then returns [1 - p, p] and label 1 iff p > 0.5
//   (sklearn: argmax, ties to class 0). Measured with onnxruntime-node 1.30: the same weight under
//   class id 1 gives probabilities [0, p] (labels still right); listing both classes' weights makes
//   it a "mixed weights" model whose label is class 1 whenever p > 0.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { buildModel } from '../../dist/onnx/builder.js'

const ML = 'ai.onnx.ml'

/**
 * @param dump the JSON train_export.py writes
 * @param {{thresholds?: 'floor'|'nearest', binary?: 'single'|'single1'|'both'}} o variants kept
 *   for the bench's demonstration of why the defaults are what they are ('single': P(class 1) under
 *   class id 0; 'single1': under class id 1; 'both': both classes' weights)
 */
export function forestModel(dump, { thresholds = 'floor', binary = 'single' } = {}) {
  const C = dump.classes.length
  const T = dump.trees.length
  const n = {
    treeids: [],
    nodeids: [],
    featureids: [],
    values: [],
    modes: [],
    truenodeids: [],
    falsenodeids: [],
  }
  const c = { treeids: [], nodeids: [], ids: [], weights: [] }
  dump.trees.forEach((tree, t) => {
    for (let i = 0; i < tree.children_left.length; i++) {
      const leaf = tree.children_left[i] === -1
      n.treeids.push(t)
      n.nodeids.push(i)
      n.featureids.push(leaf ? 0 : tree.feature[i])
      n.values.push(
        leaf ? 0 : thresholds === 'floor' ? tree.threshold[i] : Math.fround(tree.threshold_f64[i]),
      )
      n.modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ')
      n.truenodeids.push(leaf ? 0 : tree.children_left[i])
      n.falsenodeids.push(leaf ? 0 : tree.children_right[i])
      if (!leaf) continue
      // [class id in the ONNX attributes, sklearn class whose probability is the weight]
      const votes =
        C === 2 && binary !== 'both'
          ? [[binary === 'single' ? 0 : 1, 1]]
          : [...Array(C).keys()].map((k) => [k, k])
      for (const [id, k] of votes) {
        c.treeids.push(t)
        c.nodeids.push(i)
        c.ids.push(id)
        c.weights.push(tree.proba[i][k] / T)
      }
    }
  })
  return buildModel({
    opsets: [
      { domain: '', version: 17 },
      { domain: ML, version: 3 },
    ],
    producer: 'modelgate bench/peer/export-onnx.mjs',
    metadata: {
      source: `sklearn ${dump.sklearn} RandomForestClassifier, ${dump.dataset}`,
      thresholds,
      binary,
    },
    inputs: [{ name: 'input', type: 'float32', shape: ['N', dump.n_features] }],
    outputs: [
      { name: 'label', type: 'int64', shape: ['N'] },
      { name: 'probabilities', type: 'float32', shape: ['N', C] },
    ],
    nodes: [
      {
        op: 'TreeEnsembleClassifier',
        domain: ML,
        inputs: ['input'],
        outputs: ['label', 'probabilities'],
        attributes: {
          nodes_treeids: { ints: n.treeids },
          nodes_nodeids: { ints: n.nodeids },
          nodes_featureids: { ints: n.featureids },
          nodes_values: { floats: n.values },
          nodes_modes: { strings: n.modes },
          nodes_truenodeids: { ints: n.truenodeids },
          nodes_falsenodeids: { ints: n.falsenodeids },
          class_treeids: { ints: c.treeids },
          class_nodeids: { ints: c.nodeids },
          class_ids: { ints: c.ids },
          class_weights: { floats: c.weights },
          classlabels_int64s: { ints: dump.classes },
          post_transform: { s: 'NONE' },
        },
      },
    ],
  })
}

/** Smoke cases from the dump: confident dataset rows of every class, labels checked one by one. */
function smokeCases(dump, perClass = 3) {
  const { label, probabilities } = dump.expected
  const cases = []
  for (const cls of dump.classes) {
    let taken = 0
    for (let i = 0; i < dump.n_dataset_rows && taken < perClass; i++) {
      if (label[i] !== cls || Math.max(...probabilities[i]) < 0.9) continue
      cases.push({
        name: `row ${i} (class ${cls})`,
        inputs: { input: [dump.rows[i]] },
        label: { output: 'label', value: cls },
      })
      taken++
    }
  }
  const batch = cases.map((k) => k.inputs.input[0])
  cases.push({
    name: 'probabilities of the same rows, batched',
    inputs: { input: batch },
    expect: {
      probabilities: cases.map((k) => probabilities[dump.rows.indexOf(k.inputs.input[0])]),
    },
    tolerance: { atol: 1e-5, rtol: 0 },
  })
  cases.push({
    name: 'probabilities in [0, 1]',
    inputs: { input: batch },
    range: { probabilities: { min: 0, max: 1 } },
  })
  return { cases }
}

export function exportAll(dumpDir, modelsDir) {
  const written = []
  for (const file of readdirSync(dumpDir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const dump = JSON.parse(readFileSync(join(dumpDir, file), 'utf8'))
    const dir = join(modelsDir, dump.name)
    mkdirSync(join(dir, '1'), { recursive: true })
    const bytes = forestModel(dump)
    writeFileSync(join(dir, '1', 'model.onnx'), bytes)
    writeFileSync(join(dir, 'smoke.json'), `${JSON.stringify(smokeCases(dump), null, 2)}\n`)
    written.push({ name: dump.name, dump, path: join(dir, '1', 'model.onnx'), bytes: bytes.length })
  }
  return written
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [dumpDir, modelsDir] = process.argv.slice(2)
  if (!dumpDir || !modelsDir) {
    console.error('usage: node bench/peer/export-onnx.mjs DUMP_DIR MODELS_DIR')
    process.exit(2)
  }
  for (const w of exportAll(dumpDir, modelsDir)) console.log(`${w.path} (${w.bytes} bytes)`)
}
