import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'

/** The gate processes a server forks, found through Linux /proc, so a test can watch or end them. */

/** Child process ids of `pid` (Linux /proc), so a SIGKILLed server's gate process can be ended too. */
export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return text.trim() === '' ? [] : text.trim().split(/\s+/).map(Number)
}

/** The live gate processes `pid` has forked (an in-process test server's: `process.pid`). */
export async function gateProcessesOf(pid: number): Promise<number[]> {
  return (await childPids(pid)).filter((child) => isGateProcess(child))
}

/** True while `pid` is a live modelgate gate process (checked by its command line, not just the pid). */
export function isGateProcess(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return cmdline.includes('gate-process.js') && state !== 'Z'
  } catch {
    return false
  }
}

/** Ends gate processes a SIGKILLed server left behind (only those it forked; by pid). */
export function killLeftoverGates(pids: readonly number[]): void {
  for (const pid of pids) {
    if (!isGateProcess(pid)) continue
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}
