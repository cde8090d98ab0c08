/** Plain-text tables for a terminal: no colours, so a pipe or a log file reads the same. */

export type Cell = string | number | null | undefined

export interface Column {
  readonly header: string
  /** Numbers line up on their last digit. */
  readonly align?: 'left' | 'right'
}

/** A missing figure: one character, so an empty column still lines up. */
const NONE = '-'

/**
 * Rows under their headers, each column as wide as its widest cell, two spaces between columns.
 * The last column is not padded (a long reason does not push trailing spaces into the output).
 */
export function formatTable(
  columns: readonly Column[],
  rows: readonly (readonly Cell[])[],
): string {
  const text = [
    columns.map((c) => c.header),
    ...rows.map((row) => columns.map((_, i) => cell(row[i]))),
  ]
  const widths = columns.map((_, i) => Math.max(...text.map((line) => line[i]!.length)))
  const lines = text.map((line) =>
    line
      .map((value, i) => {
        if (i === columns.length - 1 && columns[i]!.align !== 'right') return value
        return columns[i]!.align === 'right' ? value.padStart(widths[i]!) : value.padEnd(widths[i]!)
      })
      .join('  ')
      .trimEnd(),
  )
  return `${lines.join('\n')}\n`
}

function cell(value: Cell): string {
  if (value === null || value === undefined || value === '') return NONE
  // A cell is one line: a newline inside one would break every column after it.
  return String(value).replace(/\s*\n\s*/g, ' ')
}
