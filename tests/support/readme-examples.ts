import { parsePattern, type JsonPattern } from './json-pattern.js'

/**
 * The README's shell examples, as a user reads them: every fenced ```sh block in order, each cut
 * into steps. A step is a command (with its backslash continuations and here-document) and the
 * `# ...` comment lines right after it, or a trailing `# ...` on its last line. A comment that is a
 * JSON object or array (`# {"model":"iris",...}`) is the answer the step must print (see
 * json-pattern.ts); any other comment is prose.
 *
 * A block is skipped only when the line right before its fence says why:
 *   <!-- readme-test: skip — <reason> -->
 */
export interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  readonly line: number
  /** The nearest heading above it. */
  readonly heading: string
  readonly steps: readonly ReadmeStep[]
  /** Set when the block is marked to be skipped; '' when the mark gives no reason. */
  readonly skip?: string
}

export interface ReadmeStep {
  readonly line: number
  /** The command as written, continuations and here-document included, comments left out. */
  readonly command: string
  /** What the README shows it prints, when that is JSON. */
  readonly expected?: { readonly text: string; readonly pattern: JsonPattern }
}

const SKIP_MARK = /^<!--\s*readme-test:\s*skip\b\s*(?:[—–-]+\s*)?(.*?)\s*-->$/
const HEREDOC = /<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1/

export function readmeShellBlocks(readme: string): ReadmeBlock[] {
  const lines = readme.split('\n')
  const blocks: ReadmeBlock[] = []
  let heading = ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, '')
    if (!line.startsWith('```')) continue
    const lang = line.slice(3).trim()
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!)
    if (lang !== 'sh') continue
    const mark = start > 0 ? lines[start - 1]!.trim() : ''
    if (mark.startsWith('<!--') && mark.includes('readme-test')) {
      const m = SKIP_MARK.exec(mark)
      if (!m)
        throw new Error(
          `README.md:${start}: a readme-test mark that is not "<!-- readme-test: skip — <reason> -->": ${mark}`,
        )
      blocks.push({ line: start + 1, heading, steps: [], skip: m[1]! })
    } else {
      blocks.push({ line: start + 1, heading, steps: splitSteps(body, start + 2) })
    }
  }
  return blocks
}

/** Cuts a block's lines (the first at `firstLine`) into steps. */
export function splitSteps(body: readonly string[], firstLine: number): ReadmeStep[] {
  const steps: ReadmeStep[] = []
  let i = 0
  const comment = (text: string) => text.replace(/^#\s?/, '').trim()
  while (i < body.length) {
    const line = body[i]!
    if (line.trim() === '' || line.trim().startsWith('#')) {
      i++ // prose before a command, or a blank line between steps
      continue
    }
    const start = i
    const command: string[] = []
    // The command goes on while a line ends with `\` or a quote is still open.
    let quote: Quote
    let trailing: string | undefined
    while (i < body.length) {
      const scanned = scanShell(body[i]!, quote)
      quote = scanned.quote
      if (scanned.comment !== undefined) {
        command.push(body[i]!.slice(0, scanned.comment).trimEnd())
        trailing = comment(body[i]!.slice(scanned.comment))
        i++
        break
      }
      command.push(body[i]!)
      i++
      if (quote === undefined && !body[i - 1]!.endsWith('\\')) break
    }
    // A here-document runs to its terminator line, comments and all.
    const heredoc = HEREDOC.exec(command.join('\n'))
    if (heredoc) {
      while (i < body.length && body[i]!.trim() !== heredoc[2]) command.push(body[i++]!)
      if (i >= body.length)
        throw new Error(
          `README.md:${firstLine + start}: here-document ${heredoc[2]} has no terminator`,
        )
      command.push(body[i++]!)
    }
    const comments = trailing === undefined ? [] : [trailing]
    while (i < body.length && body[i]!.trim().startsWith('#')) comments.push(comment(body[i++]!))
    const json = comments.filter((c) => c.startsWith('{') || c.startsWith('['))
    if (json.length > 1)
      throw new Error(
        `README.md:${firstLine + start}: one step shows ${json.length} JSON answers; give each its own command`,
      )
    const step: ReadmeStep = { line: firstLine + start, command: command.join('\n') }
    if (json[0] !== undefined) {
      let pattern: JsonPattern
      try {
        pattern = parsePattern(json[0])
      } catch (e) {
        throw new Error(
          `README.md:${firstLine + start}: the answer shown is not JSON with '...': ${(e as Error).message}`,
        )
      }
      steps.push({ ...step, expected: { text: json[0], pattern } })
    } else {
      steps.push(step)
    }
  }
  return steps
}

type Quote = "'" | '"' | undefined

/**
 * Reads a line as the shell does, from inside `quote` when a quote opened on an earlier line is
 * still open: where it ends (which quote is open), and where a comment starts (a `#` after a
 * blank, outside quotes), if one does.
 */
function scanShell(line: string, quote: Quote = undefined): { quote: Quote; comment?: number } {
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      if (c === quote) quote = undefined
      else if (c === '\\' && quote === '"') i++
    } else if (c === "'" || c === '"') quote = c
    else if (c === '\\') i++
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return { quote, comment: i }
  }
  return { quote }
}
