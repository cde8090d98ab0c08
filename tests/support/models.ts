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
