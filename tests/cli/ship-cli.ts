import { execFile } from 'node:child_process'
import { CLI } from '../support/cli-server.js'

/**
 * The built CLI run as a user runs it, without blocking this process: the test's server runs in
 * it and must answer meanwhile.
 */
export function runCli(
  args: readonly string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({
        status: error ? (typeof error.code === 'number' ? error.code : null) : 0,
        stdout,
        stderr,
      }),
    )
  })
}

/** `modelgate ship FILE --models DIR --model NAME ...extra`. */
export function ship(file: string, modelsDir: string, model: string, ...extra: string[]) {
  return runCli(['ship', file, '--models', modelsDir, '--model', model, ...extra])
}
