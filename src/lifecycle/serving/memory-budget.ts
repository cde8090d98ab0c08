import { readFileSync } from 'node:fs'
import { formatBytes } from '../../format-bytes.js'

/**
 * What loading a version costs in memory, estimated before a byte is read: the model bytes held for
 * its workers (one shared copy), one session per worker (or one on the main thread), and a
 * transient copy while a session is created: bytes × (sessions + 2) for workers, bytes × 2 on the
 * main thread (its bytes are dropped once the session holds the weights).
 */
export function footprint(
  bytes: number,
  execution: { readonly mode: 'main' | 'workers'; readonly workers: number },
): number {
  return execution.mode === 'workers' ? bytes * (execution.workers + 2) : bytes * 2
}

export interface MemoryLeft {
  readonly bytes: number
  /** Which bound it is: `--max-memory`, the cgroup's limit, or the system's available memory. */
  readonly source: string
}

/**
 * How much more this process may take: the least of --max-memory minus its resident size, its
 * cgroup's limit minus its usage (a container's limit, where the OOM killer would strike), and
 * what the kernel says is available. Undefined when none can be read (not Linux, no limit).
 */
export function memoryLeft(maxMemoryBytes: number | undefined): MemoryLeft | undefined {
  const bounds: MemoryLeft[] = []
  if (maxMemoryBytes !== undefined)
    bounds.push({
      bytes: maxMemoryBytes - process.memoryUsage.rss(),
      source: `--max-memory ${formatBytes(maxMemoryBytes)}`,
    })
  const limit = readNumber('/sys/fs/cgroup/memory.max')
  const usage = readNumber('/sys/fs/cgroup/memory.current')
  if (limit !== undefined && usage !== undefined)
    bounds.push({ bytes: limit - usage, source: 'the cgroup memory limit' })
  const available = /^MemAvailable:\s+(\d+) kB$/m.exec(readText('/proc/meminfo') ?? '')?.[1]
  if (available !== undefined)
    bounds.push({ bytes: Number(available) * 1024, source: 'the memory available on the system' })
  return bounds.reduce<MemoryLeft | undefined>(
    (least, b) => (least === undefined || b.bytes < least.bytes ? b : least),
    undefined,
  )
}

/** Why a version does not fit, or undefined when it does (or nothing is known). */
export function doesNotFit(needed: number, left: MemoryLeft | undefined): string | undefined {
  if (left === undefined || needed <= left.bytes) return undefined
  return `it needs about ${mib(needed)} (model bytes × sessions + 2) and ${mib(Math.max(0, left.bytes))} is left under ${left.source}`
}

function mib(n: number): string {
  return `${Math.round(n / 2 ** 20)} MiB`
}

/** procfs and cgroupfs files: a few bytes, answered by the kernel at once. */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** A number, or undefined for `max` (no limit) and files that are not there. */
function readNumber(path: string): number | undefined {
  const text = readText(path)?.trim()
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined
}
