import { randomUUID } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type ErrorStatus,
  ForwardedError,
  InternalError,
  NoGatekeeperError,
  ServerError,
} from '../../errors.js'
import type { Logger } from '../../log.js'

/**
 * Admin changes sent to a follower are carried out by the gatekeeper: the follower writes the
 * request into `requests/` in the state directory and waits for its answer beside it; the
 * gatekeeper takes every request it finds, carries it out as if it had been asked itself, and
 * writes the answer. Through the shared directory, not the network: replicas behind one port
 * (`--workers`) cannot address each other, and pods need no route to one another.
 *
 * A request names its deadline: one the gatekeeper finds past it is dropped unanswered (its
 * asker has answered 503 already), so a change is never made after its client gave up. One the
 * gatekeeper took but never answered (it died) is not run again by the next: its asker answers
 * 503, and `GET /models/{name}` says whether the change was made.
 */

const REQUESTS_DIR = 'requests'
/** How often a follower looks for its answer, and the gatekeeper for requests. */
const INBOX_POLL_MS = 100

export type AdminRequest =
  | { readonly op: 'rollback'; readonly model: string; readonly args: unknown }
  | { readonly op: 'promote'; readonly model: string; readonly args: unknown }
  | { readonly op: 'abort'; readonly model: string; readonly args: unknown }

interface RequestFile {
  readonly request: AdminRequest
  readonly from: string
  readonly deadline: number
}

type Answer =
  | { readonly ok: true; readonly result: unknown }
  | {
      readonly ok: false
      readonly error: { code: string; status: ErrorStatus; message: string; details?: unknown }
    }

export class AdminInbox {
  readonly #dir: string
  readonly #from: string
  readonly #logger: Logger
  /** Requests being carried out here now (the gatekeeper), so none runs twice. */
  readonly #running = new Set<string>()

  constructor(o: { stateDir: string; replica: string; logger: Logger }) {
    this.#dir = join(o.stateDir, REQUESTS_DIR)
    this.#from = o.replica
    this.#logger = o.logger
  }

  /**
   * A follower: sends the request to the gatekeeper and resolves with its answer, or rejects with
   * its error (ForwardedError), or NoGatekeeperError when nothing answered within `timeoutMs`.
   */
  async forward(request: AdminRequest, timeoutMs: number): Promise<unknown> {
    await mkdir(this.#dir, { recursive: true })
    const id = `${Date.now()}-${randomUUID()}`
    const deadline = Date.now() + timeoutMs
    const file: RequestFile = { request, from: this.#from, deadline }
    await writeAtomically(join(this.#dir, `${id}.json`), file)
    const answerPath = join(this.#dir, `${id}.answer`)
    for (;;) {
      const answer = await readJson<Answer>(answerPath)
      if (answer) {
        await rm(answerPath, { force: true })
        if (answer.ok) return answer.result
        throw new ForwardedError(answer.error)
      }
      if (Date.now() >= deadline) {
        await rm(join(this.#dir, `${id}.json`), { force: true })
        throw new NoGatekeeperError(
          `no gatekeeper carried out this ${request.op} within ${Math.round(timeoutMs / 1000)} s; nothing was changed. GET /replicas shows which replica holds the lease`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, INBOX_POLL_MS))
    }
  }

  /**
   * The gatekeeper: carries out every request waiting (one at a time, in the order they were
   * sent) and writes each answer. Requests past their deadline are dropped.
   */
  async serve(run: (request: AdminRequest) => Promise<unknown>): Promise<void> {
    let names: string[]
    try {
      names = (await readdir(this.#dir)).sort()
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
      throw e
    }
    await this.#removeLeftovers(names)
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const id = name.slice(0, -'.json'.length)
      if (this.#running.has(id)) continue
      const path = join(this.#dir, name)
      const file = await readJson<RequestFile>(path)
      if (!file) continue // taken meanwhile, or not one of ours
      if (Date.now() >= file.deadline) {
        await rm(path, { force: true })
        continue
      }
      // Taken before it runs: a gatekeeper that dies in the middle leaves it taken, and its
      // successor does not run it a second time (a rollback run twice goes back two versions).
      const taken = join(this.#dir, `${id}.taken`)
      try {
        await rename(path, taken)
      } catch {
        continue
      }
      this.#running.add(id)
      try {
        this.#logger.info('admin_request_forwarded', {
          op: file.request.op,
          model: file.request.model,
          from: file.from,
        })
        const answer = await answerOf(() => run(file.request), this.#logger)
        await writeAtomically(join(this.#dir, `${id}.answer`), answer)
        await rm(taken, { force: true })
      } finally {
        this.#running.delete(id)
      }
    }
  }

  async #removeLeftovers(names: readonly string[]): Promise<void> {
    for (const name of names) {
      if (name.endsWith('.json')) continue
      const path = join(this.#dir, name)
      const mtime = (await stat(path).catch(() => undefined))?.mtimeMs
      if (mtime !== undefined && Date.now() - mtime > LEFTOVER_MS)
        await rm(path, { force: true }).catch(() => undefined)
    }
  }
}

/** Answers nobody came for (the asker stopped), requests taken by a gatekeeper that died. */
const LEFTOVER_MS = 10 * 60_000

async function answerOf(run: () => Promise<unknown>, logger: Logger): Promise<Answer> {
  try {
    return { ok: true, result: await run() }
  } catch (e) {
    const error =
      e instanceof ServerError
        ? e
        : new InternalError('the gatekeeper failed to carry out the request')
    if (!(e instanceof ServerError)) logger.error('admin_request_failed', { error: e })
    return {
      ok: false,
      error: {
        code: error.code,
        status: error.status,
        message: error.message,
        ...(error.details !== undefined && { details: error.details }),
      },
    }
  }
}

async function writeAtomically(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomUUID()}`
  try {
    await writeFile(tmp, JSON.stringify(value))
    await rename(tmp, path) // a reader sees all of it or nothing
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined)
    throw e
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch {
    return undefined
  }
}
