// Results go to bench/results/<name>.json and <name>.md (or BENCH_RESULTS_DIR, for short trial
// runs that must not replace them), with the machine and the command.
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { benchSettings } from './settings.mjs'

function machine() {
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    date: new Date().toISOString(),
  }
}

export function fmt(n, digits = 3) {
  if (typeof n !== 'number' || !Number.isFinite(n) || Number.isInteger(n)) return String(n)
  return n >= 100 ? n.toFixed(0) : n.toPrecision(digits)
}

/** The median; of an even count, the mean of the middle two. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length / 2
  return Number.isInteger(m) ? (s[m - 1] + s[m]) / 2 : s[Math.floor(m)]
}

/** "1.02 (0.97–1.08)": the median of rounds' ratios and their range. */
export function spread(xs) {
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`
}

/** rows: array of objects with the same keys; written as a markdown table. */
export function table(rows) {
  if (rows.length === 0) return ''
  const keys = Object.keys(rows[0])
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [
    line(keys),
    line(keys.map(() => '---')),
    ...rows.map((r) =>
      line(keys.map((k) => (typeof r[k] === 'number' ? fmt(r[k]) : String(r[k])))),
    ),
  ].join('\n')
}

export function writeReport(name, { title, command, sections, data }) {
  const dir = benchSettings().resultsDir
  mkdirSync(dir, { recursive: true })
  const m = machine()
  writeFileSync(
    join(dir, `${name}.json`),
    `${JSON.stringify({ name, command, machine: m, ...data }, null, 2)}\n`,
  )
  const md = [
    `# ${title}`,
    '',
    `\`${command}\` — ${m.date}, Node ${m.node}, ${m.cpus} × ${m.cpu}`,
    '',
    ...sections.flatMap((s) => [`## ${s.title}`, '', s.body, '']),
  ].join('\n')
  writeFileSync(join(dir, `${name}.md`), md)
  return md
}
