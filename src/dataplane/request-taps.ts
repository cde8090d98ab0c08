import type { LoadedVersion } from '../lifecycle/versions/loaded-version.js'
import type { ModelView } from '../lifecycle/versions/version-state.js'
import type { Feeds, Fetches } from '../runtime/feeds.js'

/**
 * What watches a model's requests beside answering them: drift counters, the payload log, a
 * shadow candidate. Each tap sees a request's feeds before it runs and, if it asks to, its answer.
 */

/** The request a tap is shown. */
export interface TapRequest {
  readonly model: ModelView
  /** The version that answers it. */
  readonly version: LoadedVersion
  /** True when the server chose the version (the active one, or a canary); false when the client named it. */
  readonly routed: boolean
}

/** What a tap does once the request's answer is ready (never called for a failed request). */
export interface TapFollowUp {
  /**
   * The feeds must still be readable after the run: a worker may otherwise take their buffers
   * (a copy is made for the worker instead).
   */
  readonly keepFeeds?: boolean
  /** `fetched` holds the outputs the client asked for; the prediction's id is the client's answer id. */
  after(id: string, fetched: Fetches, feeds: Feeds): void
}

export interface RequestTap {
  /**
   * Called on the request path with the decoded feeds, before they run: it must cost at most a pass
   * over the feeds, and never await. Undefined: nothing to do after the answer.
   */
  observe(request: TapRequest, feeds: Feeds): TapFollowUp | undefined
}

/** The follow-ups of every tap that asked for one, as one (undefined when none did). */
export function observeAll(
  taps: readonly RequestTap[],
  request: TapRequest,
  feeds: Feeds,
): TapFollowUp | undefined {
  const all: TapFollowUp[] = []
  for (const tap of taps) {
    const f = tap.observe(request, feeds)
    if (f) all.push(f)
  }
  if (all.length <= 1) return all[0]
  return {
    keepFeeds: all.some((f) => f.keepFeeds === true),
    after: (id, fetched, feeds) => {
      for (const f of all) f.after(id, fetched, feeds)
    },
  }
}
