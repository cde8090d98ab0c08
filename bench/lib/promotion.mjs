// A new version as a deployment delivers it: written in a staging folder on the models' file
// system ahead of time, renamed in at once (the server never sees a half-written file, and the
// write itself is not part of what is timed), and followed until the server serves it.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Writes `bytes` as `<workspace>/staging/<model>-<version>/model.onnx` now; `drop()` renames that
 * folder in as `<models>/<model>/<version>`.
 * @param {{root: string, models: string}} ws a workspace (workspace.mjs): staging is on its file system
 */
export function stageVersion(ws, model, version, bytes) {
  const dir = join(ws.root, 'staging', `${model}-${version}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'model.onnx'), bytes)
  return {
    model,
    version,
    bytes: bytes.length,
    drop: () => renameSync(dir, join(ws.models, model, String(version))),
  }
}

/**
 * Polls GET /models/<model> every `pollMs` until `version` is the active one; returns that moment
 * (performance.now()). A version the server rejects is thrown with its reason, not waited for.
 */
export async function untilActive(url, model, version, { timeoutMs = 60_000, pollMs = 20 } = {}) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const r = await fetch(`${url}/models/${model}`)
    const body = await r.json()
    if (!r.ok)
      throw new Error(
        `GET /models/${model} answered ${r.status}: ${JSON.stringify(body).slice(0, 200)}`,
      )
    if (body.active === version) return performance.now()
    const state = body.versions.find((v) => v.version === version)
    if (state?.status === 'rejected')
      throw new Error(
        `${model} version ${version} rejected: ${JSON.stringify(state).slice(0, 300)}`,
      )
    if (performance.now() > deadline)
      throw new Error(
        `${model} version ${version} not active after ${timeoutMs} ms (${state?.status ?? 'not listed'})`,
      )
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

/** One POST /models/<model>/predict; throws unless it succeeds and is answered by `version`. */
export async function expectServes(url, model, version, body) {
  const r = await fetch(`${url}/models/${model}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  const text = await r.text()
  const served = r.headers.get('x-model-version')
  if (!r.ok || served !== String(version)) {
    throw new Error(
      `POST /models/${model}/predict answered ${r.status} from version ${served}, expected version ${version}: ${text.slice(0, 200)}`,
    )
  }
}

/** Where the model's active version runs, as GET /models/<model> says: `{mode, workers, reason}`. */
export async function executionOf(url, model) {
  const r = await fetch(`${url}/models/${model}`)
  const body = await r.json()
  if (!r.ok || !body.execution)
    throw new Error(
      `GET /models/${model} answered ${r.status} without an execution: ${JSON.stringify(body).slice(0, 200)}`,
    )
  return body.execution
}
