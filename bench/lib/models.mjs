// Models for the benchmarks, built with the project's own ONNX writer (dist/onnx/builder.js).
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildModel } from '../../dist/onnx/builder.js'

const EXAMPLE = fileURLToPath(new URL('../../models/iris', import.meta.url))

/**
 * The shipped example model (iris), copied file by file into `<modelsDir>/<name>`: the files the
 * example is made of, never the folder, which a running `npm start` may be changing.
 * `versionSmoke: false` leaves out the versions' own smoke.json (v2's holds its exact outputs, which
 * other bytes dropped in as new versions would fail).
 * @returns {string} the model's folder
 */
export function copyExample(modelsDir, name, { versions = [1, 2], versionSmoke = true } = {}) {
  const dest = join(modelsDir, name)
  const ownSmoke = versionSmoke
    ? versions.map((v) => `${v}/smoke.json`).filter((f) => existsSync(join(EXAMPLE, f)))
    : []
  const files = ['model.json', 'smoke.json', ...versions.map((v) => `${v}/model.onnx`), ...ownSmoke]
  for (const v of versions) mkdirSync(join(dest, String(v)), { recursive: true })
  for (const f of files) copyFileSync(join(EXAMPLE, f), join(dest, f))
  return dest
}

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
    initializers.push({
      name: `W${i}`,
      type: 'float32',
      dims: [n, m],
      data: Float32Array.from({ length: n * m }, () => (rnd() * 2 - 1) * scale),
    })
    initializers.push({
      name: `b${i}`,
      type: 'float32',
      dims: [m],
      data: Float32Array.from({ length: m }, () => (rnd() * 2 - 1) * 0.01),
    })
    const out = i === sizes.length - 2 ? 'y' : `h${i}`
    nodes.push({
      op: 'Gemm',
      inputs: [prev, `W${i}`, `b${i}`],
      outputs: [i === sizes.length - 2 ? out : `g${i}`],
    })
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
