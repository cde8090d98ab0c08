import { spawnSync } from 'node:child_process'
import { mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  FencedError,
  GatekeeperLease,
  LEASE_STALE_MS,
} from '../../src/lifecycle/replicas/gatekeeper-lease.js'
import { createMemoryLogger } from '../../src/log.js'
import { makeTempDir } from '../support/test-server.js'

/**
 * The gatekeeper's lease over a state directory: one holder at a time, each with a generation
 * higher than every earlier one, and a holder whose lease was taken writes nothing (fencing).
 */

const leases: GatekeeperLease[] = []

function lease(dir: string, id: string) {
  const lost: string[] = []
  const logger = createMemoryLogger()
  const l = new GatekeeperLease({ dir, id, logger, events: { lost: (why) => lost.push(why) } })
  leases.push(l)
  return { lease: l, lost, logger }
}

afterEach(async () => {
  for (const l of leases.splice(0)) await l.release()
})

/** Makes the lease look unrefreshed for longer than its staleness, as a paused holder's would. */
async function ageLease(dir: string): Promise<void> {
  const past = new Date(Date.now() - LEASE_STALE_MS * 2)
  // Nobody may hold it at this instant (two racers removed each other's): then nothing to age.
  await utimes(join(dir, 'gatekeeper.lock'), past, past).catch(() => undefined)
}

/** A lease as a holder killed with SIGKILL leaves it: its lock, its owner file, its generation. */
async function deadHolder(dir: string, generation: number): Promise<void> {
  const gone = spawnSync(process.execPath, ['-e', '0']).pid! // has exited: its pid names nobody
  await mkdir(join(dir, 'gatekeeper.lock'))
  const { ino } = await stat(join(dir, 'gatekeeper.lock'))
  await writeFile(
    join(dir, 'gatekeeper.json'),
    JSON.stringify({
      id: 'killed',
      pid: gone,
      host: hostname(),
      startedAt: new Date().toISOString(),
      lockIno: ino,
      generation,
    }),
  )
  await mkdir(join(dir, 'generations'))
  await writeFile(join(dir, 'generations', String(generation)), 'killed\n')
}

describe('the gatekeeper lease', () => {
  it('one holder at a time; released, it goes to the next with a higher generation', async () => {
    const dir = await makeTempDir('modelgate-lease-')
    const a = lease(dir, 'a')
    const b = lease(dir, 'b')
    expect(await a.lease.tryAcquire()).toBe(true)
    expect(a.lease.generation).toBe(1)
    expect(await b.lease.tryAcquire()).toBe(false)
    expect(b.lease.generation).toBeUndefined()
    await expect(b.lease.fence()).rejects.toBeInstanceOf(FencedError)
    await a.lease.fence() // the holder writes
    expect(await b.lease.owner()).toMatchObject({ id: 'a', generation: 1, pid: process.pid })

    await a.lease.release()
    expect(await b.lease.tryAcquire()).toBe(true)
    expect(b.lease.generation).toBe(2)
    expect(await a.lease.owner()).toMatchObject({ id: 'b', generation: 2 })
  })

  it('a paused holder whose lease went stale is fenced: the new holder writes, the old one cannot', async () => {
    const dir = await makeTempDir('modelgate-lease-')
    const a = lease(dir, 'a')
    const b = lease(dir, 'b')
    expect(await a.lease.tryAcquire()).toBe(true)
    await ageLease(dir)
    expect(await b.lease.tryAcquire()).toBe(true)
    expect(b.lease.generation).toBe(2)
    await b.lease.fence()
    const fenced = await a.lease.fence().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(fenced).toBeInstanceOf(FencedError)
    expect((fenced as Error).message).toBe(
      "generation 2 holds the gatekeeper lease; this replica's 1 is over",
    )
  })

  it('two replicas racing for a free lease never share a generation', async () => {
    const dir = await makeTempDir('modelgate-lease-')
    const all = Array.from({ length: 6 }, (_, i) => lease(dir, `r${i}`))
    const won = await Promise.all(all.map((l) => l.lease.tryAcquire()))
    expect(won.filter(Boolean)).toHaveLength(1)
    // Each stale takeover claims the next generation exclusively.
    for (let round = 0; round < 3; round++) {
      await ageLease(dir)
      await Promise.all(all.map((l) => l.lease.tryAcquire()))
    }
    const generations = (await readdir(join(dir, 'generations'))).map(Number)
    expect(new Set(generations).size).toBe(generations.length)
    // Whoever believes it holds the lease, at most one passes the fence: the newest generation.
    const passing = []
    for (const l of all)
      if (l.lease.generation !== undefined)
        if (
          await l.lease.fence().then(
            () => true,
            (e) => (expect(e).toBeInstanceOf(FencedError), false),
          )
        )
          passing.push(l)
    expect(passing.length).toBeLessThanOrEqual(1)
  })

  it('a lease left by a process that is no longer running on this host is taken over at once', async () => {
    const dir = await makeTempDir('modelgate-lease-')
    await deadHolder(dir, 7)
    const b = lease(dir, 'b')
    expect(await b.lease.tryAcquire()).toBe(true)
    expect(b.lease.generation).toBe(8)
    expect(b.logger.records.map((r) => r.event)).toContain('gatekeeper_lease_taken_over')
  })

  it("replicas that find the holder dead at the same moment: one takes it over, and none takes the new holder's lease", async () => {
    for (let round = 0; round < 20; round++) {
      const dir = await makeTempDir('modelgate-lease-')
      await deadHolder(dir, 7)
      const racers = ['b', 'c', 'd'].map((id) => lease(dir, id))
      const took = await Promise.all(racers.map((r) => r.lease.tryAcquire()))
      expect(took.filter(Boolean)).toHaveLength(1)
      const holder = racers[took.indexOf(true)]!
      expect(await holder.lease.owner()).toMatchObject({ generation: 8 })
      await holder.lease.fence()
      for (const r of racers) await r.lease.release()
    }
  })

  it('a holder whose generation is no longer the newest gives the lease up (verify), and is told', async () => {
    const dir = await makeTempDir('modelgate-lease-')
    const a = lease(dir, 'a')
    const b = lease(dir, 'b')
    expect(await a.lease.tryAcquire()).toBe(true)
    await ageLease(dir)
    expect(await b.lease.tryAcquire()).toBe(true) // a has not noticed yet
    await a.lease.verify()
    expect(a.lease.held).toBe(false)
    expect(a.lost).toEqual(['generation 2 claimed the lease'])
    await b.lease.verify() // the newest keeps it
    expect(b.lease.held).toBe(true)
  })

  it('a state directory deleted under the holder: its next write takes the lease again', async () => {
    const root = await makeTempDir('modelgate-lease-')
    const dir = join(root, 'state')
    const a = lease(dir, 'a')
    expect(await a.lease.tryAcquire()).toBe(true)
    await rename(dir, join(root, 'gone'))
    await rm(join(root, 'gone'), { recursive: true, force: true })
    await a.lease.fence() // no error: taken again
    expect(a.lease.generation).toBe(1)
    expect(await a.lease.owner()).toMatchObject({ id: 'a', generation: 1 })
    expect(a.logger.records.map((r) => r.event)).toContain('gatekeeper_lease_retaken')
    expect(a.lost).toEqual([])
  })
})
