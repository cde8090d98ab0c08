/**
 * The JSON answers the README shows (`# {"model":"iris",...}`), read as patterns and matched against
 * what the server really answers. A pattern is JSON plus `...`:
 * - `{"a":1,...}`: an object with at least these members (without `...`: exactly these);
 * - `[...]`: any array; `...` as a value: any value.
 * Members that are timings or times (`ms`, `swapMs`, `time`, `at`, `since`, `startedAt`) match any
 * number (or any string, when the README shows a string): they differ on every run.
 * Floats match within 1e-6 relative; strings, booleans, null and integers exactly.
 */
export type JsonPattern =
  | { readonly kind: 'any' }
  | { readonly kind: 'value'; readonly value: string | number | boolean | null }
  | { readonly kind: 'array'; readonly items: readonly JsonPattern[] }
  | {
      readonly kind: 'object'
      readonly members: ReadonlyMap<string, JsonPattern>
      readonly open: boolean
    }

const TIMING_KEY = /^(ms|time|at|since|startedAt|[a-z]+Ms)$/
const FLOAT_RTOL = 1e-6

/** Parses a pattern; throws with the offset on anything that is not JSON plus `...`. */
export function parsePattern(text: string): JsonPattern {
  let i = 0
  const fail = (what: string): never => {
    throw new Error(`expected ${what} at offset ${i} of ${text}`)
  }
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++
  }
  const ellipsis = () => {
    ws()
    if (!text.startsWith('...', i)) return false
    i += 3
    return true
  }
  const literal = (): string | number | boolean | null => {
    const m = /^(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(
      text.slice(i),
    )
    if (!m) return fail('a value')
    i += m[0].length
    return JSON.parse(m[0]) as string | number | boolean | null
  }
  const value = (): JsonPattern => {
    ws()
    if (ellipsis()) return { kind: 'any' }
    if (text[i] === '{') {
      i++
      const members = new Map<string, JsonPattern>()
      ws()
      if (text[i] === '}') return (i++, { kind: 'object', members, open: false })
      for (;;) {
        if (ellipsis()) {
          ws()
          if (text[i++] !== '}') fail("'}' after '...' (it must be the last member)")
          return { kind: 'object', members, open: true }
        }
        ws()
        const key = literal()
        if (typeof key !== 'string') fail('a member name')
        ws()
        if (text[i++] !== ':') fail("':'")
        members.set(key as string, value())
        ws()
        const c = text[i++]
        if (c === '}') return { kind: 'object', members, open: false }
        if (c !== ',') fail("',' or '}'")
      }
    }
    if (text[i] === '[') {
      i++
      ws()
      if (text.startsWith('...', i)) {
        i += 3
        ws()
        if (text[i++] !== ']') fail("']' after '...' ([...] is any array)")
        return { kind: 'any' }
      }
      const items: JsonPattern[] = []
      if (text[i] === ']') return (i++, { kind: 'array', items })
      for (;;) {
        items.push(value())
        ws()
        const c = text[i++]
        if (c === ']') return { kind: 'array', items }
        if (c !== ',') fail("',' or ']'")
      }
    }
    return { kind: 'value', value: literal() }
  }
  const pattern = value()
  ws()
  if (i !== text.length) fail('the end')
  return pattern
}

/** Every way `actual` differs from `pattern`, as `path: what`; empty when it matches. */
export function mismatches(pattern: JsonPattern, actual: unknown, path = '$', key = ''): string[] {
  const got = JSON.stringify(actual) ?? String(actual)
  switch (pattern.kind) {
    case 'any':
      return []
    case 'value': {
      const want = pattern.value
      if (TIMING_KEY.test(key) && (typeof want === 'number' || typeof want === 'string')) {
        return typeof actual === typeof want
          ? []
          : [`${path}: a ${typeof want} (a timing), got ${got}`]
      }
      if (typeof want === 'number' && typeof actual === 'number') {
        if (Number.isInteger(want) && Number.isInteger(actual))
          return want === actual ? [] : [`${path}: ${want}, got ${actual}`]
        return Math.abs(want - actual) <= FLOAT_RTOL * Math.max(Math.abs(want), Math.abs(actual))
          ? []
          : [`${path}: ${want}, got ${actual}`]
      }
      return want === actual ? [] : [`${path}: ${JSON.stringify(want)}, got ${got}`]
    }
    case 'array': {
      if (!Array.isArray(actual)) return [`${path}: an array, got ${got}`]
      if (actual.length !== pattern.items.length)
        return [`${path}: ${pattern.items.length} items, got ${actual.length}: ${got}`]
      return pattern.items.flatMap((p, n) => mismatches(p, actual[n], `${path}[${n}]`))
    }
    case 'object': {
      if (typeof actual !== 'object' || actual === null || Array.isArray(actual))
        return [`${path}: an object, got ${got}`]
      const record = actual as Record<string, unknown>
      const out = [...pattern.members].flatMap(([k, p]) =>
        k in record
          ? mismatches(p, record[k], `${path}.${k}`, k)
          : [`${path}: no member '${k}' in ${got}`],
      )
      if (!pattern.open) {
        const extra = Object.keys(record).filter((k) => !pattern.members.has(k))
        if (extra.length > 0)
          out.push(
            `${path}: unexpected member(s) ${extra.join(', ')} (end the README's object with ',...' if they may vary)`,
          )
      }
      return out
    }
  }
}
