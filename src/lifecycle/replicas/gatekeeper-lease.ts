import { readFileSync } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { lock } from 'proper-lockfile'
import type { Logger } from '../../log.js'

/**
 * The gatekeeper's lease: one replica at a time over a state directory gates new versions and
 * writes state.json and the history. The others follow.
 *
 * The lease is proper-lockfile's lock: a directory made with mkdir (atomic, also on NFS) whose
 * mtime its holder refreshes every second; one not refreshed for 5 s is stale and taken over.
 * Beside it `gatekeeper.json` names the holder (id, pid, host, start time), so that a lease left by
 * a holder killed with SIGKILL on this host is taken over at once, not after the staleness.
 *
 * Fencing: every holder claims a generation, a file created exclusively in `generations/` (one
 * name, one creator), higher than every earlier one. A write to the state directory first checks
 * that no higher generation exists (`fence`): a holder paused past its staleness (a stopped
 * process, a long GC, a slow volume) finds a newer generation when it wakes and writes nothing.
 */

const LEASE_DIR = 'gatekeeper.lock'
const OWNER_FILE = 'gatekeeper.json'
const GENERATIONS_DIR = 'generations'
/** Held (mkdir) by the one replica taking over a dead holder's lease. */
const TAKEOVER_DIR = 'gatekeeper.takeover'
/** A lease its holder has not refreshed for this long is taken over. */
export const LEASE_STALE_MS = 5000
/** How often the holder refreshes it. */
const LEASE_RENEW_MS = 1000
/** Generation files kept behind the newest (older ones are removed by the holder). */
const KEEP_GENERATIONS = 16

export interface LeaseOwner {
  /** The replica's id. */
  readonly id: string
  readonly pid: number
  readonly host: string
  readonly startedAt: string
  /** Linux: the process's start time (/proc/<pid>/stat), so a reused pid is not taken for the holder. */
  readonly procStart?: string | undefined
  /** The inode of the lease directory this file describes (a later lease is another directory). */
  readonly lockIno: number
  readonly generation: number
}

/** A write refused because this replica no longer holds the lease. */
export class FencedError extends Error {
  constructor(generation: number, newest: number | undefined) {
    super(
      newest === undefined
        ? `this replica no longer holds the gatekeeper lease (generation ${generation})`
        : `generation ${newest} holds the gatekeeper lease; this replica's ${generation} is over`,
    )
    this.name = 'FencedError'
  }
}

/** Errors that mean the file system refuses writes: no lease can be taken, and no state written either. */
const UNWRITABLE = new Set(['EROFS', 'ENOSPC', 'EACCES', 'EPERM', 'EDQUOT'])

export interface LeaseEvents {
  /** The lease was lost (taken from under this replica, or its directory removed). */
  readonly lost: (reason: string) => void
}

export class GatekeeperLease {
  readonly #dir: string
  readonly #id: string
  readonly #logger: Logger
  readonly #events: LeaseEvents
  readonly #lockPath: string
  readonly #ownerPath: string
  readonly #generationsDir: string
  readonly #mutexPath: string
  #release: (() => Promise<void>) | undefined
  /** The lock now held: a compromise reported for an earlier one is not this one's. */
  #token: object | undefined
  #ino: number | undefined
  #generation: number | undefined
  /** The state directory refuses writes: this replica acts alone, without a lease. */
  #unwritable = false

  constructor(o: { dir: string; id: string; logger: Logger; events: LeaseEvents }) {
    this.#dir = o.dir
    this.#id = o.id
    this.#logger = o.logger
    this.#events = o.events
    this.#lockPath = join(o.dir, LEASE_DIR)
    this.#ownerPath = join(o.dir, OWNER_FILE)
    this.#generationsDir = join(o.dir, GENERATIONS_DIR)
    this.#mutexPath = join(o.dir, TAKEOVER_DIR)
  }

  /** The generation this replica holds the lease with; undefined when it holds none. */
  get generation(): number | undefined {
    return this.#generation
  }

  get held(): boolean {
    return this.#release !== undefined || this.#unwritable
  }

  /**
   * Takes the lease if nobody holds it, its holder's refresh is stale, or its holder is no longer
   * running on this host. True when this replica holds it now. A state directory that refuses
   * writes cannot be leased: the replica then acts as the gatekeeper, saying so, since nobody can
   * write state there (and /readyz reports it).
   */
  async tryAcquire(): Promise<boolean> {
    if (this.held) return true
    try {
      return await this.#take()
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === undefined || !UNWRITABLE.has(code)) throw e
      this.#logger.error('gatekeeper_lease_unavailable', {
        path: this.#lockPath,
        error: e,
        reason: 'the state directory refuses writes; acting as the gatekeeper without a lease',
      })
      this.#unwritable = true
      return true
    }
  }

  /** The holder of the lease as its owner file names it (any replica may read it). */
  async owner(): Promise<LeaseOwner | undefined> {
    return readOwner(this.#ownerPath)
  }

  /**
   * Throws FencedError unless this replica holds the lease with the newest generation: called
   * before every write to the state directory.
   */
  async fence(): Promise<void> {
    if (this.#unwritable) return
    const mine = this.#generation
    if (mine === undefined || this.#release === undefined)
      throw new FencedError(mine ?? 0, undefined)
    const newest = await newestGeneration(this.#generationsDir)
    if (newest === undefined) {
      // The state directory was deleted (or emptied) under this replica: no holder remains to
      // fence it. It takes the lease again, as any replica would, and writes if it gets it.
      this.#token = undefined
      this.#release = undefined
      this.#generation = undefined
      if (await this.#take()) {
        this.#logger.warn('gatekeeper_lease_retaken', {
          path: this.#lockPath,
          generation: this.#generation,
          reason: 'the state directory lost its lease',
        })
        return
      }
      this.#events.lost('the state directory lost its lease and another replica took it')
      throw new FencedError(mine, undefined)
    }
    if (newest !== mine) throw new FencedError(mine, newest)
  }

  /**
   * The holder, every second: is its generation still the newest? Two replicas can both believe
   * they hold the lease for a moment (both judged the last holder gone at once); the one whose
   * generation is not the newest gives it up, so that one replica, at most, writes, and the lease
   * does not stay with a holder every write of which is fenced.
   */
  async verify(): Promise<void> {
    if (this.#unwritable || this.#release === undefined) return
    const newest = await newestGeneration(this.#generationsDir)
    if (newest === undefined || newest === this.#generation) return
    const release = this.#release
    this.#release = undefined
    this.#token = undefined
    this.#generation = undefined
    await release().catch(() => undefined)
    const reason = `generation ${newest} claimed the lease`
    this.#logger.warn('gatekeeper_lease_lost', { path: this.#lockPath, reason })
    this.#events.lost(reason)
  }

  /** Gives the lease up: the owner file first, so it never names a later holder. */
  async release(): Promise<void> {
    const release = this.#release
    this.#release = undefined
    this.#token = undefined
    this.#generation = undefined
    if (!release) return
    const owner = await readOwner(this.#ownerPath)
    if (owner?.id === this.#id && owner.lockIno === this.#ino)
      await rm(this.#ownerPath, { force: true }).catch(() => undefined)
    await release().catch((e: unknown) =>
      this.#logger.warn('gatekeeper_lease_release_failed', { path: this.#lockPath, error: e }),
    )
  }

  /**
   * Takes the lease. A dead holder's lease is taken over by one replica at a time (the takeover
   * mutex, held until the new owner file names the new holder): the next one to look finds the new
   * holder named, instead of a lease it could mistake for the dead one's (a directory made again
   * at once can have the same inode number).
   */
  async #take(): Promise<boolean> {
    const mutex: TakeoverMutex = { held: false, dead: undefined }
    try {
      return await this.#takeOnce(mutex)
    } finally {
      if (mutex.held) {
        // Whoever took the freed lease (this replica or another) names itself before the next
        // replica may judge the holder dead: until then the owner file still names the dead one.
        const dead = mutex.dead
        const deadline = Date.now() + LEASE_RENEW_MS * 2
        while (dead && Date.now() < deadline && sameOwner(await readOwner(this.#ownerPath), dead))
          await new Promise((resolve) => setTimeout(resolve, 20))
        await rm(this.#mutexPath, { recursive: true, force: true }).catch(() => undefined)
      }
    }
  }

  /** The takeover mutex (mkdir: atomic); one left by a replica that died while taking over goes after a while. */
  async #takeMutex(): Promise<boolean> {
    try {
      await mkdir(this.#mutexPath)
      return true
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const age = Date.now() - ((await stat(this.#mutexPath).catch(() => undefined))?.mtimeMs ?? 0)
      if (age > LEASE_STALE_MS * 2) await rm(this.#mutexPath, { recursive: true, force: true })
      return false
    }
  }

  async #takeOnce(mutex: TakeoverMutex): Promise<boolean> {
    await mkdir(this.#dir, { recursive: true })
    const token = {}
    let tookOver = false
    for (let attempt = 1; ; attempt++) {
      try {
        this.#release = await lock(this.#dir, {
          lockfilePath: this.#lockPath,
          realpath: false,
          stale: LEASE_STALE_MS,
          update: LEASE_RENEW_MS,
          retries: 0,
          onCompromised: (e) => {
            if (this.#token === token) this.#lost(e)
          },
        })
        this.#token = token
        break
      } catch (e) {
        // ENOENT: the lease just made was removed at once by a replica that judged the previous
        // one stale in the same instant (proper-lockfile probes it right after mkdir): lost.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
        if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e
        const found = await stat(this.#lockPath).catch(() => undefined)
        const ino = found?.ino
        if (ino === undefined && attempt < 3) continue // released meanwhile: try again
        let owner = await readOwner(this.#ownerPath)
        const dead = () => owner !== undefined && owner.lockIno === ino && !isAlive(owner)
        // After a takeover, a lease found here again was made by another replica in the meantime
        // (a free lease, taken fairly): it holds it, even though the owner file may still name the
        // dead holder (not written yet) and the new directory may have the dead one's inode number.
        if (!dead() || attempt >= 3 || tookOver) return false
        if (!mutex.held) {
          if (!(await this.#takeMutex())) return false // another replica is taking it over
          mutex.held = true
          owner = await readOwner(this.#ownerPath) // as it is now that nobody else takes over
          if (!dead()) return false
        }
        if (await this.#takeOver(found!)) {
          tookOver = true
          mutex.dead = owner
          this.#logger.warn('gatekeeper_lease_taken_over', {
            path: this.#lockPath,
            previous: owner,
            reason: 'its holder is no longer running on this host',
          })
          continue
        }
        return false
      }
    }
    const held = await stat(this.#lockPath).catch(() => undefined)
    if (!held) {
      // Removed at once by another replica that judged it stale in the same instant: not ours.
      const release = this.#release
      this.#release = undefined
      this.#token = undefined
      await release?.().catch(() => undefined)
      return false
    }
    this.#ino = held.ino
    this.#generation = await this.#claimGeneration()
    const owner: LeaseOwner = {
      id: this.#id,
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      procStart: processStart(process.pid),
      lockIno: this.#ino,
      generation: this.#generation,
    }
    const tmp = `${this.#ownerPath}.tmp-${process.pid}`
    try {
      await writeFile(tmp, `${JSON.stringify(owner)}\n`)
      await rename(tmp, this.#ownerPath) // whole or absent: a reader never sees half of it
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined)
      this.#logger.warn('gatekeeper_owner_unwritten', {
        path: this.#ownerPath,
        error: e,
        reason: 'the lease holds; other replicas cannot name this one',
      })
    }
    return true
  }

  /** The next generation: a file created exclusively, so two holders never share one. */
  async #claimGeneration(): Promise<number> {
    await mkdir(this.#generationsDir, { recursive: true })
    let next = ((await newestGeneration(this.#generationsDir)) ?? 0) + 1
    for (;;) {
      try {
        const file = await open(join(this.#generationsDir, String(next)), 'wx')
        await file.writeFile(`${this.#id}\n`)
        await file.close()
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
        next++
      }
    }
    for (const name of await readdir(this.#generationsDir)) {
      const n = Number(name)
      if (Number.isInteger(n) && n <= next - KEEP_GENERATIONS)
        await rm(join(this.#generationsDir, name), { force: true }).catch(() => undefined)
    }
    return next
  }

  /**
   * Removes a lease whose holder is dead, unless it is no longer the lease that was judged (another
   * replica took it meanwhile): it is moved aside first, then checked.
   */
  async #takeOver(judged: { readonly ino: number; readonly mtimeMs: number }): Promise<boolean> {
    const aside = `${this.#lockPath}.stale-${process.pid}-${Date.now()}`
    try {
      await rename(this.#lockPath, aside)
    } catch {
      return true // gone already: try again
    }
    // The same directory: its inode number (which a directory made again at once may reuse) and
    // its mtime (a dead holder's no longer moves; a new lease's is set as it is made).
    const moved = await stat(aside)
    if (moved.ino !== judged.ino || moved.mtimeMs !== judged.mtimeMs) {
      await rename(aside, this.#lockPath).catch(() => undefined)
      return false
    }
    await rm(aside, { recursive: true, force: true })
    return true
  }

  /** The lease was taken from under this replica, or its directory removed: it is a follower now. */
  #lost(e: Error): void {
    if (this.#release === undefined) return
    this.#release = undefined
    this.#token = undefined
    this.#generation = undefined
    this.#logger.warn('gatekeeper_lease_lost', { path: this.#lockPath, error: e })
    this.#events.lost(e.message)
  }
}

/** The takeover mutex as `#take` holds it, and the dead holder whose lease it removed. */
interface TakeoverMutex {
  held: boolean
  dead: LeaseOwner | undefined
}

function sameOwner(a: LeaseOwner | undefined, b: LeaseOwner): boolean {
  return a !== undefined && a.id === b.id && a.pid === b.pid && a.startedAt === b.startedAt
}

/** The highest generation claimed in the state directory; undefined before the first. */
async function newestGeneration(dir: string): Promise<number | undefined> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  let newest: number | undefined
  for (const name of names) {
    const n = Number(name)
    if (Number.isInteger(n) && n > 0 && (newest === undefined || n > newest)) newest = n
  }
  return newest
}

async function readOwner(path: string): Promise<LeaseOwner | undefined> {
  try {
    const o = JSON.parse(await readFile(path, 'utf8')) as LeaseOwner
    return typeof o.pid === 'number' &&
      typeof o.host === 'string' &&
      typeof o.lockIno === 'number' &&
      typeof o.id === 'string'
      ? o
      : undefined
  } catch {
    return undefined
  }
}

/** Is the holder running? Only answerable on its own host; elsewhere the lease's staleness decides. */
function isAlive(owner: LeaseOwner): boolean {
  return !goneFromThisHost(owner)
}

/**
 * A process of this host that no longer runs (killed, crashed): known at once, where a process of
 * another host is judged by its staleness. `procStart` (when known) tells a reused pid apart.
 */
export function goneFromThisHost(p: {
  readonly host: string
  readonly pid: number
  readonly procStart?: string | undefined
}): boolean {
  if (p.host !== hostname()) return false
  try {
    process.kill(p.pid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'
  }
  // The pid runs, but it may be another process now (pids are reused; in a container, each start is pid 1).
  return p.procStart !== undefined && processStart(p.pid) !== p.procStart
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
