import { execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { parse, stringify } from 'yaml'
import { tempDir } from './servers.js'
import { waitFor } from './wait-for.js'

/**
 * Debian's `prometheus` package (.ci/run installs it): the server and promtool, run as they are.
 * Debian builds them without Kubernetes service discovery (its client library is not packaged),
 * so a configuration with `kubernetes_sd_configs` is refused by both.
 */
export const PROMETHEUS = '/usr/bin/prometheus'
export const PROMTOOL = '/usr/bin/promtool'
export const HAS_PROMETHEUS = existsSync(PROMETHEUS) && existsSync(PROMTOOL)

export const PROMETHEUS_DIR = join(import.meta.dirname, '..', '..', 'deploy', 'prometheus')

type Obj = Record<string, any>

/** deploy/prometheus/prometheus.yml, parsed. */
export function deployConfig(): Obj {
  return parse(readFileSync(join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8')) as Obj
}

export interface PromtoolRun {
  readonly code: number
  readonly output: string
}

/** promtool with `args`; its exit status and its stdout and stderr together. */
export function promtool(...args: string[]): Promise<PromtoolRun> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { cwd: PROMETHEUS_DIR }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
      resolve({ code, output: `${stdout}${stderr}` })
    })
  })
}

/** Writes `config` as YAML into a directory of the running test; returns the file's path. */
export async function writeConfig(config: Obj): Promise<string> {
  const file = join(await tempDir('modelgate-prometheus-'), 'prometheus.yml')
  await writeFile(file, stringify(config))
  return file
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/**
 * A real Prometheus on a free loopback port with `config`, its data in a temp directory; stopped
 * when the test finishes. Returns its base URL once it answers ready.
 */
export async function startPrometheus(config: Obj): Promise<string> {
  const configFile = await writeConfig(config)
  const storage = await tempDir('modelgate-prometheus-data-')
  const url = `http://127.0.0.1:${await freePort()}`
  const child = spawn(
    PROMETHEUS,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${storage}`,
      `--web.listen-address=${url.slice('http://'.length)}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let log = ''
  child.stderr.on('data', (c: Buffer) => {
    log = (log + c.toString()).slice(-20_000)
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  // Registered after tempDir's removals, so it runs before them: the data directory outlives it.
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  })
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}):\n${log}`)
    return (await fetch(`${url}/-/ready`).catch(() => undefined))?.status === 200
  }, 'prometheus to be ready')
  return url
}

/** GET one of Prometheus' /api/v1 endpoints; its `data`. */
export async function promApi(url: string, path: string): Promise<any> {
  const res = await fetch(`${url}/api/v1/${path}`)
  const body = (await res.json()) as Obj
  if (body.status !== 'success') throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`)
  return body.data
}

/** An instant query's series (a vector); throws on an error, such as a query that does not parse. */
export async function promQuery(url: string, expr: string): Promise<Obj[]> {
  return (await promApi(url, `query?query=${encodeURIComponent(expr)}`)).result
}
