// The real CLI in its own process, as a user runs it.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { isAbsolute, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
const LIVE_MODELS = fileURLToPath(new URL('../../models', import.meta.url))

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function isInside(dir, parent) {
  const r = relative(parent, resolve(dir))
  return r === '' || (!r.startsWith('..') && !isAbsolute(r))
}

/**
 * Starts `modelgate serve` over `models` with its state in `stateDir` (both in a scenario's temp
 * directory: workspace.mjs) and resolves once /readyz says ready. MODELGATE_* variables of the
 * calling shell are not passed on: a state directory, token or default model meant for a running
 * `npm start` must not reach the bench's server.
 */
export async function startServerProcess({ models, stateDir, args = [], env = {}, nodeArgs = [] }) {
  if (!stateDir)
    throw new Error('startServerProcess: stateDir is required (a temp directory of its own)')
  for (const dir of [models, stateDir]) {
    if (isInside(dir, LIVE_MODELS))
      throw new Error(
        `the bench does not run over the project's models folder (${dir}): copy what it needs into a temp dir`,
      )
  }
  const port = await freePort()
  const own = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('MODELGATE_')),
  )
  const flags = [
    'serve',
    '--models',
    models,
    '--state-dir',
    stateDir,
    '--port',
    String(port),
    '--log-level',
    'warn',
    ...args,
  ]
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...flags], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...own, ...env },
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
    try {
      const r = await fetch(`${url}/readyz`)
      if (r.ok) break
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error('server not ready after 30 s')
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    pid: child.pid,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    },
  }
}
