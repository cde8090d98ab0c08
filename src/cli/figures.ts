import type { RuleResult } from '../lifecycle/promotion/probation-rules.js'
import { formatTable } from './table.js'

/** How figures from the API read in a table: short, and the same in every command. */

/** `2026-12-03T10:41:07.120Z` -> `2026-12-03 10:41:07Z`: seconds are enough to read a timeline. */
export function timestamp(iso: string | null | undefined): string | undefined {
  if (!iso) return undefined
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

/** Milliseconds with three significant digits at most below 100 (0.005, 6.61, 28.3, 512). */
export function ms(value: number | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined
  return value >= 100 ? String(Math.round(value)) : String(Number(value.toPrecision(3)))
}

/** A ratio (accuracy, agreement) or any figure: at most four decimals, as the API rounds them. */
export function figure(value: number | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined
  return String(Math.round(value * 10_000) / 10_000)
}

/** Errors, with their share of the requests when there are any. */
export function errors(count: number, rate: number | null): string {
  if (count === 0 || rate === null) return String(count)
  return `${count} (${Number((rate * 100).toPrecision(2))}%)`
}

/** Probation or canary rules as they stand: a table indented under its heading line. */
export function rulesTable(rules: readonly RuleResult[]): string {
  return indent(
    formatTable(
      [
        { header: 'RULE' },
        { header: 'STATUS' },
        { header: 'OBSERVED', align: 'right' },
        { header: 'LIMIT', align: 'right' },
        { header: 'SAMPLE', align: 'right' },
      ],
      rules.map((r) => [
        r.rule,
        r.status,
        figure(r.observed),
        figure(r.limit),
        `${r.sample}/${r.needed}`,
      ]),
    ),
  )
}

export function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ')
}
