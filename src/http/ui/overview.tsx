import type { ModelDetail, VersionView } from '../../dataplane/model-views.js'
import type { ReplicasView } from '../../lifecycle/lifecycle.js'
import type { AdminAccess } from '../admin-auth.js'
import { formatRate, formatTime } from './format.js'
import { AccessNote, HeaderRow, LIVE_COLUMNS, LiveCells, Page } from './layout.js'
import { Sparkline } from './sparkline.js'

export interface OverviewModel {
  readonly detail: ModelDetail
  /** The active version's requests per second, each second of the last minute. */
  readonly lastMinute: readonly number[]
}

/** `/ui`: every model, its active version and how that version is doing now. */
export function OverviewPage({
  models,
  replicas,
  access,
}: {
  models: readonly OverviewModel[]
  replicas: ReplicasView
  access: AdminAccess
}) {
  return (
    <Page title="Models" access={access}>
      <h1>Models</h1>
      <AccessNote access={access} />
      {models.length === 0 ? (
        <p>No models yet: a model is a folder in the models directory.</p>
      ) : (
        <table class="models">
          <caption>
            Figures of each active version over its last 1,000 requests; requests per second over
            the last 10 s.
          </caption>
          <HeaderRow columns={['Model', 'Active', 'State', ...LIVE_COLUMNS]} />
          <tbody>
            {models.map((m) => (
              <ModelRow {...m} />
            ))}
          </tbody>
        </table>
      )}
      {replicas.replicas.length > 1 && <Replicas view={replicas} />}
    </Page>
  )
}

/** Several servers share the state directory: who decides, and whether any is behind. */
function Replicas({ view }: { view: ReplicasView }) {
  const gatekeeper = view.replicas.find((r) => r.id === view.gatekeeper)
  return (
    <section class="replicas">
      <h2>Replicas</h2>
      <table>
        <caption>
          Servers sharing this state directory, from their heartbeats; this page came from{' '}
          {view.self}.
        </caption>
        <HeaderRow columns={['Replica', 'Role', 'Active versions', 'Last seen']} />
        <tbody>
          {view.replicas.map((r) => {
            const behind =
              r.stale ||
              r.behind !== undefined ||
              (gatekeeper !== undefined &&
                Object.entries(gatekeeper.active).some(([m, v]) => r.active[m] !== v))
            return (
              <tr data-replica={r.id}>
                <th scope="row">{r.id}</th>
                <td>{r.role}</td>
                <td>
                  {Object.entries(r.active)
                    .map(([m, v]) => `${m} ${v === null ? '—' : `v${v}`}`)
                    .join(', ')}
                  {behind && <span class="warning"> behind</span>}
                </td>
                <td>
                  {formatTime(r.lastSeen)}
                  {r.stale && ' (stale)'}
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
    </section>
  )
}

function ModelRow({ detail, lastMinute }: OverviewModel) {
  const active = detail.versions.find((v) => v.version === detail.active)
  const live = active?.live
  return (
    <tr data-model={detail.name}>
      <th scope="row">
        <a href={`/ui/models/${encodeURIComponent(detail.name)}`}>{detail.name}</a>
      </th>
      <td>{detail.active === null ? '—' : `v${detail.active}`}</td>
      <td>
        <ModelState detail={detail} active={active} />
      </td>
      <td class="num">
        <div class="rate">
          <Sparkline rates={lastMinute} /> <span>{formatRate(live?.requestsPerSecond)}</span>
        </div>
      </td>
      <LiveCells live={live} />
    </tr>
  )
}

/** Serving or not, and what is under way: a rollout, a probation, drift, a broken model.json. */
export function ModelState({
  detail,
  active,
}: {
  detail: ModelDetail
  active: VersionView | undefined
}) {
  const notes: string[] = []
  if (detail.rollout) {
    const r = detail.rollout
    notes.push(
      r.mode === 'canary'
        ? `canary v${r.version} at ${r.percent}%`
        : `shadow v${r.version} (${r.shadow?.mirrored ?? 0} mirrored)`,
    )
  }
  if (detail.probation) notes.push(`probation until ${formatTime(detail.probation.endsAt)}`)
  if (detail.drift?.detected) notes.push('drift detected')
  if (detail.configError) notes.push('model.json invalid')
  const latest = detail.versions[detail.versions.length - 1]
  return (
    <>
      <span class={`status status-${active ? 'active' : (latest?.status ?? 'none')}`}>
        {active
          ? 'serving'
          : latest
            ? `not serving (v${latest.version} ${latest.status})`
            : 'empty'}
      </span>
      {notes.map((n) => (
        <span class="badge">{n}</span>
      ))}
    </>
  )
}
