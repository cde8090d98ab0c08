import type { PromoteResult, RollbackResult } from '../lifecycle/admin/admin-operations.js'
import type { StageResult } from '../lifecycle/gate/gate-types.js'
import type { HistoryEntry } from '../lifecycle/state/history.js'
import { figure, ms, timestamp } from './figures.js'
import { CommandUsageError } from './exit.js'
import { modelPath, positionalsOf, versionArgument, type RemoteCommand } from './remote-command.js'
import { formatTable } from './table.js'

/** The admin API's verbs on the command line: history, rollback, promote. */

const HISTORY_LIMIT = 20
/** The server keeps this many entries per model in memory (history.jsonl keeps every one). */
const HISTORY_MAX = 200

export const historyCommand: RemoteCommand = {
  synopsis: 'history MODEL',
  help: `The model's last lifecycle events, oldest first: promotions, rejections, rollbacks,
probation, rollouts, drift. --json prints GET /models/MODEL/history as is.

  --limit N       the last N entries (default: ${HISTORY_LIMIT}; at most ${HISTORY_MAX})
`,
  options: { limit: { type: 'string' } },
  async run(client, values, positionals) {
    const [model] = positionalsOf(positionals, ['MODEL']) as [string]
    const limit = historyLimit(values.limit as string | undefined)
    const json = (await client.get(`${modelPath(model)}/history?limit=${limit}`)) as {
      entries: HistoryEntry[]
    }
    return { json, text: historyTable(json.entries) }
  },
}

function historyLimit(raw: string | undefined): number {
  if (raw === undefined) return HISTORY_LIMIT
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < 1 || n > HISTORY_MAX)
    throw new CommandUsageError(
      `--limit must be a whole number from 1 to ${HISTORY_MAX}, got '${raw}'`,
    )
  return n
}

function historyTable(entries: readonly HistoryEntry[]): string {
  if (entries.length === 0) return 'no history yet\n'
  return formatTable(
    [
      { header: 'TIME' },
      { header: 'EVENT' },
      { header: 'VERSION', align: 'right' },
      { header: 'TRIGGER' },
      { header: 'DETAIL' },
    ],
    entries.map((e) => [timestamp(e.time), e.event, e.version, e.trigger, entryDetail(e)]),
  )
}

/** What an entry says beyond its event, in a few words; --json has every field. */
function entryDetail(e: HistoryEntry): string {
  return [
    e.from !== undefined && `from ${e.from}`,
    e.to !== undefined && `to ${e.to}`,
    e.warm !== undefined && (e.warm ? 'warm' : 'cold'),
    e.rule &&
      `${e.rule} ${figure(e.observed) ?? '-'} (limit ${figure(e.limit) ?? '-'}, sample ${e.sample})`,
    e.mode && `${e.mode}${e.percent !== undefined ? ` ${e.percent}%` : ''}`,
    e.shadow && `agreement ${figure(e.shadow.agreement) ?? '-'}`,
    e.features?.map((f) => `${f.input}[${f.feature}] psi ${figure(f.psi)}`).join(' '),
    e.unverified && 'unverified',
    e.insufficient && 'a rule never had its sample',
    e.reason,
    e.message,
  ]
    .filter(Boolean)
    .join(', ')
}

export const rollbackCommand: RemoteCommand = {
  synopsis: 'rollback MODEL',
  help: `Serve an earlier version of MODEL again: by default the latest one that served before the
current one (a version rolled back from is left out). A version still loaded swaps in at once
(warm); another is loaded and gated first (cold). --json prints the server's answer as is.

  --to V          roll back to version V
  --reason TEXT   why, for the history (default: "manual rollback")
`,
  options: { to: { type: 'string' }, reason: { type: 'string' } },
  async run(client, values, positionals) {
    const [model] = positionalsOf(positionals, ['MODEL']) as [string]
    const to = values.to === undefined ? undefined : versionArgument(values.to as string, '--to')
    const reason = values.reason as string | undefined
    const json = (await client.post(`${modelPath(model)}/rollback`, {
      ...(to !== undefined && { version: to }),
      ...(reason !== undefined && { reason }),
    })) as RollbackResult
    return {
      json,
      text: `${json.model}: rolled back from version ${json.from} to ${json.to}; ${swapped(json)}; reason: ${json.reason}\n${stageLines(json.stages)}`,
    }
  },
}

export const promoteCommand: RemoteCommand = {
  synopsis: 'promote MODEL VERSION',
  help: `Serve VERSION of MODEL now. A version still loaded swaps in at once (warm); another is loaded
and gated first (cold), and a failed gate is refused (gate_failed, exit 1) with each failed
stage. Probation follows, as after any promotion. --json prints the server's answer as is.

  --force            skip every stage of the gate but loading (overrule a stage on purpose)
  --skip-probation   no probation after this promotion
`,
  options: { force: { type: 'boolean' }, 'skip-probation': { type: 'boolean' } },
  async run(client, values, positionals) {
    const [model, raw] = positionalsOf(positionals, ['MODEL', 'VERSION']) as [string, string]
    const version = versionArgument(raw, 'VERSION')
    const json = (await client.post(`${modelPath(model)}/promote`, {
      version,
      ...(values.force === true && { force: true }),
      ...(values['skip-probation'] === true && { skipProbation: true }),
    })) as PromoteResult
    const from = json.from === null ? '' : `, was ${json.from}`
    return {
      json,
      text: `${json.model}: version ${json.to} serves${from}; ${swapped(json)}\n${stageLines(json.stages)}`,
    }
  },
}

function swapped(r: { warm: boolean; ms: number }): string {
  return `${r.warm ? 'warm: a pointer swap' : 'cold: loaded and gated'} in ${ms(r.ms)} ms`
}

/** A cold swap's gate, one stage a line, as `modelgate validate` prints them. */
function stageLines(stages: readonly StageResult[] | undefined): string {
  return (stages ?? [])
    .map((s) => {
      const why = [s.reason && s.status !== 'passed' ? `[${s.reason}]` : '', s.message ?? '']
        .filter(Boolean)
        .join(' ')
      const took = s.status === 'skipped' ? '' : `${ms(s.ms)} ms`
      return (
        `  ${s.stage.padEnd(10)} ${s.status.padEnd(8)} ${took.padStart(9)}  ${why}`.trimEnd() + '\n'
      )
    })
    .join('')
}
