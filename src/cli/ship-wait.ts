import { setTimeout as delay } from 'node:timers/promises'
import { CommandError, EXIT, type ExitCode } from './exit.js'
import { type ModelgateClient, ServerRefusal, Unreachable } from './client.js'

/**
 * `ship --wait`: follows a shipped version through the server's gate (and its rollout, if
 * model.json has one) by reading `GET /models/{name}` until the version serves or is refused.
 */

const UNSEEN = 'the server has not seen'

/** How often the server is asked: a gate of a small model takes well under a second. */
const POLL_MS = 200

/** The parts of `GET /models/{name}` read here. */
interface ModelDetail {
  readonly active: number | null
  readonly versions: readonly VersionView[]
  readonly probation: { readonly version: number; readonly endsAt: string } | null
  readonly rollout: {
    readonly version: number
    readonly mode: string
    readonly percent: number | null
    readonly shadow: { readonly mirrored?: number; readonly needed?: number } | null
  } | null
}

interface VersionView {
  readonly version: number
  readonly status: string
  readonly sha256: string | null
  readonly note?: string
  readonly unverified?: boolean
  readonly stage?: string
  readonly reason?: string
  readonly message?: string
}

export interface Verdict {
  readonly exitCode: ExitCode
  /** One line, for people and for CI logs. */
  readonly line: string
}

type Reading = Verdict | { readonly pending: string }

export interface WaitRequest {
  readonly client: ModelgateClient
  readonly model: string
  readonly version: number
  readonly sha256: string
  /** Where it was shipped, to name in a timeout. */
  readonly modelsDir: string
  readonly timeoutMs: number
  /** Each new state the version passes through, as it is seen. */
  readonly progress: (line: string) => void
}

export async function waitForVerdict(w: WaitRequest): Promise<Verdict> {
  const deadline = Date.now() + w.timeoutMs
  let last = ''
  for (;;) {
    const reading = judge(await readModel(w.client, w.model), w)
    if ('exitCode' in reading) return reading
    if (reading.pending !== last) w.progress(`${w.model} ${w.version}: ${reading.pending}`)
    last = reading.pending
    if (Date.now() >= deadline) {
      // Never seen at all: most often a server watching another models directory.
      const hint = reading.pending.startsWith(UNSEEN)
        ? `: does ${w.client.url} serve ${w.modelsDir}?`
        : ''
      return {
        exitCode: EXIT.timeout,
        line: `${w.model} ${w.version}: no verdict after ${Math.round(w.timeoutMs / 1000)} s (${last}${hint}); it stays shipped and the server carries on`,
      }
    }
    await delay(POLL_MS)
  }
}

/** The model as the server sees it; undefined while it does not list the model (not scanned yet). */
export async function readModel(
  client: ModelgateClient,
  model: string,
): Promise<ModelDetail | undefined> {
  try {
    return (await client.get(`/models/${encodeURIComponent(model)}`)) as ModelDetail
  } catch (e) {
    if (e instanceof ServerRefusal && e.status === 404) return undefined
    if (e instanceof ServerRefusal)
      throw new CommandError(EXIT.refused, `GET /models/${model}: ${e.code}: ${e.message}`)
    if (e instanceof Unreachable) throw new CommandError(EXIT.unreachable, e.message)
    throw e
  }
}

function judge(detail: ModelDetail | undefined, w: WaitRequest): Reading {
  const head = `${w.model} ${w.version}`
  if (!detail) return { pending: `${UNSEEN} the model yet` }
  const v = detail.versions.find((x) => x.version === w.version)
  // A record of other bytes under this number (a version deleted and shipped again): not ours yet.
  if (!v || (v.sha256 !== null && v.sha256 !== w.sha256))
    return { pending: `${UNSEEN} the new version yet` }
  switch (v.status) {
    case 'active': {
      const unverified = v.unverified ? ' (unverified: no smoke cases)' : ''
      const probation =
        detail.probation?.version === w.version
          ? `; on probation until ${detail.probation.endsAt}`
          : ''
      return { exitCode: EXIT.ok, line: `${head}: active${unverified}${probation}` }
    }
    case 'rejected':
      return {
        exitCode: EXIT.refused,
        line: `${head}: rejected at ${v.stage ?? 'its gate'}: ${v.reason ?? 'rejected'}${v.message ? `: ${v.message}` : ''}`,
      }
    case 'rolled_back':
      return { exitCode: EXIT.refused, line: `${head}: rolled back: ${v.reason ?? ''}` }
    case 'retained':
    case 'unloaded':
      return {
        exitCode: EXIT.refused,
        line: `${head}: passed and served, but does not serve now (version ${detail.active ?? 'none'} does)`,
      }
    case 'missing':
      return { exitCode: EXIT.refused, line: `${head}: its file is gone from the models directory` }
    case 'shadow':
    case 'canary':
      return { pending: rolloutProgress(detail, v) }
    case 'discovered':
      // Roll-forward only: a version below the active one is listed, never promoted by itself.
      if (detail.active !== null && detail.active > w.version)
        return {
          exitCode: EXIT.refused,
          line: `${head}: not promoted: version ${detail.active} is active and only newer versions are promoted by themselves (promote it explicitly)`,
        }
      return { pending: v.note ? `waiting: ${v.note}` : 'discovered' }
    default:
      return { pending: v.status }
  }
}

function rolloutProgress(detail: ModelDetail, v: VersionView): string {
  const r = detail.rollout?.version === v.version ? detail.rollout : null
  if (v.status === 'canary')
    return `canary, answering ${r?.percent ?? '?'}% of requests beside version ${detail.active}`
  const s = r?.shadow
  return `shadow beside version ${detail.active}${s?.needed ? ` (${s.mirrored ?? 0} of ${s.needed} mirrored requests)` : ''}`
}
