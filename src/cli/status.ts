import type {
  ModelDetail,
  ModelSummary,
  ProbationView,
  RolloutView,
  VersionView,
} from '../dataplane/model-views.js'
import type { DriftView } from '../dataplane/drift/drift-monitor.js'
import { ServerRefusal, type ModelgateClient } from './client.js'
import { errors, figure, indent, ms, rulesTable, timestamp } from './figures.js'
import { modelPath, positionalsOf, type Answer, type RemoteCommand } from './remote-command.js'
import { formatTable, type Column } from './table.js'

/** `modelgate status [MODEL]`: every model on one line each, or one model's versions in full. */
export const statusCommand: RemoteCommand = {
  synopsis: 'status [MODEL]',
  help: `Without MODEL: every model, one line each: its active version, its versions' states, the
active version's live figures (over its last 1,000 requests and feedback items) and any
probation or rollout in progress. With MODEL: each version with its status, why, and its live
figures, then the model's probation, rollout and drift.
--json prints GET /models/MODEL as is; without MODEL, {"models": [...]} holding that answer for
every model.
`,
  options: {},
  async run(client, _values, positionals) {
    const [model] = positionalsOf(positionals, [], ['MODEL'])
    return model === undefined ? overview(client) : modelStatus(client, model)
  },
}

async function overview(client: ModelgateClient): Promise<Answer> {
  const { models } = (await client.get('/models')) as { models: ModelSummary[] }
  const details = await Promise.all(models.map((m) => detailUnlessGone(client, m.name)))
  const present = details.filter((d): d is ModelDetail => d !== undefined)
  return { json: { models: present }, text: overviewTable(present) }
}

/** A model removed between the list and its own read is left out, not an error. */
async function detailUnlessGone(
  client: ModelgateClient,
  name: string,
): Promise<ModelDetail | undefined> {
  try {
    return (await client.get(modelPath(name))) as ModelDetail
  } catch (e) {
    if (e instanceof ServerRefusal && e.code === 'model_not_found') return undefined
    throw e
  }
}

const LIVE_COLUMNS: readonly Column[] = [
  { header: 'REQUESTS', align: 'right' },
  { header: 'ERRORS', align: 'right' },
  { header: 'P99 MS', align: 'right' },
  { header: 'ACCURACY', align: 'right' },
]

function overviewTable(models: readonly ModelDetail[]): string {
  if (models.length === 0) return 'no models\n'
  return formatTable(
    [
      { header: 'MODEL' },
      { header: 'ACTIVE', align: 'right' },
      { header: 'STATE' },
      { header: 'VERSIONS' },
      ...LIVE_COLUMNS,
      { header: 'IN PROGRESS' },
    ],
    models.map((m) => {
      const live = m.versions.find((v) => v.version === m.active)?.live
      return [
        m.name,
        m.active,
        modelState(m),
        statusCounts(m.versions),
        live?.requests,
        live && errors(live.errors, live.errorRate),
        ms(live?.p99Ms),
        figure(live?.accuracy),
        inProgress(m),
      ]
    }),
  )
}

function modelState(m: ModelDetail): string {
  const state = [m.active === null ? 'not serving' : 'serving']
  if (m.configError) state.push('config error')
  if (m.warnings.length > 0) state.push(`${m.warnings.length} warning(s)`)
  return state.join(', ')
}

/** `1 active, 1 retained, 2 rejected`, in the order the statuses first appear. */
function statusCounts(versions: readonly VersionView[]): string {
  const counts = new Map<string, number>()
  for (const v of versions) counts.set(v.status, (counts.get(v.status) ?? 0) + 1)
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ')
}

function inProgress(m: ModelDetail): string {
  return [
    m.probation && `probation of ${probationLine(m.probation)}`,
    m.rollout && rolloutLine(m.rollout),
  ]
    .filter(Boolean)
    .join('; ')
}

function probationLine(p: ProbationView): string {
  const breached = p.rules.filter((r) => r.status === 'breached').map((r) => r.rule)
  return `version ${p.version} against version ${p.previous} until ${timestamp(p.endsAt)}${breached.length ? ` (breached: ${breached.join(', ')})` : ''}`
}

function rolloutLine(r: RolloutView): string {
  if (r.mode === 'canary')
    return `canary of version ${r.version} against version ${r.against}: ${r.percent}% (step ${(r.step ?? 0) + 1} of ${r.steps?.length}) until ${timestamp(r.stepEndsAt)}`
  const s = r.shadow
  return `shadow of version ${r.version} against version ${r.against}: ${s ? `${s.mirrored}/${s.needed} mirrored, agreement ${figure(s.agreement) ?? '-'} (min ${s.min})` : 'starting'}`
}

async function modelStatus(client: ModelgateClient, model: string): Promise<Answer> {
  const detail = (await client.get(modelPath(model))) as ModelDetail
  return { json: detail, text: modelReport(detail) }
}

function modelReport(m: ModelDetail): string {
  const serving = m.active === null ? 'no version serves' : `version ${m.active} serves`
  const retained = m.retained.length ? `; retained (a warm rollback): ${m.retained.join(', ')}` : ''
  const versions = formatTable(
    [
      { header: 'VERSION', align: 'right' },
      { header: 'STATUS' },
      { header: 'REQUESTS', align: 'right' },
      { header: 'ERRORS', align: 'right' },
      { header: 'P50 MS', align: 'right' },
      { header: 'P99 MS', align: 'right' },
      { header: 'ACCURACY', align: 'right' },
      { header: 'REASON' },
    ],
    m.versions.map((v) => [
      v.version,
      v.status,
      v.live?.requests,
      v.live && errors(v.live.errors, v.live.errorRate),
      ms(v.live?.p50Ms),
      ms(v.live?.p99Ms),
      figure(v.live?.accuracy),
      versionReason(v),
    ]),
  )
  return [
    `${m.name}: ${serving}${retained}\n`,
    versions,
    m.configError ? `config error: ${m.configError}\n` : '',
    ...m.warnings.map((w) => `warning: ${w}\n`),
    m.probation
      ? `probation: ${probationLine(m.probation)}\n${rulesTable(m.probation.rules)}`
      : 'probation: none\n',
    m.rollout
      ? `rollout: ${rolloutLine(m.rollout)}\n${m.rollout.rules ? rulesTable(m.rollout.rules) : ''}`
      : 'rollout: none\n',
    m.drift ? driftReport(m.drift) : 'drift: not watched (no "drift" in model.json)\n',
  ].join('')
}

/** Why a version is where it is, from whichever fields its status carries. */
function versionReason(v: VersionView): string {
  return [
    v.note,
    // A rejection reads as `smoke: wrong_output: case 'x' ...`, as the history and the log say it.
    [v.stage, v.reason, v.message].filter(Boolean).join(': '),
    v.rolledBack && `rolled back ${timestamp(v.rolledBack.at)}: ${v.rolledBack.reason}`,
    v.unverified && 'unverified (forced past its gate)',
    v.file &&
      `its file now holds other bytes (${v.file.verdict}${v.file.reason ? `: ${v.file.reason}` : ''})`,
    !v.onDisk && 'file deleted',
  ]
    .filter(Boolean)
    .join('; ')
}

function driftReport(d: DriftView): string {
  const head = `drift: ${d.detected ? 'DETECTED' : 'none detected'} (reference: ${d.reference}, ${d.referenceRows} rows${d.referenceReady ? '' : ', not ready'}; ${d.liveRows} live rows)${d.referenceError ? `; reference.json: ${d.referenceError}` : ''}\n`
  if (d.features.length === 0) return head
  return (
    head +
    indent(
      formatTable(
        [{ header: 'INPUT' }, { header: 'FEATURE' }, { header: 'PSI', align: 'right' }],
        d.features.map((f) => [f.input, f.feature, figure(f.psi)]),
      ),
    )
  )
}
