import { appendFile, mkdir, open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { StageResult } from './gate/gate-types.js'

/** `history.jsonl`: one line per lifecycle event, append-only (DESIGN §5). */

export type HistoryEvent =
  | 'promoted'
  | 'rejected'
  | 'rolled_back'
  | 'restored'
  | 'restore_failed'
  | 'superseded'
  | 'unloaded'
  | 'missing'

export interface HistoryEntry {
  readonly time: string
  readonly model: string
  readonly version: number
  readonly sha256?: string | undefined
  readonly event: HistoryEvent
  /** What caused it: `watch`, `startup`, `admin`, `auto_rollback:<rule>`. */
  readonly trigger?: string
  readonly from?: number | undefined
  /** Rollbacks: the version rolled back to (`version` is the one rolled back from). */
  readonly to?: number | undefined
  readonly reason?: string | undefined
  readonly message?: string | undefined
  readonly stages?: readonly StageResult[] | undefined
  readonly unverified?: boolean
  readonly warm?: boolean
  readonly ms?: number
}

export const HISTORY_FILE = 'history.jsonl'
/** Entries kept in memory per model for GET /models/{name}/history; the file keeps every one. */
export const KEEP_PER_MODEL = 200

export class History {
  readonly #path: string
  readonly #recent = new Map<string, HistoryEntry[]>()
  #writing: Promise<void> = Promise.resolve()

  constructor(dir: string) {
    this.#path = join(dir, HISTORY_FILE)
  }

  /**
   * Reads what earlier runs recorded, keeping the most recent entries of each model in memory. A
   * line cut short by a crash (the last one) is skipped, not fatal; returns how many were skipped.
   */
  async load(): Promise<number> {
    await mkdir(join(this.#path, '..'), { recursive: true })
    let text: string
    try {
      text = await readFile(this.#path, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0
      throw e
    }
    let skipped = 0
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue
      try {
        const entry = JSON.parse(line) as HistoryEntry
        if (typeof entry.model === 'string' && typeof entry.event === 'string') this.#remember(entry)
        else skipped++
      } catch {
        skipped++
      }
    }
    if (!text.endsWith('\n') && text.length > 0) {
      // Terminate a torn last line so the next entry starts on a line of its own.
      await appendFile(this.#path, '\n')
    }
    return skipped
  }

  /** Appends one entry; the line is on disk (fsync) when the promise resolves. */
  append(entry: Omit<HistoryEntry, 'time'>): Promise<void> {
    const full: HistoryEntry = { time: new Date().toISOString(), ...entry }
    this.#remember(full)
    const line = `${JSON.stringify(full)}\n`
    const write = this.#writing.then(async () => {
      const file = await open(this.#path, 'a')
      try {
        await file.writeFile(line)
        await file.sync()
      } finally {
        await file.close()
      }
    })
    this.#writing = write.catch(() => undefined)
    return write
  }

  flush(): Promise<void> {
    return this.#writing
  }

  /** The model's most recent entries, oldest first. */
  recent(model: string, limit: number): HistoryEntry[] {
    const entries = this.#recent.get(model) ?? []
    return entries.slice(Math.max(0, entries.length - limit))
  }

  #remember(entry: HistoryEntry): void {
    let list = this.#recent.get(entry.model)
    if (!list) this.#recent.set(entry.model, (list = []))
    list.push(entry)
    if (list.length > KEEP_PER_MODEL * 1.25) list.splice(0, list.length - KEEP_PER_MODEL)
  }
}
