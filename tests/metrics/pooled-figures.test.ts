import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PeerFigures } from '../../src/lifecycle/replicas/peer-figures.js'
import { LiveWindow, pooledSnapshot } from '../../src/metrics/live-figures.js'

/**
 * Replicas publish their windows' raw figures and the gatekeeper pools them: the pooled figures
 * must be exactly those of one window that saw every replica's requests and feedback.
 */

type Event =
  | { kind: 'request'; ok: boolean; ms: number }
  | { kind: 'label'; right: boolean }
  | { kind: 'value'; err: number }

const event: fc.Arbitrary<Event> = fc.oneof(
  fc.record({
    kind: fc.constant('request' as const),
    ok: fc.boolean(),
    ms: fc.double({ min: 0.001, max: 1000, noNaN: true }),
  }),
  fc.record({ kind: fc.constant('label' as const), right: fc.boolean() }),
  fc.record({
    kind: fc.constant('value' as const),
    err: fc.double({ min: 0, max: 50, noNaN: true }),
  }),
)

function record(w: LiveWindow, e: Event): void {
  if (e.kind === 'request') w.recordRequest(e.ok, e.ms)
  else if (e.kind === 'label') w.recordLabel(e.right)
  else w.recordValue(e.err)
}

describe('pooled figures', () => {
  it('pooling the replicas’ samples gives the figures of one window that saw everything', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(2), event), { maxLength: 300 }), (events) => {
        const replicas = [new LiveWindow(), new LiveWindow(), new LiveWindow()]
        const all = new LiveWindow()
        for (const [i, e] of events) {
          record(replicas[i]!, e)
          record(all, e)
        }
        const pooled = pooledSnapshot(replicas.map((w) => w.sample()))
        const one = all.snapshot()
        expect(pooled.requests).toBe(one.requests)
        expect(pooled.errors).toBe(one.errors)
        expect(pooled.p50Ms).toBe(one.p50Ms)
        expect(pooled.p99Ms).toBe(one.p99Ms)
        expect(pooled.labels).toBe(one.labels)
        expect(pooled.values).toBe(one.values)
        expect(pooled.accuracy).toBe(one.accuracy)
        if (one.mae === null) expect(pooled.mae).toBeNull()
        else expect(pooled.mae).toBeCloseTo(one.mae, 9)
      }),
    )
  })

  it('no sample at all: no figure', () => {
    expect(pooledSnapshot([])).toMatchObject({ requests: 0, p99Ms: null, accuracy: null })
  })
})

describe('the figures other replicas published', () => {
  const sample = (requests: number) => ({
    requests,
    errors: 0,
    latencies: Array.from({ length: requests }, () => 1),
    labels: 0,
    right: 0,
    values: 0,
    absErrorSum: 0,
  })
  const beat = (id: string, ageMs: number, figures: unknown) => ({
    id,
    lastSeen: new Date(Date.now() - ageMs).toISOString(),
    figures,
  })
  const sha = 'a'.repeat(64)

  it('counts only fresh heartbeats of other replicas, for the same version, bytes and step', () => {
    const peers = new PeerFigures()
    peers.update(
      [
        beat('self', 0, { iris: { probation: { version: 2, sha256: sha, sample: sample(1) } } }),
        beat('b', 100, { iris: { probation: { version: 2, sha256: sha, sample: sample(2) } } }),
        beat('c', 60_000, { iris: { probation: { version: 2, sha256: sha, sample: sample(4) } } }),
        beat('d', 100, { iris: { probation: { version: 3, sha256: sha, sample: sample(8) } } }),
        beat('e', 100, {
          iris: { probation: { version: 2, sha256: 'b'.repeat(64), sample: sample(16) } },
        }),
        beat('f', 100, {
          iris: {
            canary: { version: 3, sha256: sha, step: 1, candidate: sample(32), active: sample(64) },
          },
        }),
        beat('g', 100, {
          iris: {
            canary: { version: 3, sha256: sha, step: 0, candidate: sample(128), active: sample(1) },
          },
        }),
        beat('h', 100, {
          iris: { probation: { version: 2, sha256: sha, sample: { requests: 'x' } } },
        }),
      ],
      { self: 'self', freshMs: 5000 },
    )
    expect(peers.probation('iris', 2, sha).map((s) => s.requests)).toEqual([2])
    const canary = peers.canary('iris', 3, sha, 1)
    expect(canary.candidate.map((s) => s.requests)).toEqual([32])
    expect(canary.active.map((s) => s.requests)).toEqual([64])
    expect(peers.probation('other', 2, sha)).toEqual([])
  })
})
