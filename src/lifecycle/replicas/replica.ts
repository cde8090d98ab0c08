import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Logger } from '../../log.js'
import { GatekeeperLease, goneFromThisHost } from './gatekeeper-lease.js'

/**
 * This process as one replica of the servers sharing a state directory: its id, its role (the
 * gatekeeper holds the lease; followers try to take it every second), and its heartbeat, a file in
 * `replicas/` written every second with what it serves, which `GET /replicas` reads.
 */

export type Role = 'gatekeeper' | 'follower'

const REPLICAS_DIR = 'replicas'
/** How often the heartbeat is written and a follower tries to take the lease. */
const BEAT_MS = 1000
/** How often a follower looks for a new state.json, and the gatekeeper for forwarded admin requests. */
const TICK_MS = 200
/** A heartbeat older than this is shown `stale` (its replica stopped, hangs, or is cut off). */
export const STALE_AFTER_MS = 5000
/** The gatekeeper removes heartbeats older than this: replicas that are gone for good. */
const FORGET_AFTER_MS = 60_000

export interface ReplicaHeartbeat {
  readonly id: string
  readonly host: string
  readonly pid: number
  readonly startedAt: string
  readonly lastSeen: string
  readonly role: Role
  /** The lease generation it holds (gatekeeper) or last followed (follower). */
  readonly generation: number | null
  /** Each model's active version here. */
  readonly active: Readonly<Record<string, number | null>>
  /** Models this replica cannot bring in line with state.json, and why. */
  readonly behind?: Readonly<Record<string, string>>
  /** Live figures of versions being judged (probation, canary), for the gatekeeper to pool. */
  readonly figures?: unknown
}

export interface ReplicasView {
  readonly self: string
  readonly gatekeeper: string | null
  readonly generation: number | null
  readonly replicas: readonly (Omit<ReplicaHeartbeat, 'figures'> & { readonly stale: boolean })[]
}

export interface ReplicaOptions {
  readonly stateDir: string
  readonly logger: Logger
  /** What the heartbeat says this replica serves. */
  readonly describe: () => Pick<ReplicaHeartbeat, 'active' | 'behind' | 'figures'>
  /** The lease was taken: from now on this replica gates and records. */
  readonly becameGatekeeper: () => Promise<void>
  /** The lease was lost: from now on this replica follows. */
  readonly becameFollower: () => void
  /** Every TICK_MS: a follower follows state.json, the gatekeeper serves forwarded requests. */
  readonly tick: (role: Role) => Promise<void>
  /** The gatekeeper, every second: the heartbeats it just read (the others' published figures). */
  readonly heard: (beats: readonly ReplicaHeartbeat[]) => void
}

let replicasInProcess = 0

export class Replica {
  readonly id: string
  readonly #o: ReplicaOptions
  readonly #dir: string
  readonly #lease: GatekeeperLease
  readonly #startedAt = new Date().toISOString()
  #role: Role = 'follower'
  #beat: NodeJS.Timeout | undefined
  #tick: NodeJS.Timeout | undefined
  #ticking = false
  #others = 0
  #beating = false
  #closed = false

  constructor(o: ReplicaOptions) {
    this.#o = o
    // Unique on a shared volume: a pod's host name, a process on a host (and a second server in one process).
    const n = ++replicasInProcess
    this.id = `${hostname()}-${process.pid}${n > 1 ? `-${n}` : ''}`
    this.#dir = join(o.stateDir, REPLICAS_DIR)
    this.#lease = new GatekeeperLease({
      dir: o.stateDir,
      id: this.id,
      logger: o.logger,
      events: { lost: () => this.#lost() },
    })
  }

  get role(): Role {
    return this.#role
  }

  /** Other replicas seen in the last 5 s (as of the last heartbeat). */
  get others(): number {
    return this.#others
  }

  get generation(): number | undefined {
    return this.#lease.generation
  }

  /** Throws FencedError unless this replica holds the lease with the newest generation. */
  fence(): Promise<void> {
    return this.#lease.fence()
  }

  /** Tries the lease once: the role this replica starts in. */
  async start(): Promise<Role> {
    if (await this.#lease.tryAcquire()) this.#role = 'gatekeeper'
    this.#o.logger.info('replica_started', {
      id: this.id,
      role: this.#role,
      ...(this.#role === 'gatekeeper' && { generation: this.#lease.generation }),
      ...(this.#role === 'follower' && { gatekeeper: (await this.#lease.owner())?.id ?? null }),
    })
    return this.#role
  }

  /** Starts the heartbeat and the ticks (after the first load, so a follower follows a loaded lifecycle). */
  run(): void {
    void this.#beatNow()
    this.#beat = setInterval(() => void this.#beatNow(), BEAT_MS)
    this.#beat.unref()
    this.#tick = setInterval(() => void this.#tickNow(), TICK_MS)
    this.#tick.unref()
  }

  /** Who is who, from the heartbeats in the state directory. */
  async view(): Promise<ReplicasView> {
    const owner = await this.#lease.owner()
    const now = Date.now()
    // The published figures are for the gatekeeper's judgements, not for people.
    const replicas = (await this.heartbeats()).map(({ figures: _, ...h }) => ({
      ...h,
      stale: isStale(h, now),
    }))
    return {
      self: this.id,
      gatekeeper: owner?.id ?? null,
      generation: owner?.generation ?? null,
      replicas,
    }
  }

  /** Every replica's last heartbeat, this one's included, by id. */
  async heartbeats(): Promise<ReplicaHeartbeat[]> {
    let names: string[]
    try {
      names = await readdir(this.#dir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw e
    }
    const beats: ReplicaHeartbeat[] = []
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      try {
        const h = JSON.parse(await readFile(join(this.#dir, name), 'utf8')) as ReplicaHeartbeat
        if (typeof h.id === 'string' && typeof h.lastSeen === 'string') beats.push(h)
      } catch {
        // removed meanwhile, or not a heartbeat: skipped
      }
    }
    return beats
  }

  /** Stops beating, gives the lease up and removes this replica's heartbeat. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#beat)
    clearInterval(this.#tick)
    await this.#lease.release()
    await rm(this.#beatPath(), { force: true }).catch(() => undefined)
  }

  async #beatNow(): Promise<void> {
    if (this.#beating || this.#closed) return
    this.#beating = true
    try {
      if (this.#role === 'follower' && (await this.#lease.tryAcquire())) {
        this.#o.logger.info('gatekeeper_acquired', {
          id: this.id,
          generation: this.#lease.generation,
        })
        await this.#o.becameGatekeeper()
        this.#role = 'gatekeeper'
      }
      if (this.#role === 'gatekeeper') await this.#lease.verify()
      await this.#writeBeat()
      await this.#hear()
    } catch (e) {
      this.#o.logger.warn('heartbeat_failed', { id: this.id, error: e })
    } finally {
      this.#beating = false
    }
  }

  async #tickNow(): Promise<void> {
    if (this.#ticking || this.#closed) return
    this.#ticking = true
    try {
      await this.#o.tick(this.#role)
    } catch (e) {
      this.#o.logger.warn('replica_tick_failed', { id: this.id, role: this.#role, error: e })
    } finally {
      this.#ticking = false
    }
  }

  async #writeBeat(): Promise<void> {
    const beat: ReplicaHeartbeat = {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      lastSeen: new Date().toISOString(),
      role: this.#role,
      generation: this.#lease.generation ?? (await this.#lease.owner())?.generation ?? null,
      ...this.#o.describe(),
    }
    await mkdir(this.#dir, { recursive: true })
    const path = this.#beatPath()
    const tmp = `${path}.tmp`
    await writeFile(tmp, `${JSON.stringify(beat)}\n`)
    await rename(tmp, path) // a reader sees the last beat or this one, never half of one
  }

  /** Hears the others (the gatekeeper: their figures too), and forgets those gone for good. */
  async #hear(): Promise<void> {
    const now = Date.now()
    const beats = await this.heartbeats()
    this.#others = beats.filter((h) => h.id !== this.id && !isStale(h, now)).length
    if (this.#role !== 'gatekeeper') return
    this.#o.heard(beats)
    for (const h of beats)
      if (h.id !== this.id && (now - Date.parse(h.lastSeen) > FORGET_AFTER_MS || goneHere(h)))
        await rm(join(this.#dir, `${h.id}.json`), { force: true }).catch(() => undefined)
  }

  #lost(): void {
    if (this.#role !== 'gatekeeper') return
    this.#role = 'follower'
    this.#o.becameFollower()
  }

  #beatPath(): string {
    return join(this.#dir, `${this.id}.json`)
  }
}

/** Not seen for STALE_AFTER_MS, or a process of this host that no longer runs (killed, crashed). */
function isStale(h: ReplicaHeartbeat, now: number): boolean {
  return now - Date.parse(h.lastSeen) > STALE_AFTER_MS || goneHere(h)
}

/** A replica of this host whose process is gone: known at once, not after the staleness. */
function goneHere(h: ReplicaHeartbeat): boolean {
  return h.pid !== process.pid && goneFromThisHost(h)
}
