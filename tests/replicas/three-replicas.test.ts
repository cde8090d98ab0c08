import { mkdir, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFailed, onTestFinished } from 'vitest'
import { admin, getJson, predict } from '../support/api-client.js'
import { spawnServerCli, type CliServer } from '../support/cli-server.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { tempDir } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'
import { readHistoryFile } from '../lifecycle/lifecycle-support.js'

/**
 * Replicas: several `modelgate serve` processes over one models directory and one state directory.
 * One holds the gatekeeper's lease and is the only one that gates and writes state.json and
 * history.jsonl; the others follow state.json. Real processes, real models: version v of the model
 * is addConstModel(v), so every answer says which bytes served it.
 */

const MODEL = 'm'
/** Replicas follow within 2 s, a takeover takes 5-7 s: generous deadlines for a busy machine. */
const DEADLINE_MS = 15_000

/** A models directory holding version 1 and a state directory of its own, beside it. */
async function replicaDirs(): Promise<{ models: string; state: string }> {
  const root = await tempDir('modelgate-replicas-')
  const models = join(root, 'models')
  const state = join(root, 'state')
  await mkdir(join(models, MODEL), { recursive: true })
  // Probation compares p99s of sub-millisecond requests on a machine running three servers: left
  // on, it could roll a version back on noise in the middle of the story.
  await writeFile(
    join(models, MODEL, 'model.json'),
    JSON.stringify({ session: { intraOpNumThreads: 1 }, probation: { enabled: false } }),
  )
  await writeVersion(models, MODEL, 1, addConstModel(1))
  return { models, state }
}

/** A replica over `dirs`, ready; if the test fails, what it logged of its role is printed. */
async function startReplica(dirs: { models: string; state: string }): Promise<CliServer> {
  const server = await spawnServerCli([
    '--models',
    dirs.models,
    '--state-dir',
    dirs.state,
    '--stability-ms',
    '100',
    '--rescan-ms',
    '200',
  ])
  onTestFailed(() => console.error(`replica pid ${server.child.pid}:\n${roleLog(server)}`))
  return server
}

interface ReplicaEntry {
  readonly id: string
  readonly host: string
  readonly pid: number
  readonly lastSeen: string
  readonly role: 'gatekeeper' | 'follower'
  readonly active: Record<string, number | null>
}

interface ReplicasView {
  readonly self: string
  readonly gatekeeper: string | null
  readonly generation: number
  readonly replicas: readonly ReplicaEntry[]
}

async function replicasOf(server: CliServer): Promise<ReplicasView> {
  const r = await getJson<ReplicasView>(`${server.url}/replicas`)
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  return r.body
}

/**
 * Polls GET /replicas on every server until `agreed` holds for the views together; returns them.
 * A failed wait shows the last views seen.
 */
async function waitForViews(
  servers: readonly CliServer[],
  agreed: (views: ReplicasView[]) => boolean,
  what: string,
): Promise<ReplicasView[]> {
  let views: ReplicasView[] = []
  await waitFor(
    async () => {
      views = await Promise.all(servers.map(replicasOf))
      return agreed(views)
    },
    what,
    DEADLINE_MS,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\nlast GET /replicas answers: ${JSON.stringify(views, null, 1)}`)
  })
  return views
}

/**
 * A server's log lines about its role, the lease, its gates and the versions it served, and every
 * warning: the evidence when the replicas disagree.
 */
function roleLog(server: CliServer): string {
  return logRecords(server)
    .filter(
      (r) =>
        r.level !== 'info' ||
        /replica|gatekeeper|lease|follow|admin|gate_(started|finished)|version_(promoted|rolled)/.test(
          r.event,
        ),
    )
    .map((r) => JSON.stringify(r))
    .join('\n')
}

/**
 * The heartbeats of `ids` (by default every one listed) give the roles the lease does. A heartbeat
 * is written every second, so a replica that just took the lease may list itself a follower for a
 * moment.
 */
function rolesAgree(
  view: ReplicasView,
  ids: readonly string[] = view.replicas.map((r) => r.id),
): boolean {
  return ids.every((id) => {
    const entry = view.replicas.find((r) => r.id === id)
    return entry?.role === (id === view.gatekeeper ? 'gatekeeper' : 'follower')
  })
}

/** Waits until GET /models/{name} on every server names `version` active. */
async function waitAllActive(servers: readonly CliServer[], version: number): Promise<void> {
  const actives = new Map<string, unknown>()
  await waitFor(
    async () => {
      for (const s of servers)
        actives.set(s.url, (await getJson(`${s.url}/models/${MODEL}`)).body.active)
      return [...actives.values()].every((a) => a === version)
    },
    `every replica to serve version ${version}`,
    DEADLINE_MS,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; active: ${JSON.stringify(Object.fromEntries(actives))}`)
  })
}

/** The server's log lines, parsed (lines that are not JSON are left out). */
function logRecords(server: CliServer): any[] {
  return server
    .output()
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line)]
      } catch {
        return []
      }
    })
}

/** How many gates of `version` finished in this server's process (a gate verdict). */
function gatesOf(server: CliServer, version: number): number {
  return logRecords(server).filter(
    (r) => r.event === 'gate_finished' && r.model === MODEL && r.version === version,
  ).length
}

/** history.jsonl's entries of `event` for `version`, once at least one is there. */
async function historyEntries(state: string, event: string, version: number): Promise<any[]> {
  let all: any[] = []
  const matching = () => all.filter((e) => e.event === event && e.version === version)
  await waitFor(
    async () => {
      all = (await readHistoryFile(state)).entries
      return matching().length > 0
    },
    `'${event}' of version ${version} in history.jsonl`,
    DEADLINE_MS,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; history: ${JSON.stringify(all, null, 1)}`)
  })
  return matching()
}

/** Sequential keep-alive predictions against one replica, every answer tallied, until stopped. */
interface Load {
  /** 2xx answers per version that answered. */
  readonly answered: Map<number, number>
  /** Every non-2xx answer and socket error, with when it happened. */
  readonly failures: string[]
  /** 2xx answers whose output was not their version's (x + version): the wrong bytes served. */
  readonly mismatched: string[]
  stop(): Promise<void>
}

function loadOn(server: CliServer): Load {
  const load = {
    answered: new Map<number, number>(),
    failures: [] as string[],
    mismatched: [] as string[],
    stop: async () => {
      running = false
      await loop
    },
  }
  let running = true
  const loop = (async () => {
    while (running) {
      const at = new Date().toISOString()
      try {
        const a = await predict(server.url, MODEL)
        if (a.status < 200 || a.status > 299) load.failures.push(`${at} HTTP ${a.status}`)
        else if (a.version === null || a.constant !== a.version)
          load.mismatched.push(`${at} version ${a.version} answered x + ${a.constant}`)
        else load.answered.set(a.version, (load.answered.get(a.version) ?? 0) + 1)
      } catch (e) {
        load.failures.push(`${at} ${(e as Error).message} ${String((e as Error).cause ?? '')}`)
      }
    }
  })()
  onTestFinished(load.stop)
  return load
}

/** The load ran clean: every answer a 2xx from the right bytes, and there were answers. */
function expectCleanLoad(load: Load, who: string): void {
  expect(load.failures, `${who}: failed requests`).toEqual([])
  expect(load.mismatched, `${who}: answers from the wrong bytes`).toEqual([])
  const total = [...load.answered.values()].reduce((a, b) => a + b, 0)
  expect(total, `${who}: predictions answered`).toBeGreaterThan(0)
}

async function stopWithSigterm(server: CliServer): Promise<void> {
  server.child.kill('SIGTERM')
  expect(await server.exited, server.output().slice(-2000)).toEqual({ code: 0, signal: null })
}

describe('replicas over one state directory', () => {
  it('three replicas under load: one gates, all follow; admin changes through any; a killed gatekeeper is replaced', async () => {
    const dirs = await replicaDirs()
    const a = await startReplica(dirs)
    const [b, c] = await Promise.all([startReplica(dirs), startReplica(dirs)])
    const servers = [a, b!, c!]
    const loads = new Map(servers.map((s) => [s, loadOn(s)]))

    // 1. Every replica sees all three, and they agree on one gatekeeper.
    const ids = new Set<string>()
    const first = await waitForViews(
      servers,
      (views) =>
        views.every(
          (v) =>
            v.gatekeeper !== null &&
            v.gatekeeper === views[0]!.gatekeeper &&
            v.replicas.length === 3 &&
            rolesAgree(v) &&
            v.replicas.every((r) => r.active[MODEL] === 1),
        ),
      'every replica to list all three with the same gatekeeper, serving version 1',
    )
    const gatekeeperId = first[0]!.gatekeeper!
    const generation = first[0]!.generation
    for (const [i, view] of first.entries()) {
      ids.add(view.self)
      expect(view.generation).toBe(generation)
      const me = view.replicas.find((r) => r.id === view.self)
      expect(me, `replica ${i} lists itself`).toMatchObject({
        host: hostname(),
        pid: servers[i]!.child.pid,
      })
      expect(view.replicas.filter((r) => r.role === 'gatekeeper').map((r) => r.id)).toEqual([
        gatekeeperId,
      ])
    }
    expect(ids.size, 'three distinct ids').toBe(3)
    for (const view of first) expect(new Set(view.replicas.map((r) => r.id))).toEqual(ids)
    const idOf = new Map(servers.map((s, i) => [s, first[i]!.self]))
    const gatekeeper = servers.find((s) => idOf.get(s) === gatekeeperId)!
    const [followerB, followerC] = servers.filter((s) => s !== gatekeeper) as [CliServer, CliServer]

    // 2. A new version: gated once, by the gatekeeper; followed everywhere; recorded once.
    await dropVersion(dirs.models, MODEL, 2, addConstModel(2))
    await waitAllActive(servers, 2)
    expect(await historyEntries(dirs.state, 'promoted', 2)).toHaveLength(1)
    expect(gatesOf(gatekeeper, 2)).toBe(1)
    for (const f of [followerB, followerC]) {
      expect(gatesOf(f, 2), 'a follower gates nothing').toBe(0)
      expect(await f.gatePids(), 'a follower forks no gate process').toEqual([])
    }

    // 3. A rollback asked of a follower: carried out by the gatekeeper, answered by the follower.
    const rollback = await admin(followerB.url, `/models/${MODEL}/rollback`)
    expect(rollback.status, JSON.stringify(rollback.body)).toBe(200)
    expect(rollback.body).toMatchObject({ model: MODEL, from: 2, to: 1 })
    await waitAllActive(servers, 1)
    expect(await historyEntries(dirs.state, 'rolled_back', 2)).toHaveLength(1)

    // 4. A promote asked of the other follower.
    const promote = await admin(followerC.url, `/models/${MODEL}/promote`, { version: 2 })
    expect(promote.status, JSON.stringify(promote.body)).toBe(200)
    expect(promote.body).toMatchObject({ model: MODEL, from: 1, to: 2 })
    await waitAllActive(servers, 2)
    const promotions = await historyEntries(dirs.state, 'promoted', 2)
    expect(promotions.filter((e) => e.trigger === 'admin')).toHaveLength(1)

    // 5. The gatekeeper dies: a survivor takes the lease with a higher generation, and gates.
    const gatekeeperLoad = loads.get(gatekeeper)!
    await gatekeeperLoad.stop()
    expectCleanLoad(gatekeeperLoad, 'the first gatekeeper before its kill')
    await gatekeeper.kill9()
    const survivors = [followerB, followerC]
    const survivorIds = survivors.map((s) => idOf.get(s)!)
    const after = await waitForViews(
      survivors,
      (views) =>
        views.every(
          (v) =>
            v.gatekeeper === views[0]!.gatekeeper &&
            survivorIds.includes(v.gatekeeper!) &&
            v.generation > generation &&
            rolesAgree(v, survivorIds),
        ),
      `a survivor to take the lease with a generation above ${generation}`,
    )
    expect(after[0]!.generation).toBe(after[1]!.generation)
    const successor = survivors.find((s) => idOf.get(s) === after[0]!.gatekeeper)!

    await dropVersion(dirs.models, MODEL, 3, addConstModel(3))
    await waitAllActive(survivors, 3)
    expect(await historyEntries(dirs.state, 'promoted', 3)).toHaveLength(1)
    expect(gatesOf(successor, 3)).toBe(1)
    for (const s of survivors.filter((s) => s !== successor))
      expect(gatesOf(s, 3), 'a follower gates nothing').toBe(0)

    // 6. No request failed anywhere, and each survivor answered with every version it served.
    for (const s of survivors) {
      const load = loads.get(s)!
      await load.stop()
      expectCleanLoad(load, `replica ${idOf.get(s)}`)
      expect([...load.answered.keys()].sort((x, y) => x - y)).toEqual([1, 2, 3])
    }
    // One entry per event over the whole story, not one per replica.
    const { entries } = await readHistoryFile(dirs.state)
    const story = entries.map((e) => `${e.event} ${e.version} ${e.trigger}`)
    expect(story).toEqual([
      'promoted 1 startup',
      'promoted 2 watch',
      'rolled_back 2 admin',
      'promoted 2 admin',
      'promoted 3 watch',
    ])

    for (const s of survivors) await stopWithSigterm(s)
  }, 90_000)

  it('a server started beside a live gatekeeper joins as a follower and gates nothing', async () => {
    const dirs = await replicaDirs()
    const gatekeeper = await startReplica(dirs)
    const joiner = await startReplica(dirs)

    const [view] = await waitForViews(
      [joiner],
      ([v]) => v!.replicas.length === 2 && v!.gatekeeper !== null,
      'the joiner to list both replicas and a gatekeeper',
    )
    const gatekeeperId = (await replicasOf(gatekeeper)).self
    expect(view!.gatekeeper).toBe(gatekeeperId)
    expect(view!.replicas.find((r) => r.id === view!.self)?.role).toBe('follower')
    const started = logRecords(joiner).filter((r) => r.event === 'replica_started')
    expect(started).toMatchObject([{ id: view!.self, role: 'follower', gatekeeper: gatekeeperId }])

    await dropVersion(dirs.models, MODEL, 2, addConstModel(2))
    await waitAllActive([gatekeeper, joiner], 2)
    expect(await predict(joiner.url, MODEL)).toMatchObject({ status: 200, version: 2, constant: 2 })
    expect(logRecords(joiner).filter((r) => r.event === 'gate_started')).toEqual([])
    expect(await joiner.gatePids()).toEqual([])
    expect(gatesOf(gatekeeper, 2)).toBe(1)
  })
})
