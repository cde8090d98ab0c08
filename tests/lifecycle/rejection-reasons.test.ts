import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REJECTION_REASONS } from '../../src/lifecycle/gate/rejection-reasons.js'

/**
 * Rejection reasons are API, like error codes: every reason a version can be rejected with is in
 * the README's table, and the table lists nothing else. A failed stage's `reason` is typed as one
 * of REJECTION_REASONS; the pipeline's own `rejected` states are found in the source.
 */

const root = join(import.meta.dirname, '..', '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const start = readme.indexOf('### Rejection reasons')
const section = readme.slice(start, readme.indexOf('\n## ', start))
const documented = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!)

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [readFileSync(join(dir, e.name), 'utf8')]
        : [],
  )
}

describe('rejection reasons', () => {
  it('have a table in the README', () => {
    expect(start).toBeGreaterThan(0)
    expect(documented.length).toBeGreaterThan(20)
  })

  it('do not include what a version waits for: a broken smoke.json is not a verdict', () => {
    expect(REJECTION_REASONS).not.toContain('invalid_smoke_file')
    expect(documented).not.toContain('invalid_smoke_file')
  })

  it('are unique', () => {
    expect(new Set(REJECTION_REASONS).size).toBe(REJECTION_REASONS.length)
  })

  it.each(REJECTION_REASONS)('%s is documented', (reason) => {
    expect(documented).toContain(reason)
  })

  it('documents none that the code cannot record', () => {
    expect([...documented].sort()).toEqual([...REJECTION_REASONS].sort())
  })

  it('include every reason a rejected state or a failed stage is given in the source', () => {
    const found = sources(join(root, 'src')).flatMap((text) =>
      [...text.matchAll(/status: '(?:rejected|failed)',[^}]*?reason: '([a-z_]+)'/g)].map(
        (m) => m[1]!,
      ),
    )
    expect(found).toContain('signature_changed')
    for (const reason of found) expect(REJECTION_REASONS).toContain(reason)
  })
})
