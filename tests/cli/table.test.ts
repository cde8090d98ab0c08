import { describe, expect, it } from 'vitest'
import { formatTable } from '../../src/cli/table.js'

describe('formatTable', () => {
  it('aligns every column to its widest cell, numbers on their last digit', () => {
    const text = formatTable(
      [{ header: 'MODEL' }, { header: 'ACTIVE', align: 'right' }, { header: 'REASON' }],
      [
        ['iris', 3, 'passed'],
        ['a-longer-name', 12, 'rejected: bad'],
      ],
    )
    expect(text).toBe(
      [
        'MODEL          ACTIVE  REASON',
        'iris                3  passed',
        'a-longer-name      12  rejected: bad',
        '',
      ].join('\n'),
    )
  })

  it('shows a missing cell as "-" and never pads the last column', () => {
    const text = formatTable(
      [{ header: 'A' }, { header: 'LAST' }],
      [
        [null, undefined],
        ['', 'x'],
      ],
    )
    expect(text).toBe('A  LAST\n-  -\n-  x\n')
    for (const line of text.split('\n')) expect(line).toBe(line.trimEnd())
  })

  it('keeps a cell on one line, so a message with newlines cannot break the columns', () => {
    const text = formatTable([{ header: 'A' }, { header: 'B' }], [['one\n  two', 'z']])
    expect(text).toBe('A        B\none two  z\n')
  })

  it('writes no colour or control characters', () => {
    const text = formatTable([{ header: 'A', align: 'right' }], [[1.5], [-2]])
    expect(text).not.toContain('\u001b')
    expect(text).toBe('  A\n1.5\n -2\n')
  })
})
