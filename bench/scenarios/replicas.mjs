// Replicas: three `modelgate serve` processes over one models directory and one state directory,
// each under a light load the whole time. How long until every replica serves a change: a warm
// rollback and a cold promote sent to a follower (its answer, then every replica), a version renamed
// into the models directory, and after the gatekeeper is killed with SIGKILL, the takeover and the
// next version. Absolute times, not ratios: the contract is absolute too (every replica follows
// within 2 s; a lease is taken over once stale for 5 s, a dead holder on this host at once).
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { load } from '../lib/load.mjs'
import { copyExample } from '../lib/models.mjs'
import { childPids } from '../lib/process-stats.mjs'
import { stageVersion, untilActive } from '../lib/promotion.mjs'
import { spread, table, writeReport } from '../lib/report.mjs'
import { startServerProcess } from '../lib/server-process.mjs'
import { createWorkspace } from '../lib/workspace.mjs'

const REPLICAS = 3
const ROUNDS = 5
const MODEL = 'iris'
const BODY = JSON.stringify({ inputs: { features: [[6.7, 3.0, 5.2, 2.3]] } })
/** Each replica's load: one keep-alive connection, a request every PAUSE_MS after the last answer. */
const PAUSE_MS = 20
/** Longer than the scenario: the loads are stopped, never run out. */
const LOAD_CAP_SECONDS = 3600
const POLL_MS = 10
/** A measurement that takes this long has failed; the figure would be the timeout's. */
const TIMEOUT_MS = 30_000
const FOLLOW_TARGET_MS = 2000
const STALE_LEASE_MS = 5000

/**
 * @typedef {{url: string, pid: number, id: string, server: Awaited<ReturnType<typeof startServerProcess>>,
 *   stopLoad: () => Promise<import('../lib/load-result.mjs').LoadResult>}} Replica
 */

export async function replicas() {
  const ws = createWorkspace('replicas')
  /** @type {Replica[]} */
  const running = []
  const loads = []
  try {
    const folder = copyExample(ws.models, MODEL, { versionSmoke: false }) // v2's exact cases would fail the copies of v1
    // Probation judges p99 against the previous version's: on 2 cores with three servers loading
    // versions it can breach and roll back by itself, which is not what is measured here.
    writeFileSync(
      join(folder, 'model.json'),
      JSON.stringify({ session: { intraOpNumThreads: 1 }, probation: { enabled: false } }),
    )
    const bytes = [1, 2].map((v) => readFileSync(join(folder, String(v), 'model.onnx')))
    let next = 3
    /** A new version staged now (bytes alternating between the example's two), renamed in by drop(). */
    const stage = () => stageVersion(ws, MODEL, next, bytes[next++ % 2])

    // The first one started takes the lease; the others join it as followers.
    for (let i = 0; i < REPLICAS; i++) running.push(await startReplica(ws))
    for (const r of running) await untilActive(r.url, MODEL, 2, { timeoutMs: TIMEOUT_MS })

    const changes = { drop: [], rollback: [], promote: [] }
    for (let round = 0; round < ROUNDS; round++) {
      const roles = await rolesOf(running)
      const asked = roles.followers[round % 2]
      const before = await activeOn(roles.gatekeeper)

      const dropped = stage()
      changes.drop.push(await timedDrop(roles, dropped))

      // Back to the version that served before: retained on every replica, a pointer swap.
      const rollback = await timedAdmin(roles, asked, 'rollback', before)
      if (!rollback.warm) throw new Error(`rollback to ${before} was not warm`)
      changes.rollback.push(rollback)

      // The version rolled back from is loaded nowhere now: the gatekeeper gates it, the
      // followers read, check and warm it.
      const promote = await timedAdmin(roles, asked, 'promote', dropped.version)
      if (promote.warm)
        throw new Error(`promote of ${dropped.version} was warm: it was still loaded`)
      changes.promote.push(promote)
    }

    const takeovers = []
    for (let round = 0; round < ROUNDS; round++) {
      const roles = await rolesOf(running)
      const gatekeeper = roles.gatekeeper
      // Its load stops first: requests refused by a killed server are not the survivors' errors.
      loads.push({ replica: gatekeeper.id, ...(await gatekeeper.stopLoad()) })
      running.splice(running.indexOf(gatekeeper), 1)
      const killed = performance.now()
      process.kill(gatekeeper.pid, 'SIGKILL')
      const agreed = await untilNewGatekeeper(running, gatekeeper.id, killed)
      const dropped = stage()
      takeovers.push({ ...agreed, drop: await timedDrop(await rolesOf(running), dropped) })
      await gatekeeper.server.stop() // reaped
      // A fresh replica in its place, for the next round's three.
      const fresh = await startReplica(ws)
      running.push(fresh)
      await untilActive(fresh.url, MODEL, dropped.version, { timeoutMs: TIMEOUT_MS })
    }

    for (const r of running.splice(0)) {
      loads.push({ replica: r.id, ...(await r.stopLoad()) })
      await r.server.stop()
    }
    return report({ changes, takeovers, loads })
  } finally {
    // After a failure: every load stopped (their errors are already the failure) and every server.
    for (const r of running) {
      await r.stopLoad().catch(() => {})
      await r.server.stop()
    }
    ws.remove()
  }
}

/** A server over the shared directories, its id, and its light load, started at once. */
async function startReplica(ws) {
  const server = await startServerProcess({ models: ws.models, stateDir: ws.stateDir })
  const { self } = await getJson(`${server.url}/replicas`)
  let stop
  const until = new Promise((resolve) => (stop = resolve))
  const loaded = load({
    url: `${server.url}/models/${MODEL}/predict`,
    body: BODY,
    connections: 1,
    pauseMs: PAUSE_MS,
    seconds: LOAD_CAP_SECONDS,
    until,
  })
  loaded.catch(() => {}) // awaited by stopLoad; until then its failure must not count as unhandled
  return {
    url: server.url,
    pid: server.pid,
    id: self,
    server,
    stopLoad: () => {
      stop()
      return loaded
    },
  }
}

/** The gatekeeper and the followers, as every replica's GET /replicas agrees. */
async function rolesOf(replicas) {
  const named = new Set()
  for (const r of replicas) named.add((await getJson(`${r.url}/replicas`)).gatekeeper)
  const [id] = named
  const gatekeeper = replicas.find((r) => r.id === id)
  if (named.size !== 1 || !gatekeeper)
    throw new Error(`the replicas do not agree on a running gatekeeper: ${[...named].join(', ')}`)
  return { gatekeeper, followers: replicas.filter((r) => r !== gatekeeper) }
}

async function activeOn(replica) {
  return (await getJson(`${replica.url}/models/${MODEL}`)).active
}

/**
 * The staged version renamed in: ms until each replica serves it, the gate's own time on the
 * gatekeeper (GET /models/<model>), and whether its gate process was running already at the
 * rename (a gatekeeper starts one at its first gate).
 */
async function timedDrop({ gatekeeper, followers }, version) {
  const gateProcessRunning = childPids(gatekeeper.pid).length > 0
  const t = performance.now()
  version.drop()
  const [gatekeeperMs, ...followersMs] = await Promise.all(
    [gatekeeper, ...followers].map((r) => servedAfter(r, version.version, t)),
  )
  const { versions } = await getJson(`${gatekeeper.url}/models/${MODEL}`)
  const followersSlowestMs = Math.max(...followersMs)
  return {
    version: version.version,
    allMs: Math.max(gatekeeperMs, followersSlowestMs),
    gatekeeperMs,
    followersSlowestMs,
    gateMs: versions.find((v) => v.version === version.version)?.gate?.ms,
    gateProcessRunning,
  }
}

/**
 * POST /models/<model>/<op> {version} to `asked` (a follower): ms until its answer, whether it was
 * warm and the gatekeeper's own ms, and ms until each replica serves `version`, every one polled
 * from before the request is sent.
 */
async function timedAdmin({ gatekeeper, followers }, asked, op, version) {
  const other = followers.find((f) => f !== asked)
  const t = performance.now()
  const served = [gatekeeper, asked, other].map((r) => servedAfter(r, version, t))
  const r = await fetch(`${asked.url}/models/${MODEL}/${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ version }),
  })
  const answerMs = performance.now() - t
  const answer = await r.json()
  if (!r.ok) throw new Error(`${op} to ${version} answered ${r.status}: ${JSON.stringify(answer)}`)
  const [gatekeeperMs, askedMs, otherMs] = await Promise.all(served)
  return {
    version,
    answerMs,
    allMs: Math.max(gatekeeperMs, askedMs, otherMs),
    gatekeeperMs,
    askedMs,
    otherMs,
    gatekeeperOwnMs: answer.ms, // what the gatekeeper spent carrying it out
    warm: answer.warm,
  }
}

async function servedAfter(replica, version, since) {
  return (
    (await untilActive(replica.url, MODEL, version, { timeoutMs: TIMEOUT_MS, pollMs: POLL_MS })) -
    since
  )
}

/**
 * Polls each survivor's GET /replicas until it names another gatekeeper than `dead`; they must
 * name the same one, a survivor. Returns ms from `killed` until both did, and who it is.
 */
async function untilNewGatekeeper(survivors, dead, killed) {
  const seen = await Promise.all(
    survivors.map(async (r) => {
      const deadline = killed + TIMEOUT_MS
      for (;;) {
        const { gatekeeper } = await getJson(`${r.url}/replicas`)
        if (gatekeeper !== null && gatekeeper !== dead)
          return { gatekeeper, ms: performance.now() - killed }
        if (performance.now() > deadline)
          throw new Error(`${r.id} still names ${gatekeeper} after ${TIMEOUT_MS} ms`)
        await new Promise((resolve) => setTimeout(resolve, POLL_MS))
      }
    }),
  )
  const named = new Set(seen.map((s) => s.gatekeeper))
  const [id] = named
  if (named.size !== 1 || !survivors.some((r) => r.id === id))
    throw new Error(`after the kill the survivors name ${[...named].join(' and ')}`)
  return { gatekeeper: id, agreedMs: Math.max(...seen.map((s) => s.ms)) }
}

async function getJson(url) {
  const r = await fetch(url)
  const body = await r.json()
  if (!r.ok)
    throw new Error(`GET ${url} answered ${r.status}: ${JSON.stringify(body).slice(0, 200)}`)
  return body
}

function report({ changes, takeovers, loads }) {
  const ms = (rounds, key) => spread(rounds.map((r) => r[key]))
  const met = (rounds, key, target) =>
    Math.max(...rounds.map((r) => r[key])) <= target ? 'yes' : 'NO'
  const follow = (rounds, key) => ({
    target: `every replica within ${FOLLOW_TARGET_MS / 1000} s`,
    'met (worst round)': met(rounds, key, FOLLOW_TARGET_MS),
  })
  const afterTakeover = takeovers.map((t) => t.drop)
  const rows = [
    {
      change: 'warm rollback, sent to a follower',
      'answer ms': ms(changes.rollback, 'answerMs'),
      'until every replica shows it, ms': ms(changes.rollback, 'allMs'),
      ...follow(changes.rollback, 'allMs'),
    },
    {
      change: 'cold promote (gated, then loaded and warmed on the followers), sent to a follower',
      'answer ms': ms(changes.promote, 'answerMs'),
      'until every replica shows it, ms': ms(changes.promote, 'allMs'),
      ...follow(changes.promote, 'allMs'),
    },
    {
      change: 'new version folder renamed into the models directory',
      'answer ms': '',
      'until every replica shows it, ms': ms(changes.drop, 'allMs'),
      ...follow(changes.drop, 'allMs'),
    },
    {
      change: 'gatekeeper killed (SIGKILL): both survivors name the same new gatekeeper',
      'answer ms': '',
      'until every replica shows it, ms': ms(takeovers, 'agreedMs'),
      target: `taken over once stale for ${STALE_LEASE_MS / 1000} s (a dead holder on this host at once)`,
      'met (worst round)': met(takeovers, 'agreedMs', STALE_LEASE_MS),
    },
    {
      change: 'then a new version renamed in: both survivors serve it',
      'answer ms': '',
      'until every replica shows it, ms': ms(afterTakeover, 'allMs'),
      ...follow(afterTakeover, 'allMs'),
    },
  ]
  const admin = [
    ['warm rollback', changes.rollback],
    ['cold promote', changes.promote],
  ].map(([change, rounds]) => ({
    change,
    "the gatekeeper's own time (answer.ms)": ms(rounds, 'gatekeeperOwnMs'),
    'gatekeeper serves it': ms(rounds, 'gatekeeperMs'),
    'asked follower answers': ms(rounds, 'answerMs'),
    'asked follower serves it': ms(rounds, 'askedMs'),
    'other follower serves it': ms(rounds, 'otherMs'),
  }))
  const drops = [
    ['while the gatekeeper has gated before', changes.drop],
    ['right after a takeover', afterTakeover],
  ].map(([when, rounds]) => ({
    'renamed in': when,
    'gatekeeper serves it': ms(rounds, 'gatekeeperMs'),
    'its gate, in the gate process': ms(rounds, 'gateMs'),
    'gate process running at the rename': `${rounds.filter((r) => r.gateProcessRunning).length} of ${rounds.length}`,
    'slowest follower serves it': ms(rounds, 'followersSlowestMs'),
  }))
  const loadRows = loads.map((l) => ({
    replica: l.replica,
    's under load': l.seconds,
    'req/s': l.rps,
    'p50 ms': l.p50,
    'p99 ms': l.p99,
    'max ms': l.max,
    errors: l.errors,
  }))
  return writeReport('replicas', {
    title: 'Replicas: how long until three servers over one state directory serve a change',
    command: 'npm run bench -- replicas',
    data: { replicas: REPLICAS, rounds: ROUNDS, pauseMs: PAUSE_MS, changes, takeovers, loads },
    sections: [
      {
        title: `${REPLICAS} replicas of the example model, each under a light load; median of ${ROUNDS} rounds (range)`,
        body: [
          table(rows),
          '',
          `Each replica answers \`POST /models/${MODEL}/predict\` on one keep-alive connection the whole time (the next request`,
          `${PAUSE_MS} ms after each answer; ${loads[0]?.tool}); no request failed. A replica serves a version once its`,
          `\`GET /models/${MODEL}\` says it is active, polled every ${POLL_MS} ms on each replica from the moment the change is`,
          'made (the POST sent, the folder renamed in, the SIGKILL sent). Each round: a version renamed in (staged',
          'beforehand on the same file system), a rollback to the version before it (retained, a pointer swap), and a',
          'promote of the version rolled back from (released, so gated again and loaded on every follower). Then, five',
          'times, the gatekeeper is killed and a fresh replica started in its place for the next round. Probation is off',
          '(model.json): on a busy machine its p99 rule could roll a version back by itself in the middle of a round.',
        ].join('\n'),
      },
      {
        title:
          'An admin change sent to a follower: where the time goes (ms from the POST, median (range))',
        body: table(admin),
      },
      {
        title: 'A version renamed in: where the time goes (ms from the rename, median (range))',
        body: table(drops),
      },
      { title: 'The light load on each replica', body: table(loadRows) },
    ],
  })
}
