import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'

/** deploy/grafana/modelgate-dashboard.json, and the PromQL it sends. */

type Obj = Record<string, any>

export const dashboard = JSON.parse(
  readFileSync(
    join(import.meta.dirname, '..', '..', 'deploy', 'grafana', 'modelgate-dashboard.json'),
    'utf8',
  ),
) as Obj

export interface Query {
  readonly where: string
  readonly expr: string
}

/** Every PromQL expression of the dashboard: panel targets, annotations, template variables. */
export function dashboardQueries(): Query[] {
  const out: Query[] = []
  const walk = (panels: Obj[]) => {
    for (const p of panels) {
      for (const t of (p.targets ?? []) as Obj[])
        if (t.expr !== undefined) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr })
      walk(p.panels ?? [])
    }
  }
  walk(dashboard.panels)
  for (const a of dashboard.annotations.list as Obj[])
    if (a.expr !== undefined) out.push({ where: `annotation "${a.name}"`, expr: a.expr })
  for (const v of dashboard.templating.list as Obj[]) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query
    const m = /^\s*label_values\(\s*(.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(q ?? '')
    expect(m, `variable ${v.name}: label_values(<series>, <label>)`).not.toBeNull()
    out.push({ where: `variable ${v.name}`, expr: `${m![1]} and on (${m![2]}) ${m![1]}` })
  }
  return out
}
