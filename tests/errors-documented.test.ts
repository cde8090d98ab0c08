import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')

describe('error codes', () => {
  const source = readFileSync(join(root, 'src/errors.ts'), 'utf8')
  const codes = [...source.matchAll(/readonly code = '([a-z_]+)'\s+readonly status = (\d+)/g)].map(
    (m) => ({ code: m[1]!, status: m[2]! }),
  )
  const readme = readFileSync(join(root, 'README.md'), 'utf8')

  it('are found', () => {
    expect(codes.length).toBeGreaterThan(15)
  })

  it('are unique', () => {
    expect(new Set(codes.map((c) => c.code)).size).toBe(codes.length)
  })

  it.each(codes)('$code is documented in the README with status $status', ({ code, status }) => {
    expect(readme).toMatch(new RegExp(`\\| ${status} \\| \`${code}\` \\|`))
  })
})
