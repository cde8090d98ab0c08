import type {
  LiveView,
  ModelDetail,
  ProbationView,
  RolloutView,
  VersionView,
} from '../../dataplane/model-views.js'
import type { StageResult } from '../../lifecycle/gate/gate-types.js'
import type { RuleResult } from '../../lifecycle/promotion/probation-rules.js'
import type { HistoryEntry } from '../../lifecycle/state/history.js'
import type { AdminAccess } from '../admin-auth.js'
import { formatMs, formatNumber, formatRate, formatShare, formatTime } from './format.js'
import { AccessNote, HeaderRow, LIVE_COLUMNS, LiveCells, Page } from './layout.js'
import { ModelState } from './overview.js'
import { Sparkline } from './sparkline.js'

export interface ModelPageProps {
  readonly detail: ModelDetail
  readonly access: AdminAccess
  /** The active version's requests per second, each second of the last minute. */
  readonly lastMinute: readonly number[]
  /** Newest first; undefined when this client may not read it (an admin route). */
  readonly history: readonly HistoryEntry[] | undefined
}

/** Versions a promote can serve: passed once or never tried; not one that is on its way. */
const PROMOTABLE = new Set([
  'discovered',
  'retained',
  'unloaded',
  'rolled_back',
  'shadow',
  'canary',
])

/** `/ui/models/{name}`: one model's versions, what is under way, drift and history. */
export function ModelPage({ detail, access, lastMinute, history }: ModelPageProps) {
  const active = detail.versions.find((v) => v.version === detail.active)
  const actions = access !== 'loopback_only'
  return (
    <Page title={detail.name} access={access} model={detail.name}>
      <p class="crumbs">
        <a href="/ui">Models</a> /
      </p>
      <h1>{detail.name}</h1>
      <p class="state">
        {detail.active === null ? 'No active version.' : `Version ${detail.active} serves. `}
        <ModelState detail={detail} active={active} />
      </p>
      <AccessNote access={access} />
      {detail.configError && <p class="warning">model.json: {detail.configError}</p>}
      {detail.warnings.map((w) => (
        <p class="warning">{w}</p>
      ))}
      {actions && active && (
        <form class="needs-js action" data-action="rollback">
          <label for="rollback-reason">Reason (for the history)</label>
          <input id="rollback-reason" name="reason" maxlength={500} placeholder="optional" />
          <button type="submit">Roll back v{active.version}</button>
        </form>
      )}
      {active?.live && <LiveFigures live={active.live} lastMinute={lastMinute} />}
      {detail.rollout && <Rollout rollout={detail.rollout} actions={actions} />}
      {detail.probation && <Probation probation={detail.probation} />}
      <Versions detail={detail} actions={actions} />
      <Drift detail={detail} />
      <History history={history} />
    </Page>
  )
}

function LiveFigures({ live, lastMinute }: { live: LiveView; lastMinute: readonly number[] }) {
  return (
    <section aria-labelledby="live-title">
      <h2 id="live-title">Now</h2>
      <dl class="figures">
        <div>
          <dt>Requests</dt>
          <dd>
            {formatRate(live.requestsPerSecond)} <Sparkline rates={lastMinute} />
          </dd>
        </div>
        <div>
          <dt>Error rate</dt>
          <dd>{formatShare(live.errorRate)}</dd>
        </div>
        <div>
          <dt>p50 / p99</dt>
          <dd>
            {formatMs(live.p50Ms)} / {formatMs(live.p99Ms)}
          </dd>
        </div>
        <div>
          <dt>Accuracy</dt>
          <dd>
            {formatShare(live.accuracy)} <small>({live.feedback} feedback)</small>
          </dd>
        </div>
      </dl>
    </section>
  )
}

function Rollout({ rollout: r, actions }: { rollout: RolloutView; actions: boolean }) {
  return (
    <section aria-labelledby="rollout-title">
      <h2 id="rollout-title">
        Rollout: {r.mode} of v{r.version} against v{r.against}
      </h2>
      <p>
        Started {formatTime(r.startedAt)}.
        {r.mode === 'canary' &&
          ` Step ${(r.step ?? 0) + 1} of ${r.steps?.length}: ${r.percent}% of requests${r.stepEndsAt ? `, until ${formatTime(r.stepEndsAt)}` : ''}.`}
      </p>
      {r.shadow && (
        <p>
          Mirrored {r.shadow.mirrored} of the {r.shadow.needed} needed; agreement{' '}
          {formatShare(r.shadow.agreement)} (at least {formatShare(r.shadow.min)} to pass);{' '}
          {r.shadow.dropped} dropped, {r.shadow.failed} failed.
        </p>
      )}
      {r.rules && <Rules rules={r.rules} caption="This step, against the active version" />}
      {actions && (
        <button type="button" class="needs-js action danger" data-action="abort">
          Abort the rollout
        </button>
      )}
    </section>
  )
}

function Probation({ probation: p }: { probation: ProbationView }) {
  return (
    <section aria-labelledby="probation-title">
      <h2 id="probation-title">
        Probation: v{p.version} against v{p.previous}
      </h2>
      <p>
        From {formatTime(p.startedAt)} until {formatTime(p.endsAt)}; a breach rolls back to v
        {p.previous}.
      </p>
      <Rules rules={p.rules} caption="Each rule as it stands" />
    </section>
  )
}

function Rules({ rules, caption }: { rules: readonly RuleResult[]; caption: string }) {
  return (
    <table class="rules">
      <caption>{caption}</caption>
      <HeaderRow
        columns={['Rule', { num: 'Observed' }, { num: 'Limit' }, { num: 'Sample' }, 'Status']}
      />
      <tbody>
        {rules.map((r) => (
          <tr>
            <th scope="row">{r.rule.replace('_', ' ')}</th>
            <td class="num">{ruleFigure(r.rule, r.observed)}</td>
            <td class="num">{ruleFigure(r.rule, r.limit)}</td>
            <td class="num">
              {r.sample} / {r.needed}
            </td>
            <td>
              <span class={`status status-${r.status}`}>{r.status.replace('_', ' ')}</span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function ruleFigure(rule: RuleResult['rule'], x: number | null): string {
  if (rule === 'latency') return formatMs(x)
  return rule === 'mae' ? formatNumber(x) : formatShare(x)
}

function Versions({ detail, actions }: { detail: ModelDetail; actions: boolean }) {
  return (
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <table class="versions">
        <HeaderRow
          columns={['Version', 'State', 'Gate', ...LIVE_COLUMNS, ...(actions ? ['Actions'] : [])]}
        />
        <tbody>
          {[...detail.versions].reverse().map((v) => (
            <tr data-version={v.version} data-status={v.status}>
              <th scope="row">
                v{v.version} <small>{v.source}</small>
              </th>
              <td>
                <span class={`status status-${v.status}`}>{v.status.replace('_', ' ')}</span>
                <VersionReason version={v} />
              </td>
              <td>{v.gate ? <Stages stages={v.gate.stages} /> : '—'}</td>
              <td class="num">{formatRate(v.live?.requestsPerSecond)}</td>
              <LiveCells live={v.live} />
              {actions && (
                <td>
                  {PROMOTABLE.has(v.status) && (
                    <button
                      type="button"
                      class="needs-js action"
                      data-action="promote"
                      data-version={v.version}
                    >
                      Promote v{v.version}
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function VersionReason({ version: v }: { version: VersionView }) {
  const why = [v.stage && `at ${v.stage}`, v.reason, v.note, v.rolledBack?.reason]
    .filter(Boolean)
    .join(' · ')
  return (
    <>
      {why && <small class="why">{why}</small>}
      {v.message && <small class="why">{v.message}</small>}
    </>
  )
}

const STAGE_MARK = { passed: '✓', skipped: '–', failed: '✗' } as const

function Stages({ stages }: { stages: readonly StageResult[] }) {
  return (
    <ul class="stages">
      {stages.map((s) => (
        <li class={`stage stage-${s.status}`} title={s.message ?? s.reason ?? s.status}>
          <span aria-hidden="true">{STAGE_MARK[s.status]}</span> {s.stage}{' '}
          <span class="visually-hidden">{s.status}</span>
          {s.status !== 'skipped' && <small>{formatMs(s.ms)}</small>}
        </li>
      ))}
    </ul>
  )
}

function Drift({ detail }: { detail: ModelDetail }) {
  const d = detail.drift
  return (
    <section aria-labelledby="drift-title">
      <h2 id="drift-title">Drift</h2>
      {!d ? (
        <p>Not watched: model.json has no `drift`, or nothing serves.</p>
      ) : (
        <>
          <p>
            {d.detected ? 'Drift detected. ' : 'No drift detected. '}
            Reference: {d.reference === 'first_window' ? 'the first window served' : d.reference} (
            {d.referenceRows} rows{d.referenceReady ? '' : ', still being taken'}); live window:{' '}
            {d.liveRows} rows.
            {d.referenceError && ` reference.json not used: ${d.referenceError}`}
          </p>
          {d.features.length > 0 && (
            <table class="drift">
              <caption>Population stability index of each feature (0: unchanged)</caption>
              <HeaderRow columns={['Input', 'Feature', { num: 'PSI' }]} />
              <tbody>
                {d.features.map((f) => (
                  <tr>
                    <td>{f.input}</td>
                    <td>{f.feature === '' ? '(value)' : f.feature}</td>
                    <td class="num">
                      <meter
                        min={0}
                        max={1}
                        low={0.1}
                        high={0.2}
                        optimum={0}
                        value={Math.min(f.psi, 1)}
                        aria-hidden="true"
                      />{' '}
                      {formatNumber(f.psi)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  )
}

function History({ history }: { history: readonly HistoryEntry[] | undefined }) {
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      {!history ? (
        <p class="note">
          The history is an admin route: it shows once this page has the admin token.
        </p>
      ) : history.length === 0 ? (
        <p>Nothing recorded yet.</p>
      ) : (
        <ol class="timeline">
          {history.map((e) => (
            <li class={`event event-${e.event}`}>
              <time datetime={e.time}>{formatTime(e.time)}</time>{' '}
              <strong>{e.event.replaceAll('_', ' ')}</strong> v{e.version}
              {e.to !== undefined && ` → v${e.to}`}
              {e.from !== undefined && ` (from v${e.from})`} <small>{entryDetails(e)}</small>
            </li>
          ))}
        </ol>
      )}
    </section>
  )
}

function entryDetails(e: HistoryEntry): string {
  return [
    e.trigger,
    e.reason,
    e.rule && `${e.rule} ${formatNumber(e.observed)} vs ${formatNumber(e.limit)}`,
    e.warm !== undefined && (e.warm ? 'warm' : 'cold'),
    e.message,
  ]
    .filter(Boolean)
    .join(' · ')
}
