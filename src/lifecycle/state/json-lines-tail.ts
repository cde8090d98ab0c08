import { type FileHandle, open } from 'node:fs/promises'

/**
 * Reads on a file of JSON lines that another process appends to (the history a follower reads,
 * the feedback relay): each read returns the complete lines added since the last one, parsed (a
 * line still being written is read next time; one that is not JSON, cut short by a crash, is
 * skipped). A file replaced (another inode) or cut shorter is read from its start.
 */
export class JsonLinesTail {
  readonly #path: string
  #offset = 0
  #ino: number | undefined

  constructor(path: string) {
    this.#path = path
  }

  /** Reading goes on from `offset` of the file with inode `ino` (what this process read or wrote). */
  at(offset: number, ino: number | undefined): void {
    this.#offset = offset
    this.#ino = ino
  }

  /** The lines appended since the last read; none while the file does not exist. */
  async read(): Promise<unknown[]> {
    let file: FileHandle
    try {
      file = await open(this.#path, 'r')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw e
    }
    try {
      const st = await file.stat()
      if (st.ino !== this.#ino || st.size < this.#offset) this.at(0, st.ino) // started afresh
      if (st.size === this.#offset) return []
      const buffer = Buffer.alloc(st.size - this.#offset)
      await file.read(buffer, 0, buffer.length, this.#offset)
      const end = buffer.lastIndexOf(0x0a) + 1
      this.#offset += end
      const lines: unknown[] = []
      for (const text of buffer.subarray(0, end).toString('utf8').split('\n')) {
        if (text.trim() === '') continue
        try {
          lines.push(JSON.parse(text))
        } catch {
          // cut short by a crash of its writer
        }
      }
      return lines
    } finally {
      await file.close()
    }
  }
}
