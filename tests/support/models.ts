import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import {
  buildModel,
  type ModelSpec,
  type NodeSpec,
  type ValueSpec,
} from '../../src/onnx/builder.js'

/** Small real ONNX models for tests, built with the project's own writer. */

/** y = x + c (float32, shape [batch, n]): `c` tells versions apart in responses. */
export function addConstModel(
  c: number,
  n = 4,
  opts: { inputName?: string; outputName?: string } = {},
): Uint8Array {
  const x = opts.inputName ?? 'x'
  const y = opts.outputName ?? 'y'
  return buildModel({
    inputs: [{ name: x, type: 'float32', shape: ['batch', n] }],
    outputs: [{ name: y, type: 'float32', shape: ['batch', n] }],
    initializers: [{ name: 'c', type: 'float32', dims: [], data: new Float32Array([c]) }],
    nodes: [{ op: 'Add', inputs: [x, 'c'], outputs: [y] }],
  })
}

/** y = x (any element type), with the given declared shape (undefined = unknown rank). */
export function identityModel(
  type: ModelSpec['inputs'][number]['type'],
  shape: (number | string)[] | undefined,
  names = { input: 'x', output: 'y' },
): Uint8Array {
  return buildModel({
    inputs: [{ name: names.input, type, shape }],
    outputs: [{ name: names.output, type, shape }],
    nodes: [{ op: 'Identity', inputs: [names.input], outputs: [names.output] }],
  })
}

export async function writeModelFile(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, bytes)
}

/** Writes `<modelsDir>/<model>/<version>/model.onnx`. */
export async function writeVersion(
  modelsDir: string,
  model: string,
  version: number,
  bytes: Uint8Array | string,
): Promise<string> {
  const path = join(modelsDir, model, String(version), 'model.onnx')
  await writeModelFile(path, bytes)
  return path
}

type ElementTypeName = ModelSpec['inputs'][number]['type'] & string

/** sum = a + b (float32, shape [n]): a model with two inputs, bound by name. */
export function addModel(names = { a: 'a', b: 'b', sum: 'sum' }): Uint8Array {
  return buildModel({
    inputs: [
      { name: names.a, type: 'float32', shape: ['n'] },
      { name: names.b, type: 'float32', shape: ['n'] },
    ],
    outputs: [{ name: names.sum, type: 'float32', shape: ['n'] }],
    nodes: [{ op: 'Add', inputs: [names.a, names.b], outputs: [names.sum] }],
  })
}

/**
 * One Identity per pair: `outputs[i] = inputs[i]`, each of type `type` and shape ['n']. For tensor
 * names that are awkward in JavaScript objects (`__proto__`, `constructor`, `39`, `onnx::Flatten_0`).
 */
export function identitiesModel(
  pairs: readonly (readonly [input: string, output: string])[],
  type: ElementTypeName = 'float32',
): Uint8Array {
  return buildModel({
    inputs: pairs.map(([input]) => ({ name: input, type, shape: ['n'] })),
    outputs: pairs.map(([, output]) => ({ name: output, type, shape: ['n'] })),
    nodes: pairs.map(([input, output]) => ({ op: 'Identity', inputs: [input], outputs: [output] })),
  })
}

/**
 * y = Reshape(x, [2, 2]) with x declared as float32 ['n']: the metadata accepts any length, the
 * kernel only 4 elements (declared dims can be looser than what a model accepts).
 */
export function reshapeTo2x2Model(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['n'] }],
    outputs: [{ name: 'y', type: 'float32', shape: [2, 2] }],
    initializers: [{ name: 'shape', type: 'int64', dims: [2], data: BigInt64Array.of(2n, 2n) }],
    nodes: [{ op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] }],
  })
}

/** y = x (float32 ['n']) beside s = [x], a sequence output that onnxruntime-node cannot return. */
export function sequenceOutputModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['n'] }],
    outputs: [
      { name: 'y', type: 'float32', shape: ['n'] },
      { name: 's', type: { sequence: { tensor: 'float32' } } },
    ],
    nodes: [
      { op: 'Identity', inputs: ['x'], outputs: ['y'] },
      { op: 'SequenceConstruct', inputs: ['x'], outputs: ['s'] },
    ],
  })
}

/** y = Cast<int4>(x): an int4 graph output, which aborts the process if it is ever run (exit 134). */
export function int4OutputModel(): Uint8Array {
  return buildModel({
    irVersion: 10,
    opsets: [{ domain: '', version: 21 }],
    inputs: [{ name: 'x', type: 'float32', shape: ['n'] }],
    outputs: [{ name: 'y', type: 'int4', shape: ['n'] }],
    nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['y'], attributes: { to: { i: 22 } } }],
  })
}

/**
 * A scikit-learn-style forest export: TreeEnsembleClassifier (ai.onnx.ml) with string class labels,
 * then ZipMap, as skl2onnx writes it by default. One tree: feature 0 <= 0.5 -> 'cat', else 'dog'.
 * Outputs: `label` string [N], `probabilities` float32 [N, 2], and `output_probability`, a
 * sequence of maps that onnxruntime-node cannot return.
 */
export function forestWithZipMapModel(): Uint8Array {
  const ml = 'ai.onnx.ml'
  return buildModel({
    opsets: [
      { domain: '', version: 17 },
      { domain: ml, version: 3 },
    ],
    inputs: [{ name: 'input', type: 'float32', shape: ['N', 2] }],
    outputs: [
      { name: 'label', type: 'string', shape: ['N'] },
      { name: 'probabilities', type: 'float32', shape: ['N', 2] },
      {
        name: 'output_probability',
        type: { sequence: { map: ['string', { tensor: 'float32' }] } },
      },
    ],
    nodes: [
      {
        op: 'TreeEnsembleClassifier',
        domain: ml,
        inputs: ['input'],
        outputs: ['label', 'probabilities'],
        attributes: {
          nodes_treeids: { ints: [0, 0, 0] },
          nodes_nodeids: { ints: [0, 1, 2] },
          nodes_featureids: { ints: [0, 0, 0] },
          nodes_values: { floats: [0.5, 0, 0] },
          nodes_modes: { strings: ['BRANCH_LEQ', 'LEAF', 'LEAF'] },
          nodes_truenodeids: { ints: [1, 0, 0] },
          nodes_falsenodeids: { ints: [2, 0, 0] },
          // Two classes: onnxruntime's binary convention is one weight per leaf, P(class 1), under
          // class id 0; it returns [1 - p, p] (bench/peer/export-onnx.mjs checks this against sklearn).
          class_treeids: { ints: [0] },
          class_nodeids: { ints: [2] },
          class_ids: { ints: [0] },
          class_weights: { floats: [1] },
          classlabels_strings: { strings: ['cat', 'dog'] },
          post_transform: { s: 'NONE' },
        },
      },
      {
        op: 'ZipMap',
        domain: ml,
        inputs: ['probabilities'],
        outputs: ['output_probability'],
        attributes: { classlabels_strings: { strings: ['cat', 'dog'] } },
      },
    ],
  })
}

/** Mean over channels and pixels of an image batch [N, 3, 224, 224] -> [N]. */
export function imageMeanModel(): Uint8Array {
  return buildModel({
    opsets: [{ domain: '', version: 18 }],
    inputs: [{ name: 'pixel_values', type: 'float32', shape: ['N', 3, 224, 224] }],
    outputs: [{ name: 'mean', type: 'float32', shape: ['N'] }],
    initializers: [{ name: 'axes', type: 'int64', dims: [3], data: BigInt64Array.of(1n, 2n, 3n) }],
    nodes: [
      {
        op: 'ReduceMean',
        inputs: ['pixel_values', 'axes'],
        outputs: ['mean'],
        attributes: { keepdims: { i: 0 } },
      },
    ],
  })
}

/**
 * A stateful step, as a streaming model is exported: it takes the input and the previous state
 * (several inputs, one an int64 scalar step counter) and returns the output and the next state.
 * h_next = h + x; step_next = step + 1; y = h_next.
 */
export function statefulStepModel(): Uint8Array {
  return buildModel({
    inputs: [
      { name: 'x', type: 'float32', shape: [1, 4] },
      { name: 'state.h', type: 'float32', shape: [1, 4] },
      { name: 'step', type: 'int64', shape: [] },
    ],
    outputs: [
      { name: 'y', type: 'float32', shape: [1, 4] },
      { name: 'state.h_next', type: 'float32', shape: [1, 4] },
      { name: 'step_next', type: 'int64', shape: [] },
    ],
    initializers: [{ name: 'one', type: 'int64', dims: [], data: BigInt64Array.of(1n) }],
    nodes: [
      { op: 'Add', inputs: ['state.h', 'x'], outputs: ['state.h_next'] },
      { op: 'Identity', inputs: ['state.h_next'], outputs: ['y'] },
      { op: 'Add', inputs: ['step', 'one'], outputs: ['step_next'] },
    ],
  })
}

/**
 * A classifier-like model: `scores` = x + bias (float32 [batch, 3]) and `label` = ArgMax(scores)
 * (int64 [batch]). `bias` moves the predictions, so versions can be made to agree or not.
 */
export function classifierModel(bias: readonly [number, number, number]): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', 3] }],
    outputs: [
      { name: 'scores', type: 'float32', shape: ['batch', 3] },
      { name: 'label', type: 'int64', shape: ['batch'] },
    ],
    initializers: [{ name: 'bias', type: 'float32', dims: [3], data: Float32Array.from(bias) }],
    nodes: [
      { op: 'Add', inputs: ['x', 'bias'], outputs: ['scores'] },
      {
        op: 'ArgMax',
        inputs: ['scores'],
        outputs: ['label'],
        attributes: { axis: { i: 1 }, keepdims: { i: 0 } },
      },
    ],
  })
}

/** y = (x - x) / (x - x): NaN everywhere, with addConstModel's signature (float32 [batch, 4]). */
export function nanModel(n = 4): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', n] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', n] }],
    nodes: [
      { op: 'Sub', inputs: ['x', 'x'], outputs: ['zero'] },
      { op: 'Div', inputs: ['zero', 'zero'], outputs: ['y'] },
    ],
  })
}

/**
 * A slow model with addConstModel's signature (float32 [batch, 4] -> [batch, 4]): a chain of
 * `layers` width x width MatMuls. Weights average their inputs, so x = ones gives y = ones.
 */
export function heavyModel(width = 512, layers = 6, n = 4): Uint8Array {
  const nodes: { op: string; inputs: string[]; outputs: string[] }[] = [
    { op: 'MatMul', inputs: ['x', 'w_in'], outputs: ['h0'] },
  ]
  const initializers = [
    {
      name: 'w_in',
      type: 'float32' as const,
      dims: [n, width],
      data: new Float32Array(n * width).fill(1 / n),
    },
  ]
  for (let i = 0; i < layers; i++) {
    initializers.push({
      name: `w${i}`,
      type: 'float32',
      dims: [width, width],
      data: new Float32Array(width * width).fill(1 / width),
    })
    nodes.push({ op: 'MatMul', inputs: [`h${i}`, `w${i}`], outputs: [`h${i + 1}`] })
  }
  initializers.push({
    name: 'w_out',
    type: 'float32',
    dims: [width, n],
    data: new Float32Array(width * n).fill(1 / width),
  })
  nodes.push({ op: 'MatMul', inputs: [`h${layers}`, 'w_out'], outputs: ['y'] })
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', n] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', n] }],
    initializers,
    nodes,
  })
}

/**
 * addConstModel(c) followed by metadata_props, which the writer puts last: the file's prefix
 * without them is addConstModel(c) itself, a complete model. A copy cut at that point loads.
 */
export function addConstModelWithMetadata(
  c: number,
  metadata: Readonly<Record<string, string>>,
): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', 4] }],
    initializers: [{ name: 'c', type: 'float32', dims: [], data: new Float32Array([c]) }],
    nodes: [{ op: 'Add', inputs: ['x', 'c'], outputs: ['y'] }],
    metadata,
  })
}

/**
 * y = x + c like addConstModel, but carrying two float32 weight matrices [4, k] and [k, 4] (the
 * second all zeros, so the result is exact): ~32·k bytes that take real time to read, hash, load
 * and gate. For tests that need a promotion to be in flight for a while.
 */
export function heavyConstModel(c: number, k = 262_144): Uint8Array {
  const w1 = new Float32Array(4 * k).fill(0.5)
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', 4] }],
    initializers: [
      { name: 'c', type: 'float32', dims: [], data: new Float32Array([c]) },
      { name: 'w1', type: 'float32', dims: [4, k], data: w1 },
      { name: 'w2', type: 'float32', dims: [k, 4], data: new Float32Array(k * 4) },
    ],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['h'] },
      { op: 'MatMul', inputs: ['h', 'w2'], outputs: ['z'] },
      { op: 'Add', inputs: ['x', 'z'], outputs: ['xz'] },
      { op: 'Add', inputs: ['xz', 'c'], outputs: ['y'] },
    ],
  })
}

/**
 * Triton's "simple" example model (the one its simple_http_infer_client talks to): INPUT0, INPUT1
 * int32 [batch, 16]; OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1.
 */
export function simpleAddSubModel(): Uint8Array {
  return buildModel({
    inputs: [
      { name: 'INPUT0', type: 'int32', shape: ['batch', 16] },
      { name: 'INPUT1', type: 'int32', shape: ['batch', 16] },
    ],
    outputs: [
      { name: 'OUTPUT0', type: 'int32', shape: ['batch', 16] },
      { name: 'OUTPUT1', type: 'int32', shape: ['batch', 16] },
    ],
    nodes: [
      { op: 'Add', inputs: ['INPUT0', 'INPUT1'], outputs: ['OUTPUT0'] },
      { op: 'Sub', inputs: ['INPUT0', 'INPUT1'], outputs: ['OUTPUT1'] },
    ],
  })
}

/**
 * The model of the binary tensor data extension's example: input0 UINT32 [2, 2] and input1 BOOL [3]
 * in, output0 FP32 [3, 2] out. output0 = [input0 as float rows..., first two of input1 as 0/1].
 */
export function binaryExampleModel(): Uint8Array {
  return buildModel({
    inputs: [
      { name: 'input0', type: 'uint32', shape: [2, 2] },
      { name: 'input1', type: 'bool', shape: [3] },
    ],
    outputs: [{ name: 'output0', type: 'float32', shape: [3, 2] }],
    initializers: [
      { name: 'starts', type: 'int64', dims: [1], data: BigInt64Array.of(0n) },
      { name: 'ends', type: 'int64', dims: [1], data: BigInt64Array.of(2n) },
      { name: 'row', type: 'int64', dims: [2], data: BigInt64Array.of(1n, 2n) },
    ],
    nodes: [
      { op: 'Cast', inputs: ['input0'], outputs: ['a'], attributes: { to: { i: 1 } } },
      { op: 'Cast', inputs: ['input1'], outputs: ['b'], attributes: { to: { i: 1 } } },
      { op: 'Slice', inputs: ['b', 'starts', 'ends'], outputs: ['b2'] },
      { op: 'Reshape', inputs: ['b2', 'row'], outputs: ['b3'] },
      { op: 'Concat', inputs: ['a', 'b3'], outputs: ['output0'], attributes: { axis: { i: 0 } } },
    ],
  })
}

/** One Identity per entry, each with its own element type and shape: `output = input`. */
export function typedIdentitiesModel(
  pairs: readonly {
    readonly input: string
    readonly output: string
    readonly type: ElementTypeName
    readonly shape?: (number | string)[]
  }[],
): Uint8Array {
  return buildModel({
    inputs: pairs.map((p) => ({ name: p.input, type: p.type, shape: p.shape ?? ['n'] })),
    outputs: pairs.map((p) => ({ name: p.output, type: p.type, shape: p.shape ?? ['n'] })),
    nodes: pairs.map((p) => ({ op: 'Identity', inputs: [p.input], outputs: [p.output] })),
  })
}

/**
 * y = ConstantOfShape(shape) of 1.0: int64 `shape` [2] in, float32 [rows, cols] out. A tiny request
 * asks for an answer of any size (the gate runs it with a zero shape, an empty output).
 */
export function constantOfShapeModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'shape', type: 'int64', shape: [2] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['rows', 'cols'] }],
    nodes: [
      {
        op: 'ConstantOfShape',
        inputs: ['shape'],
        outputs: ['y'],
        attributes: { value: { t: { type: 'float32', dims: [1], data: Float32Array.of(1) } } },
      },
    ],
  })
}

/** y = x ⊗ x, the outer product: float32 x [n] in, y [n, n] out; the answer grows as the square of the request. */
export function outerProductModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['n'] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['n', 'n'] }],
    initializers: [
      { name: 'axis0', type: 'int64', dims: [1], data: BigInt64Array.of(0n) },
      { name: 'axis1', type: 'int64', dims: [1], data: BigInt64Array.of(1n) },
    ],
    nodes: [
      { op: 'Unsqueeze', inputs: ['x', 'axis1'], outputs: ['column'] },
      { op: 'Unsqueeze', inputs: ['x', 'axis0'], outputs: ['row'] },
      { op: 'Mul', inputs: ['column', 'row'], outputs: ['y'] },
    ],
  })
}

/**
 * y = x + c, addConstModel's signature (float32 [batch, 4]), after a Loop of `trips` iterations
 * that does nothing: every run takes as long as `trips` iterations, however fast the machine.
 * With 1e12 trips a run (and so a gate) cannot finish within any test's time.
 */
export function spinModel(c: number, trips: number | bigint): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', 4] }],
    initializers: [
      { name: 'c', type: 'float32', dims: [], data: new Float32Array([c]) },
      { name: 'trips', type: 'int64', dims: [], data: BigInt64Array.of(BigInt(trips)) },
    ],
    nodes: [
      loopNode({
        trips: 'trips',
        initial: 'x',
        output: 'x_looped',
        carried: { name: 'v', type: 'float32', shape: ['batch', 4] },
        step: { op: 'Identity', inputs: ['v'], outputs: ['v_out'] },
      }),
      { op: 'Add', inputs: ['x_looped', 'c'], outputs: ['y'] },
    ],
  })
}

/**
 * count = M, counted one Loop iteration at a time: int64 `M` (a scalar) in, int64 `count` out. The
 * request sets the trip count, so a run takes as long as the client asks (the gate runs it with 0).
 */
export function loopCounterModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'M', type: 'int64', shape: [] }],
    outputs: [{ name: 'count', type: 'int64', shape: [] }],
    initializers: [
      { name: 'zero', type: 'int64', dims: [], data: BigInt64Array.of(0n) },
      { name: 'one', type: 'int64', dims: [], data: BigInt64Array.of(1n) },
    ],
    nodes: [
      // `one` is the outer graph's: a Loop body sees the enclosing scope.
      loopNode({
        trips: 'M',
        initial: 'zero',
        output: 'count',
        carried: { name: 'n', type: 'int64', shape: [] },
        step: { op: 'Add', inputs: ['n', 'one'], outputs: ['n_out'] },
      }),
    ],
  })
}

/**
 * A Loop of `trips` iterations (no early exit) carrying one value from `initial` to `output`: the
 * body's `step` makes `<carried>_out` from `carried`.
 */
function loopNode(o: {
  trips: string
  initial: string
  output: string
  carried: ValueSpec
  step: NodeSpec
}): NodeSpec {
  return {
    op: 'Loop',
    inputs: [o.trips, '', o.initial],
    outputs: [o.output],
    attributes: {
      body: {
        graph: {
          inputs: [
            { name: 'i', type: 'int64', shape: [] },
            { name: 'cond', type: 'bool', shape: [] },
            o.carried,
          ],
          outputs: [
            { name: 'cond_out', type: 'bool', shape: [] },
            { ...o.carried, name: `${o.carried.name}_out` },
          ],
          nodes: [{ op: 'Identity', inputs: ['cond'], outputs: ['cond_out'] }, o.step],
        },
      },
    },
  }
}

/**
 * y = Reshape(x, shape): float32 x ['n'] and int64 `shape` ['r'] in, y of whatever shape the request
 * asks for, of any rank (`shape` of 10,000 ones is a rank-10,000 answer).
 */
export function reshapeToRequestModel(): Uint8Array {
  return buildModel({
    inputs: [
      { name: 'x', type: 'float32', shape: ['n'] },
      { name: 'shape', type: 'int64', shape: ['r'] },
    ],
    outputs: [{ name: 'y', type: 'float32', shape: undefined }],
    nodes: [{ op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] }],
  })
}
