// Models for the benchmarks, built with the project's own ONNX writer (dist/onnx/builder.js).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildModel } from '../../dist/onnx/builder.js'

/** Seeded uniform [-scale, scale): the same weights on every run. */
function random(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An MLP sizes[0] -> ... -> sizes[n] with ReLU between layers, input `x` ['batch', sizes[0]], output `y`. */
export function mlp(sizes, seed = 1) {
  const rnd = random(seed)
  const initializers = []
  const nodes = []
  let prev = 'x'
  for (let i = 0; i < sizes.length - 1; i++) {
    const [n, m] = [sizes[i], sizes[i + 1]]
    const scale = Math.sqrt(2 / n)
    initializers.push({ name: `W${i}`, type: 'float32', dims: [n, m], data: Float32Array.from({ length: n * m }, () => (rnd() * 2 - 1) * scale) })
    initializers.push({ name: `b${i}`, type: 'float32', dims: [m], data: Float32Array.from({ length: m }, () => (rnd() * 2 - 1) * 0.01) })
    const out = i === sizes.length - 2 ? 'y' : `h${i}`
    nodes.push({ op: 'Gemm', inputs: [prev, `W${i}`, `b${i}`], outputs: [i === sizes.length - 2 ? out : `g${i}`] })
    if (i < sizes.length - 2) nodes.push({ op: 'Relu', inputs: [`g${i}`], outputs: [out] })
    prev = out
  }
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', sizes[0]] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', sizes.at(-1)] }],
    initializers,
    nodes,
  })
}

export function inputRow(n, seed = 7) {
  const rnd = random(seed)
  return Array.from({ length: n }, () => Math.round((rnd() * 2 - 1) * 1000) / 1000)
}

/** Writes <dir>/<name>/1/model.onnx (and model.json, smoke.json when given); returns the file. */
export function writeModel(dir, name, bytes, { modelJson, smoke } = {}) {
  mkdirSync(join(dir, name, '1'), { recursive: true })
  const file = join(dir, name, '1', 'model.onnx')
  writeFileSync(file, bytes)
  if (modelJson) writeFileSync(join(dir, name, 'model.json'), JSON.stringify(modelJson))
  if (smoke) writeFileSync(join(dir, name, 'smoke.json'), JSON.stringify(smoke))
  return file
}
