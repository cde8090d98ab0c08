// A load generator in a child process: its stdout once it exits, or once `until` settles (SIGINT:
// wrk and the Node generator both stop then and report what they measured).
import { spawn } from 'node:child_process'

/** @returns {Promise<string>} */
export function spawnUntil(cmd, args, until) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    // then(stop, stop): a rejected `until` stops the child too, and is the caller's to handle.
    const stop = () => child.exitCode === null && child.signalCode === null && child.kill('SIGINT')
    until?.then(stop, stop)
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => {
      err += d
      process.stderr.write(d)
    })
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${cmd} exited ${code}: ${err.trim()}\n${out}`.trim())),
    )
  })
}
