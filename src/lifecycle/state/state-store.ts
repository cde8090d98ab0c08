import { type FileHandle, mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'

/**
 * `state.json`: what must survive a restart: per model the active version and its
 * bytes' sha256, the retained versions, the activation stack (rollback targets), and every
 * verdict and mark. Written atomically: a crash leaves the previous or the next state, never a torn one.
 */

const sha256 = z.string().regex(/^[0-9a-f]{64}$/)
const versionRef = z.object({ version: z.number().int().positive(), sha256 })

const persistedVersion = z.object({
  sha256,
  verdict: z.enum(['passed', 'rejected']),
  unverified: z.boolean().optional(),
  stage: z.string().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  at: z.string(),
  /** The gate's time for one run at the largest serving batch (ms), for `execution.mode: auto`. */
  runMs: z.number().nonnegative().optional(),
  rolledBack: z.object({ reason: z.string(), at: z.string() }).optional(),
  /** The file was deleted: never restored, even if it served. */
  missing: z.boolean().optional(),
})

/** A probation running when the state was written: a restart resumes it (with fresh figures). */
const persistedProbation = z.object({
  version: z.number().int().positive(),
  sha256,
  previous: z.number().int().positive(),
  startedAt: z.string(),
  endsAt: z.string(),
  /** The previous version's figures just before the swap: what the new one is compared with. */
  baseline: z.object({
    p99Ms: z.number().nullable(),
    accuracy: z.number().nullable(),
    mae: z.number().nullable(),
  }),
})

/** A rollout running when the state was written: a restart starts it again (from its first step). */
const persistedRollout = z.object({
  version: z.number().int().positive(),
  sha256,
  mode: z.enum(['shadow', 'canary']),
  startedAt: z.string(),
  /** A canary's step (0-based): followers answer its share. */
  step: z.number().int().nonnegative().optional(),
})

const persistedModel = z.object({
  active: versionRef.nullable(),
  retained: z.array(versionRef),
  /** Versions in the order they became active, the current one last. */
  activations: z.array(z.number().int().positive()),
  versions: z.record(z.string(), persistedVersion),
  probation: persistedProbation.optional(),
  rollout: persistedRollout.optional(),
})

export const persistedStateSchema = z.object({
  format: z.literal(1),
  /**
   * The model `POST /predict` serves: the first model the server ever served alone, or the last
   * `--default-model`. Recorded so that adding a model never changes what `/predict` answers.
   */
  defaultModel: z.string().optional(),
  models: z.record(z.string(), persistedModel),
})

export type PersistedState = z.infer<typeof persistedStateSchema>
export type PersistedModel = z.infer<typeof persistedModel>

export const STATE_FILE = 'state.json'

export function emptyState(): PersistedState {
  return { format: 1, models: {} }
}

export interface LoadedState {
  readonly state: PersistedState
  /** Set when state.json could not be used: why, and where the unreadable file was moved. */
  readonly problem: string | undefined
}

export class StateStore {
  readonly #dir: string
  readonly #path: string
  #writing: Promise<void> = Promise.resolve()
  #seq = 0

  readonly #fence: (() => Promise<void>) | undefined

  /** `fence`: throws when this process may no longer write the state (another replica holds the lease). */
  constructor(dir: string, fence?: () => Promise<void>) {
    this.#dir = dir
    this.#path = join(dir, STATE_FILE)
    this.#fence = fence
  }

  get path(): string {
    return this.#path
  }

  /**
   * Reads state.json. A missing file is an empty state. A file that does not parse (hand-edited,
   * or a disk fault: rename makes torn writes impossible) is moved aside and reported, never fatal.
   */
  async load(): Promise<LoadedState> {
    await mkdir(this.#dir, { recursive: true })
    await this.#removeTempFiles()
    let text: string
    try {
      text = await readFile(this.#path, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        return { state: emptyState(), problem: undefined }
      throw e
    }
    let why: string
    try {
      const parsed = persistedStateSchema.safeParse(JSON.parse(text))
      if (parsed.success) return { state: parsed.data, problem: undefined }
      const issue = parsed.error.issues[0]!
      why = `${issue.path.join('.') || '(root)'}: ${issue.message}`
    } catch (e) {
      why = `not JSON: ${(e as Error).message}`
    }
    // A time a person reads (UTC, `:` and `.` spelled `-` so the name works on every file system).
    const aside = `${this.#path}.unreadable-${new Date().toISOString().replace(/[:.]/g, '-')}`
    await rename(this.#path, aside)
    return {
      state: emptyState(),
      problem: `${this.#path} could not be read (${why}); moved to ${aside}, starting from an empty state`,
    }
  }

  /**
   * A follower: state.json as the gatekeeper last wrote it, with where it stood (to read it again
   * only when it changed); undefined when it is missing or does not parse (never moved aside here:
   * it is the gatekeeper's file).
   */
  async read(): Promise<PersistedState | undefined> {
    return (await this.readIfChanged(undefined)).state
  }

  /**
   * A follower, every tick: state.json if it is not the file `seen` describes (its inode, mtime and
   * size), with what describes it now. Opened, not merely stat'ed: on NFS an open revalidates the
   * file's attributes (close-to-open consistency), where a stat may answer from a cache for a minute.
   */
  async readIfChanged(
    seen: string | undefined,
  ): Promise<{ readonly seen: string; readonly state?: PersistedState | undefined }> {
    let file: FileHandle
    try {
      file = await open(this.#path, 'r')
    } catch {
      return { seen: 'none' }
    }
    try {
      const st = await file.stat()
      const now = `${st.ino}:${st.mtimeMs}:${st.size}`
      if (now === seen) return { seen: now }
      const parsed = persistedStateSchema.safeParse(JSON.parse(await file.readFile('utf8')))
      return { seen: now, state: parsed.success ? parsed.data : undefined }
    } catch {
      return { seen: seen ?? 'none' }
    } finally {
      await file.close()
    }
  }

  /** Queues an atomic write of `state`; writes happen in order, each on the latest snapshot. */
  save(state: PersistedState): Promise<void> {
    const text = `${JSON.stringify(state, null, 1)}\n`
    const write = this.#writing.then(() => this.#writeAtomically(text))
    this.#writing = write.catch(() => undefined)
    return write
  }

  /** Resolves when every queued write has finished. */
  flush(): Promise<void> {
    return this.#writing
  }

  async #writeAtomically(text: string): Promise<void> {
    // The folder may have been deleted (with the models directory, or by hand): make it again.
    await mkdir(this.#dir, { recursive: true })
    const tmp = join(this.#dir, `${STATE_FILE}.tmp-${process.pid}-${++this.#seq}`)
    try {
      const file = await open(tmp, 'w')
      try {
        await file.writeFile(text)
        await file.sync() // the bytes are on disk before the name points at them
      } finally {
        await file.close()
      }
      await this.#fence?.() // as late as can be: a replica paused till now finds it lost the lease
      await rename(tmp, this.#path)
    } catch (e) {
      // A full disk leaves a partial temp file: give its space back at once.
      await rm(tmp, { force: true }).catch(() => undefined)
      throw e
    }
    await syncDir(this.#dir) // and the rename itself is durable
  }

  async #removeTempFiles(): Promise<void> {
    for (const name of await readdir(this.#dir)) {
      if (name.startsWith(`${STATE_FILE}.tmp-`)) await rm(join(this.#dir, name), { force: true })
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
