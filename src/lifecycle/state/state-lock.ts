import { readFileSync } from 'node:fs'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { lock } from 'proper-lockfile'
import type { Logger } from '../../log.js'

/**
 * One server per state directory. Two servers on one state directory each decide on their own
 * what serves and overwrite each other's state.json: they diverge. Until replicas are a feature,
 * the second one is refused at start.
 *
 * The lock is proper-lockfile's: a directory created with mkdir (atomic, also on NFS) whose mtime
 * the holder refreshes; one not refreshed for LOCK_STALE_MS is stale and taken over. Beside it an
 * owner file names the holder (pid, host, start time), for the refusal message and so that a lock
 * left by a holder killed with SIGKILL on this host is taken over at once, not after the staleness.
 */

const LOCK_DIR = 'server.lock'
const LOCK_OWNER_FILE = 'server.lock.json'
/** A lock its holder (on another host) has not refreshed for this long is taken over. */
const LOCK_STALE_MS = 10_000

export interface LockOwner {
  readonly pid: number
  readonly host: string
  readonly startedAt: string
  /** Linux: the process's start time (/proc/<pid>/stat), so a reused pid is not taken for the holder. */
  readonly procStart?: string | undefined
  /** The inode of the lock directory this file describes (a later lock is another directory). */
  readonly lockIno: number
}

/** The state directory is held by another live server. */
export class StateLockedError extends Error {
  constructor(
    readonly stateDir: string,
    readonly owner: LockOwner | undefined,
  ) {
    const holder = owner
      ? `another modelgate server (pid ${owner.pid} on host ${owner.host}, started ${owner.startedAt})`
      : `another process (${join(stateDir, LOCK_DIR)} exists and names no holder; it is taken over once nobody has refreshed it for ${LOCK_STALE_MS / 1000} s)`
    super(
      `the state directory ${stateDir} is in use by ${holder}. Two servers on one state directory diverge; ` +
        'stop the other server, or give this one its own --state-dir',
    )
    this.name = 'StateLockedError'
  }
}

/** Errors that mean the file system refuses writes: no lock can be taken, and no state written either. */
const UNWRITABLE = new Set(['EROFS', 'ENOSPC', 'EACCES', 'EPERM', 'EDQUOT'])

export class StateLock {
  readonly #dir: string
  readonly #logger: Logger
  readonly #lockPath: string
  readonly #ownerPath: string
  #release: (() => Promise<void>) | undefined
  #ino: number | undefined
  #released = false

  private constructor(dir: string, logger: Logger) {
    this.#dir = dir
    this.#logger = logger
    this.#lockPath = join(dir, LOCK_DIR)
    this.#ownerPath = join(dir, LOCK_OWNER_FILE)
  }

  /**
   * Takes the state directory, or throws StateLockedError naming the holder. A directory that
   * refuses writes (read-only, full) cannot be locked: the server starts anyway, saying so,
   * since it cannot write state there either (and /readyz will report it).
   */
  static async acquire(dir: string, logger: Logger): Promise<StateLock> {
    const held = new StateLock(dir, logger)
    try {
      await held.#take()
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (e instanceof StateLockedError || code === undefined || !UNWRITABLE.has(code)) throw e
      logger.error('state_lock_unavailable', {
        path: held.#lockPath,
        error: e,
        reason: 'the state directory refuses writes; starting without its lock',
      })
    }
    return held
  }

  /** Gives the state directory up: the owner file first, so it never names a later holder. */
  async release(): Promise<void> {
    this.#released = true
    const release = this.#release
    this.#release = undefined
    if (!release) return
    const owner = await readOwner(this.#ownerPath)
    if (owner?.pid === process.pid && owner.lockIno === this.#ino)
      await rm(this.#ownerPath, { force: true }).catch(() => undefined)
    await release().catch((e: unknown) =>
      this.#logger.warn('state_lock_release_failed', { path: this.#lockPath, error: e }),
    )
  }

  async #take(): Promise<void> {
    await mkdir(this.#dir, { recursive: true })
    for (let attempt = 1; ; attempt++) {
      try {
        this.#release = await lock(this.#dir, {
          lockfilePath: this.#lockPath,
          realpath: false,
          stale: LOCK_STALE_MS,
          retries: 0,
          onCompromised: (e) => void this.#lost(e),
        })
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e
        const ino = (await stat(this.#lockPath).catch(() => undefined))?.ino
        if (ino === undefined && attempt < 3) continue // released meanwhile: try again
        const owner = await readOwner(this.#ownerPath)
        const describes = owner !== undefined && owner.lockIno === ino
        if (describes && !isAlive(owner) && attempt < 3 && (await this.#takeOver(ino!))) {
          this.#logger.warn('state_lock_taken_over', {
            path: this.#lockPath,
            previous: owner,
            reason: 'its holder is no longer running on this host',
          })
          continue
        }
        throw new StateLockedError(this.#dir, describes ? owner : undefined)
      }
    }
    this.#ino = (await stat(this.#lockPath)).ino
    const owner: LockOwner = {
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      procStart: processStart(process.pid),
      lockIno: this.#ino,
    }
    const tmp = `${this.#ownerPath}.tmp-${process.pid}`
    try {
      await writeFile(tmp, `${JSON.stringify(owner)}\n`)
      await rename(tmp, this.#ownerPath) // whole or absent: a reader never sees half of it
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined)
      this.#logger.warn('state_lock_owner_unwritten', {
        path: this.#ownerPath,
        error: e,
        reason: 'the lock holds; a refused server cannot name this one',
      })
    }
  }

  /**
   * Removes a lock whose holder is dead, unless it is no longer the lock that was judged (another
   * server took it meanwhile): it is moved aside first, and its inode checked.
   */
  async #takeOver(ino: number): Promise<boolean> {
    const aside = `${this.#lockPath}.stale-${process.pid}-${Date.now()}`
    try {
      await rename(this.#lockPath, aside)
    } catch {
      return true // gone already: try again
    }
    if ((await stat(aside)).ino !== ino) {
      await rename(aside, this.#lockPath).catch(() => undefined)
      return false
    }
    await rm(aside, { recursive: true, force: true })
    return true
  }

  /** The lock was removed or taken from under this server (its directory deleted): take it again. */
  async #lost(e: Error): Promise<void> {
    this.#release = undefined
    if (this.#released) return
    this.#logger.warn('state_lock_lost', { path: this.#lockPath, error: e })
    try {
      await this.#take()
      this.#logger.info('state_lock_regained', { path: this.#lockPath })
    } catch (again) {
      this.#logger.error('state_lock_lost', {
        path: this.#lockPath,
        error: again,
        reason: 'another server may write this state directory',
      })
    }
  }
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const o = JSON.parse(await readFile(path, 'utf8')) as LockOwner
    return typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.lockIno === 'number'
      ? o
      : undefined
  } catch {
    return undefined
  }
}

/** Is the holder running? Only answerable on its own host; elsewhere the lock's staleness decides. */
function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true
  try {
    process.kill(owner.pid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'
  }
  // The pid runs, but it may be another process now (pids are reused; in a container, each start is pid 1).
  return owner.procStart === undefined || processStart(owner.pid) === owner.procStart
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot (Linux). */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}
