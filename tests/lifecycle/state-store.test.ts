import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  emptyState,
  StateStore,
  STATE_FILE,
  type PersistedState,
} from '../../src/lifecycle/state/state-store.js'

/** state.json: written atomically, read back exactly, never fatal when damaged. */

const sha = (n: number) => n.toString(16).padStart(64, '0')

function stateWith(active: number): PersistedState {
  return {
    format: 1,
    models: {
      iris: {
        active: { version: active, sha256: sha(active) },
        retained: [{ version: 1, sha256: sha(1) }],
        activations: [1, active],
        versions: {
          '1': { sha256: sha(1), verdict: 'passed', at: '2024-01-01T00:00:00.000Z' },
          [String(active)]: {
            sha256: sha(active),
            verdict: 'passed',
            unverified: true,
            at: '2024-01-02T00:00:00.000Z',
          },
          '9': {
            sha256: sha(9),
            verdict: 'rejected',
            stage: 'smoke',
            reason: 'below_min_accuracy',
            message: 'label accuracy 0.3',
            at: '2024-01-03T00:00:00.000Z',
          },
          '7': {
            sha256: sha(7),
            verdict: 'passed',
            at: '2024-01-04T00:00:00.000Z',
            rolledBack: { reason: 'bad answers', at: '2024-01-05T00:00:00.000Z' },
          },
        },
      },
    },
  }
}

let dir: string
beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'modelgate-state-')), '.modelgate')
})
afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }))

describe('StateStore', () => {
  it('starts from an empty state when there is no state file, creating its folder', async () => {
    const store = new StateStore(dir)
    expect(await store.load()).toEqual({ state: emptyState(), problem: undefined })
    expect(await readdir(dir)).toEqual([])
    expect(store.path).toBe(join(dir, STATE_FILE))
  })

  it('reads back exactly what it saved', async () => {
    const store = new StateStore(dir)
    await store.load()
    const state = stateWith(2)
    await store.save(state)
    const again = await new StateStore(dir).load()
    expect(again).toEqual({ state, problem: undefined })
  })

  it('leaves only state.json behind: the temporary file is renamed over it', async () => {
    const store = new StateStore(dir)
    await store.load()
    await store.save(stateWith(2))
    await store.save(stateWith(3))
    expect(await readdir(dir)).toEqual([STATE_FILE])
    expect(JSON.parse(await readFile(store.path, 'utf8'))).toEqual(stateWith(3))
  })

  it('moves a state file that is not JSON aside, reports it, and starts empty', async () => {
    const store = new StateStore(dir)
    await store.load()
    await writeFile(store.path, '{"format": 1, "models": {"iris": ')
    const loaded = await store.load()
    expect(loaded.state).toEqual(emptyState())
    expect(loaded.problem).toContain(store.path)
    expect(loaded.problem).toMatch(/not JSON/)
    const names = await readdir(dir)
    expect(names).not.toContain(STATE_FILE)
    const aside = names.filter((n) => n.startsWith(`${STATE_FILE}.unreadable-`))
    expect(aside).toHaveLength(1)
    // Named with a readable UTC time: state.json.unreadable-2026-12-02T18-34-45-123Z
    expect(aside[0]).toMatch(/^state\.json\.unreadable-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/)
    expect(loaded.problem).toContain(aside[0])
    // The damaged bytes are kept for a human to look at.
    expect(await readFile(join(dir, aside[0]!), 'utf8')).toBe('{"format": 1, "models": {"iris": ')
  })

  it('moves aside a JSON state file that does not fit the schema, naming the path', async () => {
    const store = new StateStore(dir)
    await store.load()
    const bad = stateWith(2) as unknown as { models: { iris: { active: { sha256: string } } } }
    bad.models.iris.active.sha256 = 'not-a-hash'
    await writeFile(store.path, JSON.stringify(bad))
    const loaded = await store.load()
    expect(loaded.state).toEqual(emptyState())
    expect(loaded.problem).toMatch(/models\.iris\.active\.sha256/)
  })

  it('a store that started from a damaged file saves a fresh one that reads back', async () => {
    const store = new StateStore(dir)
    await store.load()
    await writeFile(store.path, 'garbage')
    await store.load()
    await store.save(stateWith(4))
    expect((await new StateStore(dir).load()).state).toEqual(stateWith(4))
  })

  it('removes temporary files left by a crash mid-write, and keeps the state they did not replace', async () => {
    const store = new StateStore(dir)
    await store.load()
    await store.save(stateWith(2))
    await writeFile(join(dir, `${STATE_FILE}.tmp-12345-7`), '{"format": 1, "mod')
    await writeFile(join(dir, `${STATE_FILE}.tmp-999-1`), '')
    const loaded = await new StateStore(dir).load()
    expect(loaded).toEqual({ state: stateWith(2), problem: undefined })
    expect(await readdir(dir)).toEqual([STATE_FILE])
  })

  it('ends concurrent saves with the last state, whole', async () => {
    const store = new StateStore(dir)
    await store.load()
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.save(stateWith(i + 2))))
    await store.flush()
    expect((await new StateStore(dir).load()).state).toEqual(stateWith(21))
    expect(await readdir(dir)).toEqual([STATE_FILE])
  })

  it('saves what the state was when save was called, not later mutations', async () => {
    const store = new StateStore(dir)
    await store.load()
    const state = stateWith(2)
    const saving = store.save(state)
    state.models.iris!.active = { version: 8, sha256: sha(8) }
    await saving
    expect((await new StateStore(dir).load()).state.models.iris!.active).toEqual({
      version: 2,
      sha256: sha(2),
    })
  })

  it('two stores on two folders do not interfere (a server owns its state)', async () => {
    const other = join(dir, '..', 'other')
    const a = new StateStore(dir)
    const b = new StateStore(other)
    await Promise.all([a.load(), b.load()])
    await Promise.all([a.save(stateWith(2)), b.save(stateWith(3))])
    expect((await new StateStore(dir).load()).state).toEqual(stateWith(2))
    expect((await new StateStore(other).load()).state).toEqual(stateWith(3))
  })
})
