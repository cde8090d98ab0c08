import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConflictError, ForwardedError, NoGatekeeperError } from '../../src/errors.js'
import { AdminInbox } from '../../src/lifecycle/replicas/admin-inbox.js'
import { createMemoryLogger } from '../../src/log.js'
import { makeTempDir } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/**
 * Admin changes a follower is asked for are carried out by the gatekeeper, through files in the
 * state directory: answered with the gatekeeper's answer or error, run once, never after the
 * asker gave up.
 */

function inboxes(dir: string) {
  const logger = createMemoryLogger()
  return {
    follower: new AdminInbox({ stateDir: dir, replica: 'follower', logger }),
    gatekeeper: new AdminInbox({ stateDir: dir, replica: 'gatekeeper', logger }),
    logger,
  }
}

/** The gatekeeper's ticks until `done` settles. */
function serving(inbox: AdminInbox, run: (r: unknown) => Promise<unknown>, done: Promise<unknown>) {
  let over = false
  void done.finally(() => (over = true)).catch(() => undefined)
  return (async () => {
    while (!over) {
      await inbox.serve(run)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
}

describe('admin changes forwarded to the gatekeeper', () => {
  it("answers with the gatekeeper's result, and leaves no file behind", async () => {
    const dir = await makeTempDir('modelgate-inbox-')
    const { follower, gatekeeper } = inboxes(dir)
    const seen: unknown[] = []
    const asked = follower.forward({ op: 'rollback', model: 'iris', args: { version: 1 } }, 10_000)
    await serving(
      gatekeeper,
      async (r) => {
        seen.push(r)
        return { model: 'iris', from: 2, to: 1 }
      },
      asked,
    )
    expect(await asked).toEqual({ model: 'iris', from: 2, to: 1 })
    expect(seen).toEqual([{ op: 'rollback', model: 'iris', args: { version: 1 } }])
    expect(await readdir(join(dir, 'requests'))).toEqual([])
  })

  it("answers with the gatekeeper's error: same code, status and message", async () => {
    const dir = await makeTempDir('modelgate-inbox-')
    const { follower, gatekeeper } = inboxes(dir)
    const asked = follower.forward({ op: 'rollback', model: 'iris', args: {} }, 10_000)
    const failure = asked.catch((e: unknown) => e)
    await serving(
      gatekeeper,
      async () => {
        throw new ConflictError("model 'iris' has no earlier version to roll back to")
      },
      asked,
    )
    const e = await failure
    expect(e).toBeInstanceOf(ForwardedError)
    expect(e).toMatchObject({
      code: 'conflict',
      status: 409,
      message: "model 'iris' has no earlier version to roll back to",
    })
  })

  it('with no gatekeeper: 503 no_gatekeeper at the deadline, and the request is withdrawn, never run later', async () => {
    const dir = await makeTempDir('modelgate-inbox-')
    const { follower, gatekeeper } = inboxes(dir)
    const e = await follower
      .forward({ op: 'promote', model: 'iris', args: { version: 3 } }, 300)
      .catch((err: unknown) => err)
    expect(e).toBeInstanceOf(NoGatekeeperError)
    expect((e as NoGatekeeperError).status).toBe(503)
    let ran = 0
    await gatekeeper.serve(async () => ran++)
    expect(ran).toBe(0)
  })

  it('a request a gatekeeper took and never answered (it died) is not run again by the next', async () => {
    const dir = await makeTempDir('modelgate-inbox-')
    const { follower, gatekeeper, logger } = inboxes(dir)
    const asked = follower
      .forward({ op: 'rollback', model: 'iris', args: {} }, 1500)
      .catch((e: unknown) => e)
    // The first gatekeeper takes it and hangs (as if killed mid-change).
    let started = false
    const hang = () => {
      started = true
      return new Promise(() => {})
    }
    await waitFor(() => {
      if (!started) void gatekeeper.serve(hang)
      return started
    }, 'the first gatekeeper to take the request')
    const next = new AdminInbox({ stateDir: dir, replica: 'next', logger })
    let ranAgain = 0
    await next.serve(async () => ranAgain++)
    expect(ranAgain).toBe(0)
    expect(await asked).toBeInstanceOf(NoGatekeeperError)
  })
})
