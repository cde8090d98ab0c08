import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * The test process's memory after full garbage collections (the server under test runs in it).
 * `gc` without --expose-gc on the command line: the flag set at run time, then read from a fresh
 * context, where V8 installs it.
 */
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

export interface MemorySample {
  readonly rss: number
  /** What JavaScript holds: live heap objects, plus the buffers and typed arrays outside the heap. */
  readonly held: number
  /** RSS less V8's committed heap: native memory (onnxruntime, zlib, malloc arenas). */
  readonly native: number
}

export async function settledMemory(): Promise<MemorySample> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((r) => setImmediate(r))
  }
  const m = process.memoryUsage()
  return { rss: m.rss, held: m.heapUsed + m.arrayBuffers, native: m.rss - m.heapTotal }
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`
}

export function describeGrowth(from: MemorySample, to: MemorySample): string {
  return (['rss', 'held', 'native'] as const)
    .map(
      (k) =>
        `${k} ${mib(from[k])} -> ${mib(to[k])} (${to[k] >= from[k] ? '+' : ''}${mib(to[k] - from[k])})`,
    )
    .join(', ')
}
