import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PayloadWriter } from '../../../src/dataplane/payloads/payload-writer.js'
import { createMemoryLogger } from '../../../src/log.js'
import { tempDir } from '../../support/servers.js'

/** One model's writer over a real folder, its counters read directly. */
async function writer() {
  const dir = join(await tempDir(), 'm')
  const counts = { written: 0, dropped: 0, failed: 0 }
  const counter = (key: keyof typeof counts) => ({
    inc: (n: number) => {
      counts[key] += n
    },
  })
  const w = new PayloadWriter(
    dir,
    'm',
    { written: counter('written'), dropped: counter('dropped'), failed: counter('failed') },
    createMemoryLogger(),
  )
  const lines = async () => {
    const names = (await readdir(dir)).sort()
    const texts = await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')))
    return texts.join('').split('\n').filter(Boolean)
  }
  return { w, counts, lines }
}

const MB = 1024 * 1024

describe('PayloadWriter', () => {
  it('has every line queued before close() on disk when it settles', async () => {
    const { w, counts, lines } = await writer()
    for (let i = 0; i < 1000; i++) w.add(JSON.stringify({ i }), 100 * MB)
    await w.close()
    expect(counts).toEqual({ written: 1000, dropped: 0, failed: 0 })
    expect((await lines()).map((l) => JSON.parse(l).i)).toEqual(
      Array.from({ length: 1000 }, (_, i) => i),
    )
  })

  it('drops, and counts, what passes its queue, a line larger than a file may grow, and lines after close', async () => {
    const { w, counts, lines } = await writer()
    const line = 'x'.repeat(1024 * 1024 - 1) // 1 MiB with its newline
    // The queue holds 8 MiB, and nothing leaves it before the writer's first await: 8 fit.
    w.add('y'.repeat(5000), 0.01 * MB) // over the 4 KiB files of a 10 KiB bound
    for (let i = 0; i < 12; i++) w.add(line, 1000 * MB)
    await w.close()
    w.add('late', 100 * MB)
    expect(counts).toEqual({ written: 8, dropped: 6, failed: 0 })
    expect(await lines()).toHaveLength(8)
  })
})
