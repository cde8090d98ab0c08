import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import {
  eventsOf,
  getJson,
  historyOf,
  metricValue,
  modelDetail,
  postJson,
  waitActive,
  waitStatus,
} from '../support/api-client.js'
import { CLI } from '../support/cli-server.js'
import { classifierModel } from '../support/models.js'
import { serve, serveOver } from '../support/servers.js'
import { dropVersion, writeFiles } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'

/**
 * Two replicas over one models and state directory (two servers in this process: the second
 * finds the first holding the gatekeeper lease and follows). Probations and canaries are the
 * gatekeeper's to judge, on every replica's figures: each publishes its own in its heartbeat.
 * `classifierModel([1, 0, 0])` answers label 0 (right: every truth here is 0), `[0, 0, 1]` label 2.
 */

const RIGHT = classifierModel([1, 0, 0])
const WRONG = classifierModel([0, 0, 1])
const X = { inputs: { x: [[0, 0, 0]] } }

async function firstVersion(dir: string, config: Record<string, unknown>): Promise<void> {
  await writeFiles(join(dir, 'm'), { 'model.json': JSON.stringify(config) })
  await dropVersion(dir, 'm', 1, RIGHT)
}

/** `n` predictions on one replica, each followed by feedback there that the truth is label 0. */
async function predictWithTruth(url: string, n: number, prefix: string): Promise<number[]> {
  const versions: number[] = []
  for (let i = 0; i < n; i++) {
    const r = await postJson(`${url}/models/m/predict`, X, { 'x-prediction-id': `${prefix}-${i}` })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    versions.push(r.body.version)
  }
  const items = Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, label: 0 }))
  const f = await postJson(`${url}/models/m/feedback`, { items })
  expect(f.body.accepted).toBe(n)
  return versions
}

/** `modelgate ARGS` (the built CLI): its stdout, once it exited 0. */
async function modelgate(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args])
  return stdout
}

/** The history's entries of `event`, once there is one (an automatic rollback's is written after its swap). */
async function recorded(dir: string, event: string): Promise<any[]> {
  let entries: any[] = []
  await waitFor(async () => {
    entries = await historyEvents(dir, event)
    return entries.length > 0
  }, `${event} in history.jsonl`)
  return entries
}

async function historyEvents(dir: string, event: string): Promise<any[]> {
  const text = await readFile(join(dir, '.modelgate', 'history.jsonl'), 'utf8')
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l))
    .filter((e) => e.event === event)
}

describe('judged across replicas', () => {
  it("a probation is judged on both replicas' feedback: neither has enough alone, together they breach", async () => {
    const gatekeeper = await serve((dir) =>
      firstVersion(dir, { probation: { seconds: 600, minFeedback: 6, latencyRatio: 1000 } }),
    )
    const follower = await serveOver(gatekeeper.modelsDir)
    expect((await getJson(`${follower.url}/replicas`)).body).toMatchObject({
      gatekeeper: (await getJson(`${gatekeeper.url}/replicas`)).body.self,
    })
    await predictWithTruth(gatekeeper.url, 5, 'v1') // the baseline: accuracy 1
    await waitActive(follower.url, 'm', 1)
    const promoted = { model: 'm', result: 'promoted' }
    // 1 if the follower served version 1 at its start (as any server restarting does), none if it
    // followed it (state.json was not written yet when it started).
    const followerBefore = await metricValue(follower.url, 'modelgate_promotions_total', promoted)
    await dropVersion(gatekeeper.modelsDir, 'm', 2, WRONG)
    await waitActive(gatekeeper.url, 'm', 2)
    await waitActive(follower.url, 'm', 2)
    // Version 2's promotion is the gatekeeper's, counted there alone.
    expect(await metricValue(gatekeeper.url, 'modelgate_promotions_total', promoted)).toBe(2)
    expect(await metricValue(follower.url, 'modelgate_promotions_total', promoted)).toBe(
      followerBefore,
    )

    // Three wrong answers on each replica: 3 < minFeedback on each, 6 pooled.
    await predictWithTruth(gatekeeper.url, 3, 'g')
    expect((await modelDetail(gatekeeper.url, 'm')).probation.rules).toContainEqual(
      expect.objectContaining({ rule: 'accuracy', sample: 3, status: 'waiting' }),
    )
    await predictWithTruth(follower.url, 3, 'f')
    await waitActive(gatekeeper.url, 'm', 1, 15_000)
    await waitActive(follower.url, 'm', 1)
    await waitStatus(follower.url, 'm', 2, 'rolled_back')
    const [rollback, ...more] = await recorded(gatekeeper.modelsDir, 'auto_rolled_back')
    expect(more).toEqual([])
    expect(rollback).toMatchObject({ version: 2, rule: 'accuracy', observed: 0, sample: 6 })
    // The follower reads on the history the gatekeeper writes: one entry, on both.
    await waitFor(
      async () => eventsOf(await historyOf(follower.url, 'm'), 'auto_rolled_back', 2).length === 1,
      "the gatekeeper's rollback in the follower's history",
    )
  })

  it('feedback sent to a replica that did not answer the prediction reaches the one that did', async () => {
    const gatekeeper = await serve((dir) =>
      firstVersion(dir, { probation: { seconds: 600, minFeedback: 4, latencyRatio: 1000 } }),
    )
    const follower = await serveOver(gatekeeper.modelsDir)
    await predictWithTruth(gatekeeper.url, 5, 'v1')
    await dropVersion(gatekeeper.modelsDir, 'm', 2, WRONG)
    await waitActive(gatekeeper.url, 'm', 2)
    await waitActive(follower.url, 'm', 2)
    // The follower relays ids it does not know once it has heard of another replica (heartbeats).
    let probe = 0
    await waitFor(async () => {
      const r = await postJson(`${follower.url}/models/m/feedback`, {
        id: `never-${probe++}`,
        label: 0,
      })
      return r.body.relayed !== undefined
    }, 'the follower to relay what it does not know')

    const ids = ['g-0', 'g-1', 'g-2', 'g-3']
    for (const id of ids)
      expect(
        (await postJson(`${gatekeeper.url}/models/m/predict`, X, { 'x-prediction-id': id })).status,
      ).toBe(200)
    const f = await postJson(`${follower.url}/models/m/feedback`, {
      items: ids.map((id) => ({ id, label: 0 })),
    })
    expect(f.body).toEqual({ accepted: 0, unknown: [], duplicates: 0, invalid: [], relayed: ids })
    // The gatekeeper answered them: it scores them, and its probation breaches on them.
    await waitActive(gatekeeper.url, 'm', 1, 15_000)
    const [rollback] = await recorded(gatekeeper.modelsDir, 'auto_rolled_back')
    expect(rollback).toMatchObject({ version: 2, rule: 'accuracy', observed: 0, sample: 4 })
  })

  it('a canary answers the same users with the same version on every replica, at the same share', async () => {
    const config = {
      rollout: { mode: 'canary', stickyHeader: 'x-user-id', steps: [50], stepSeconds: 600 },
      probation: { seconds: 600, minFeedback: 1000, latencyRatio: 1000 },
    }
    const gatekeeper = await serve((dir) => firstVersion(dir, config))
    const follower = await serveOver(gatekeeper.modelsDir)
    await dropVersion(gatekeeper.modelsDir, 'm', 2, RIGHT)
    await waitStatus(gatekeeper.url, 'm', 2, 'canary')
    await waitStatus(follower.url, 'm', 2, 'canary')
    expect((await modelDetail(follower.url, 'm')).rollout).toMatchObject({
      mode: 'canary',
      percent: 50,
    })

    const answeredBy = async (url: string, user: string) =>
      (await postJson(`${url}/models/m/predict`, X, { 'x-user-id': user })).body.version
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}`)
    const onGatekeeper = []
    const onFollower = []
    for (const u of users) {
      onGatekeeper.push(await answeredBy(gatekeeper.url, u))
      onFollower.push(await answeredBy(follower.url, u))
    }
    expect(onFollower).toEqual(onGatekeeper)
    expect(new Set(onGatekeeper)).toEqual(new Set([1, 2])) // both sides of a 50% share

    // An abort sent to the follower is carried out by the gatekeeper; both stop the canary.
    const aborted = await postJson(`${follower.url}/models/m/rollout/abort`, {})
    expect(aborted.body).toEqual({ model: 'm', version: 2, mode: 'canary', active: 1 })
    await waitStatus(gatekeeper.url, 'm', 2, 'rolled_back')
    await waitFor(
      async () => (await modelDetail(follower.url, 'm')).rollout === null,
      'the follower to end the canary',
    )
    for (const u of users.slice(0, 10)) expect(await answeredBy(follower.url, u)).toBe(1)
  })
})

describe('who is who', () => {
  it('GET /replicas and the dashboard list every replica, and mark one not seen for 5 s stale and behind', async () => {
    const gatekeeper = await serve((dir) => firstVersion(dir, {}))
    const follower = await serveOver(gatekeeper.modelsDir)
    await waitActive(follower.url, 'm', 1)
    const ghost = {
      id: 'gone-host-77',
      host: 'gone-host',
      pid: 77,
      startedAt: new Date(Date.now() - 60_000).toISOString(),
      lastSeen: new Date(Date.now() - 10_000).toISOString(),
      role: 'follower',
      generation: 1,
      active: { m: null },
    }
    await writeFiles(join(gatekeeper.modelsDir, '.modelgate', 'replicas'), {
      'gone-host-77.json': JSON.stringify(ghost),
    })
    let view: any
    await waitFor(async () => {
      view = (await getJson(`${follower.url}/replicas`)).body
      return view.replicas.length === 3
    }, 'both replicas and the ghost in GET /replicas')
    const roles = Object.fromEntries(view.replicas.map((r: any) => [r.id, [r.role, r.stale]]))
    expect(roles[view.gatekeeper]).toEqual(['gatekeeper', false])
    expect(roles[view.self]).toEqual(['follower', false])
    expect(roles['gone-host-77']).toEqual(['follower', true])
    expect(view.replicas.every((r: any) => r.figures === undefined)).toBe(true)
    expect(await metricValue(gatekeeper.url, 'modelgate_gatekeeper')).toBe(1)
    expect(await metricValue(follower.url, 'modelgate_gatekeeper')).toBe(0)
    // Version 1 has no smoke cases: the gatekeeper warns once, not every replica that follows it.
    expect(gatekeeper.logs.filter((l) => l.event === 'version_unverified')).toHaveLength(1)
    expect(follower.logs.filter((l) => l.event === 'version_unverified')).toEqual([])

    // The same on the command line: a table, and --json as GET /replicas answers.
    const table = await modelgate(['replicas', '--url', follower.url])
    expect(table.split('\n')[0]).toBe(`gatekeeper: ${view.gatekeeper} (generation 1)`)
    expect(table.split('\n')[1]).toMatch(
      /^REPLICA\s+ROLE\s+GENERATION\s+ACTIVE\s+LAST SEEN\s+STATE$/,
    )
    expect(table).toMatch(
      new RegExp(`${view.self} \\(this one\\)\\s+follower\\s+1\\s+m 1\\s.*\\sok\n`),
    )
    expect(table).toMatch(/gone-host-77\s+follower\s+1\s+m -\s.*\sstale\n/)
    const json = JSON.parse(await modelgate(['replicas', '--url', follower.url, '--json']))
    expect(json.replicas.map((r: any) => r.id).sort()).toEqual(
      view.replicas.map((r: any) => r.id).sort(),
    )

    const html = await (await fetch(`${follower.url}/ui`)).text()
    expect(html).toContain('<h2>Replicas</h2>')
    const ghostRow = html.slice(html.indexOf('data-replica="gone-host-77"'))
    expect(ghostRow.slice(0, ghostRow.indexOf('</tr>'))).toMatch(/behind[\s\S]*\(stale\)/)
  })
})
