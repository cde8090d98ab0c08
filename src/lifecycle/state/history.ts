import { appendFile, type FileHandle, mkdir, open, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { EventBus } from '../../events/event-bus.js'
import type { Logger } from '../../log.js'
import type { StageResult } from '../gate/gate-types.js'
import { roundMs, roundStages } from '../gate/stage-results.js'
import { JsonLinesTail } from './json-lines-tail.js'

/** `history.jsonl`: one line per lifecycle event, append-only, in the state directory. */

export type HistoryEvent =
  | 'promoted'
  | 'rejected'
  | 'rolled_back'
  | 'restored'
  | 'restore_failed'
  | 'superseded'
  | 'unloaded'
  | 'missing'
  | 'auto_rolled_back'
  | 'auto_rollback_failed'
  | 'probation_passed'
  | 'rollout_started'
  | 'rollout_step'
  | 'rollout_aborted'
  | 'rollout_failed'
  | 'drift_detected'
  | 'drift_cleared'

/** A feature's population stability index, as drift events name it. */
export interface DriftFeature {
  readonly input: string
  /** The column (`"3"`), `""` for a rank-1 input, `mean` / `std`, or `frequency`. */
  readonly feature: string
  readonly psi: number
}

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
  /** An automatic rollback: the probation rule breached, what was seen, the limit, the sample size. */
  readonly rule?: string
  readonly observed?: number | null
  readonly limit?: number | null
  readonly sample?: number
  /** A probation's end: every rule as it stood. */
  readonly rules?: readonly unknown[]
  /** A probation passed with a rule that never had its sample. */
  readonly insufficient?: boolean
  /** Rollouts: `shadow` or `canary`, the canary's step (0-based) and share (%). */
  readonly mode?: 'shadow' | 'canary'
  readonly step?: number
  readonly percent?: number
  /** A shadow rollout's end: how its answers compared with the active version's. */
  readonly shadow?: Readonly<Record<string, number | null>>
  /** Drift: the features at or over the threshold (detected), or every feature judged (cleared). */
  readonly features?: readonly DriftFeature[]
  /** Drift: model.json's `drift.threshold` it was judged by. */
  readonly threshold?: number
}

export const HISTORY_FILE = 'history.jsonl'
/** Entries kept in memory per model for GET /models/{name}/history; the file keeps every one. */
export const KEEP_PER_MODEL = 200

/** Who may write the history: one replica of those sharing the state directory. */
export interface HistoryWriter {
  /** False on a follower: its entries are the gatekeeper's to write (it reads them, `follow`). */
  readonly writes: () => boolean
  /** Throws unless this replica still holds the lease with the newest generation. */
  readonly fence: () => Promise<void>
}

export class History {
  readonly #path: string
  readonly #logger: Logger | undefined
  readonly #events: EventBus | undefined
  readonly #writer: HistoryWriter | undefined
  readonly #recent = new Map<string, HistoryEntry[]>()
  #writing: Promise<void> = Promise.resolve()
  /** The last append failed: the file may end in part of a line. */
  #mayBeTorn = false
  /** Where this process read or wrote to: a follower reads on from there. */
  readonly #tail: JsonLinesTail

  /**
   * `events`: every entry appended (or, on a follower, read from the gatekeeper's writes) is also
   * published there (those load() reads back are not). `writer`: who may write, when replicas share it.
   */
  constructor(dir: string, logger?: Logger, events?: EventBus, writer?: HistoryWriter) {
    this.#path = join(dir, HISTORY_FILE)
    this.#tail = new JsonLinesTail(this.#path)
    this.#logger = logger
    this.#events = events
    this.#writer = writer
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
        if (typeof entry.model === 'string' && typeof entry.event === 'string')
          this.#remember(entry)
        else skipped++
      } catch {
        skipped++
      }
    }
    let size = Buffer.byteLength(text)
    if (!text.endsWith('\n') && text.length > 0 && this.#writer?.writes() !== false) {
      // Terminate a torn last line so the next entry starts on a line of its own.
      await appendFile(this.#path, '\n')
      size++
    }
    this.#tail.at(size, (await stat(this.#path).catch(() => undefined))?.ino)
    return skipped
  }

  /**
   * A follower: reads the entries the gatekeeper appended since the last read, keeps them for
   * GET /models/{name}/history and publishes them (`GET /events` on any replica). A line still
   * being written is read next time.
   */
  async follow(): Promise<void> {
    for (const line of await this.#tail.read()) {
      const entry = line as HistoryEntry
      if (typeof entry?.model !== 'string' || typeof entry.event !== 'string') continue
      this.#remember(entry)
      this.#events?.publish(entry)
    }
  }

  /**
   * Appends one entry; the line is on disk (fsync) when the promise resolves. Never rejects: the
   * history is a record, not the state, so an entry that cannot be written (a full or read-only
   * disk) is logged (`history_write_failed`) and kept in memory, and the caller carries on.
   */
  append(entry: Omit<HistoryEntry, 'time'>): Promise<void> {
    if (this.#writer?.writes() === false) return Promise.resolve() // the gatekeeper records it
    const full: HistoryEntry = {
      time: new Date().toISOString(),
      ...entry,
      ...(entry.ms !== undefined && { ms: roundMs(entry.ms) }),
      ...(entry.stages !== undefined && { stages: roundStages(entry.stages) }),
    }
    this.#remember(full)
    // As it happens, not once on disk: a webhook or stream hears of it even when the disk is full.
    this.#events?.publish(full)
    const line = `${JSON.stringify(full)}\n`
    const write = this.#writing.then(() => this.#appendLine(line))
    this.#writing = write
    return write
  }

  /**
   * One line, all or nothing where the file system allows: a write cut short (ENOSPC) is cut back
   * to where it began; and if even that failed, the next line starts on a line of its own.
   */
  async #appendLine(line: string): Promise<void> {
    let file: FileHandle | undefined
    let start: number | undefined
    try {
      await this.#writer?.fence()
      file = await open(this.#path, 'a+').catch(async (e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e
        // The state directory was deleted: make it again.
        await mkdir(dirname(this.#path), { recursive: true })
        return open(this.#path, 'a+')
      })
      const st = await file.stat()
      start = st.size
      const torn = this.#mayBeTorn && start > 0 && !(await endsWithNewline(file, start))
      const written = torn ? `\n${line}` : line
      await file.writeFile(written)
      await file.sync()
      this.#tail.at(start + Buffer.byteLength(written), st.ino)
      this.#mayBeTorn = false
    } catch (e) {
      if ((e as Error).name === 'FencedError') {
        // Another replica holds the lease now: it records what happens from here.
        this.#logger?.warn('history_write_fenced', { path: this.#path, error: e })
        return
      }
      this.#mayBeTorn = true
      if (file && start !== undefined) await file.truncate(start).catch(() => undefined)
      this.#logger?.error('history_write_failed', { path: this.#path, error: e })
    } finally {
      await file?.close().catch(() => undefined)
    }
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
    const list = this.#recent.get(entry.model) ?? []
    this.#recent.set(entry.model, list)
    list.push(entry)
    if (list.length > KEEP_PER_MODEL * 1.25) list.splice(0, list.length - KEEP_PER_MODEL)
  }
}

async function endsWithNewline(file: FileHandle, size: number): Promise<boolean> {
  const last = Buffer.alloc(1)
  await file.read(last, 0, 1, size - 1)
  return last[0] === 0x0a
}
