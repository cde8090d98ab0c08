import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { buildModel, type ModelSpec } from '../../src/onnx/builder.js'

/** Small real ONNX models for tests, built with the project's own writer. */

/** y = x + c (float32, shape [batch, n]): `c` tells versions apart in responses. */
export function addConstModel(c: number, n = 4, opts: { inputName?: string; outputName?: string } = {}): Uint8Array {
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
export function identityModel(type: ModelSpec['inputs'][number]['type'], shape: (number | string)[] | undefined, names = { input: 'x', output: 'y' }): Uint8Array {
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
export async function writeVersion(modelsDir: string, model: string, version: number, bytes: Uint8Array | string): Promise<string> {
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
export function identitiesModel(pairs: readonly (readonly [input: string, output: string])[], type: ElementTypeName = 'float32'): Uint8Array {
  return buildModel({
    inputs: pairs.map(([input]) => ({ name: input, type, shape: ['n'] })),
    outputs: pairs.map(([, output]) => ({ name: output, type, shape: ['n'] })),
    nodes: pairs.map(([input, output]) => ({ op: 'Identity', inputs: [input], outputs: [output] })),
  })
}

/**
 * y = Reshape(x, [2, 2]) with x declared as float32 ['n']: the metadata accepts any length, the
 * kernel only 4 elements (DESIGN §9: declared dims can be looser than what a model accepts).
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

/** y = Cast<int4>(x): an int4 graph output, which aborts the process if it is ever run (DESIGN §9). */
export function int4OutputModel(): Uint8Array {
  return buildModel({
    irVersion: 10,
    opsets: [{ domain: '', version: 21 }],
    inputs: [{ name: 'x', type: 'float32', shape: ['n'] }],
    outputs: [{ name: 'y', type: 'int4', shape: ['n'] }],
    nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['y'], attributes: { to: { i: 22 } } }],
  })
}
