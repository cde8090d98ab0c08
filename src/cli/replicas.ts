import type { ReplicasView } from '../lifecycle/lifecycle.js'
import { timestamp } from './figures.js'
import { positionalsOf, type RemoteCommand } from './remote-command.js'
import { formatTable } from './table.js'

/** `modelgate replicas`: the servers sharing the state directory, and which of them is behind. */
export const replicasCommand: RemoteCommand = {
  synopsis: 'replicas',
  help: `The replicas sharing the server's state directory, from their heartbeats: each one's role
(the gatekeeper, or a follower), its lease generation, its active versions and when it was last
seen; STATE says 'stale' (not seen for 5 s), 'behind' (it does not serve what the gatekeeper
serves, or says why it cannot), else 'ok'. --json prints GET /replicas as is.
`,
  options: {},
  async run(client, _values, positionals) {
    positionalsOf(positionals, [])
    const view = (await client.get('/replicas')) as ReplicasView
    return { json: view, text: replicasTable(view) }
  },
}

function replicasTable(view: ReplicasView): string {
  const gatekeeper = view.replicas.find((r) => r.id === view.gatekeeper)
  const rows = view.replicas.map((r) => [
    r.id === view.self ? `${r.id} (this one)` : r.id,
    r.role,
    r.generation,
    Object.entries(r.active)
      .map(([model, v]) => `${model} ${v ?? '-'}`)
      .join(', '),
    timestamp(r.lastSeen),
    r.stale
      ? 'stale'
      : r.behind !== undefined || behindOf(r.active, gatekeeper?.active)
        ? 'behind'
        : 'ok',
  ])
  const head = `gatekeeper: ${view.gatekeeper ?? 'none'} (generation ${view.generation ?? '-'})\n`
  return (
    head +
    formatTable(
      [
        { header: 'REPLICA' },
        { header: 'ROLE' },
        { header: 'GENERATION', align: 'right' },
        { header: 'ACTIVE' },
        { header: 'LAST SEEN' },
        { header: 'STATE' },
      ],
      rows,
    )
  )
}

/** Serves another version than the gatekeeper does, of a model the gatekeeper serves. */
function behindOf(
  active: Readonly<Record<string, number | null>>,
  gatekeeper: Readonly<Record<string, number | null>> | undefined,
): boolean {
  return gatekeeper !== undefined && Object.entries(gatekeeper).some(([m, v]) => active[m] !== v)
}
