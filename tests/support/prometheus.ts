import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { tempDir } from './servers.js'

/**
 * Debian's `prometheus` package (.ci/run installs it): the server and promtool, run as they are.
 * Debian builds them without Kubernetes service discovery (its client library is not packaged),
 * so a configuration with `kubernetes_sd_configs` is refused by both.
 */
const PROMETHEUS = '/usr/bin/prometheus'
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
