import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mismatches } from './json-pattern.js'
import type { ReadmeBlock, ReadmeStep } from './readme-examples.js'

/** The one change made to a command: the README's ports (HTTP, gRPC) become the test server's. */
function onPort(command: string, port: number, grpcPort: number): string {
  return command
    .replace(/\b(localhost|127\.0\.0\.1):8080\b/g, `$1:${port}`)
    .replace(/\b(localhost|127\.0\.0\.1):8081\b/g, `$1:${grpcPort}`)
}

export interface StepResult {
  readonly step: ReadmeStep
  readonly stdout: string
  readonly stderr: string
  /** The HTTP statuses of the step's curl calls. */
  readonly statuses: readonly number[]
}

export interface BlockRun {
  readonly steps: readonly StepResult[]
  /** The step the script stopped in, with bash's status, when it did not run to the end. */
  readonly failed?: { readonly index: number; readonly status: number | string }
}

/**
 * Runs a block as one `bash -eo pipefail` script in `cwd`, as a user pastes it, with a marker
 * between steps on stdout and stderr so each step's output can be told apart. `curl` is wrapped
 * by a shell function that also writes the HTTP status to stderr, so the README's commands stay
 * exactly as a user types them (`curl -s ...`).
 */
export async function runBlock(
  block: ReadmeBlock,
  o: { cwd: string; env: NodeJS.ProcessEnv; port: number; grpcPort: number; timeoutMs: number },
): Promise<BlockRun> {
  // node_modules is this repository's, behind a symlink: an install would rewrite it.
  const install = block.steps.find((s) => /\bnpm\s+(install|i|ci)\b/.test(s.command))
  if (install)
    throw new Error(
      `README.md:${install.line}: '${install.command}' would install into the repository's node_modules; mark the block skipped`,
    )
  const mark = `@@readme-${randomBytes(6).toString('hex')}`
  const both = (what: string) =>
    `printf '\\n%s %s\\n' '${mark}' '${what}'; printf '\\n%s %s\\n' '${mark}' '${what}' >&2`
  const script = [
    `curl() { command curl -w '%{stderr}\\n${mark} http %{http_code}\\n' "$@"; }`,
    ...block.steps.flatMap((s, n) => [both(String(n)), onPort(s.command, o.port, o.grpcPort)]),
    both('end'),
    '',
  ].join('\n')
  const child = spawn('bash', ['-eo', 'pipefail', '-c', script], {
    cwd: o.cwd,
    // The CLI's default server (http://127.0.0.1:8080) on the test server's port: onPort's change,
    // for the `modelgate status` and the like that name no URL.
    env: { ...o.env, MODELGATE_URL: `http://127.0.0.1:${o.port}` },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let [stdout, stderr] = ['', '']
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    process.kill(-child.pid!, 'SIGKILL') // the whole group: a `sleep` in a wait loop too
  }, o.timeoutMs)
  const status = await new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  )
  clearTimeout(timer)
  try {
    process.kill(-child.pid!, 'SIGKILL') // anything a step left running in the background
  } catch {
    // the group is gone: nothing was left
  }

  const out = segments(stdout, mark)
  const err = segments(stderr, mark)
  const steps = block.steps.map((step, n) => {
    const e = err.get(String(n)) ?? ''
    const statuses = [...e.matchAll(new RegExp(`^${mark} http (\\d+)$`, 'gm'))].map((m) =>
      Number(m[1]),
    )
    return {
      step,
      stdout: (out.get(String(n)) ?? '').trim(),
      stderr: e.replace(new RegExp(`^${mark} http \\d+$\\n?`, 'gm'), '').trim(),
      statuses,
    }
  })
  if (!timedOut && status === 0 && out.has('end')) return { steps }
  const reached = block.steps.reduce((last, _, n) => (out.has(String(n)) ? n : last), 0)
  return {
    steps,
    failed: { index: reached, status: timedOut ? `killed after ${o.timeoutMs} ms` : status },
  }
}

/** Output after each marker, by the marker's name. */
function segments(text: string, mark: string): Map<string, string> {
  const parts = text.split(new RegExp(`\\n?${mark} (\\S+)\\n`))
  const map = new Map<string, string>()
  for (let i = 1; i < parts.length; i += 2) map.set(parts[i]!, parts[i + 1] ?? '')
  return map
}

/**
 * Each step of a run that went wrong (`file:line: command`, its problems, what it printed), up to
 * the step the script stopped in; empty when the whole block ran as shown.
 */
export function blockFailures(run: BlockRun, file: string): string[] {
  return run.steps.flatMap((r, n) => {
    if (run.failed && n > run.failed.index) return []
    const problems =
      run.failed?.index === n
        ? [`exited with ${run.failed.status}`, ...stepProblems(r)]
        : stepProblems(r)
    if (problems.length === 0) return []
    return [
      [
        `${file}:${r.step.line}: ${r.step.command}`,
        ...problems.map((p) => `  - ${p}`),
        `  stdout: ${r.stdout || '(nothing)'}`,
        ...(r.stderr ? [`  stderr: ${r.stderr}`] : []),
      ].join('\n'),
    ]
  })
}

/** What is wrong with a step that ran: an HTTP error it did not expect, or an answer unlike the README's. */
function stepProblems(r: StepResult): string[] {
  const expectsError =
    r.step.expected?.pattern.kind === 'object' && r.step.expected.pattern.members.has('error')
  const problems = expectsError
    ? []
    : r.statuses
        .filter((s) => s >= 400)
        .map((s) => `HTTP ${s}, and the README shows no error for this command`)
  if (!r.step.expected) return problems
  let actual: unknown
  try {
    actual = JSON.parse(r.stdout)
  } catch {
    return [
      ...problems,
      `the README shows ${r.step.expected.text}, the command printed something that is not JSON`,
    ]
  }
  return [...problems, ...mismatches(r.step.expected.pattern, actual)]
}
