/**
 * JSON with exact 64-bit integers. Triton and KServe clients send INT64/UINT64 values as plain
 * number literals; JSON.parse rounds any beyond 2^53 (9007199254740993 -> 9007199254740992).
 * Integer literals too long to be exact come back as BigInt; everything else is JSON.parse's.
 */

/** An integer literal of 16+ digits, outside any string: only then is the slow parser needed. */
const LONG_INTEGER = /(?:^|[^"\\\w.])-?\d{16,}(?![\d.eE])/

export function parseExactJson(text: string): unknown {
  if (!LONG_INTEGER.test(text) || !hasLongIntegerOutsideStrings(text)) return JSON.parse(text)
  return new ExactParser(text).parseDocument()
}

function hasLongIntegerOutsideStrings(text: string): boolean {
  let inString = false
  let run = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92)
        i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
      continue
    }
    if (c === 34) {
      inString = true
      run = 0
    } else if (c >= 48 && c <= 57) {
      if (++run >= 16) return true
    } else {
      run = 0
    }
  }
  return false
}

/** An array or object being filled, and for an object the key its next value goes under. */
type Open =
  | { readonly array: unknown[] }
  | { readonly object: Record<string, unknown>; key: string }

/** What #valueOrOpen returns when it opened a container rather than read a whole value. */
const OPENED = Symbol('opened')

/**
 * A JSON parser with an explicit stack instead of recursion: a document nested 100,000 deep is
 * parsed like any other (as JSON.parse parses it), not a stack overflow; what may be nested how
 * deep is for the reader of the value to say (the tensor decoder bounds it by the rank).
 */
class ExactParser {
  #text: string
  #pos = 0

  constructor(text: string) {
    this.#text = text
  }

  parseDocument(): unknown {
    const open: Open[] = []
    for (;;) {
      let value = this.#valueOrOpen(open)
      if (value === OPENED) continue
      // A complete value: put it in its container, and close every container that ends here.
      for (;;) {
        const top = open.at(-1)
        if (top === undefined) {
          this.#ws()
          if (this.#pos !== this.#text.length) this.#fail('unexpected text after the JSON value')
          return value
        }
        this.#ws()
        const c = this.#text[this.#pos++]
        if ('array' in top) {
          top.array.push(value)
          if (c === ',') break
          if (c !== ']') this.#fail("expected ',' or ']'")
          value = top.array
        } else {
          // defineProperty: a key "__proto__" is data here, as with JSON.parse.
          Object.defineProperty(top.object, top.key, {
            value,
            enumerable: true,
            writable: true,
            configurable: true,
          })
          if (c === ',') {
            top.key = this.#key()
            break
          }
          if (c !== '}') this.#fail("expected ',' or '}'")
          value = top.object
        }
        open.pop()
      }
    }
  }

  /** A scalar or an empty container; or OPENED, when a non-empty container was pushed on `open`. */
  #valueOrOpen(open: Open[]): unknown {
    this.#ws()
    const c = this.#text[this.#pos]
    if (c === '{') {
      this.#pos++
      this.#ws()
      if (this.#text[this.#pos] === '}') {
        this.#pos++
        return {}
      }
      open.push({ object: {}, key: this.#key() })
      return OPENED
    }
    if (c === '[') {
      this.#pos++
      this.#ws()
      if (this.#text[this.#pos] === ']') {
        this.#pos++
        return []
      }
      open.push({ array: [] })
      return OPENED
    }
    if (c === '"') return this.#string()
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.#number()
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.#text.startsWith(word, this.#pos)) {
        this.#pos += word.length
        return value
      }
    }
    this.#fail(c === undefined ? 'unexpected end of JSON' : `unexpected token ${JSON.stringify(c)}`)
  }

  /** A property name and its ':'. */
  #key(): string {
    this.#ws()
    if (this.#text[this.#pos] !== '"') this.#fail('expected a property name')
    const key = this.#string()
    this.#ws()
    if (this.#text[this.#pos++] !== ':') this.#fail("expected ':'")
    return key
  }

  #fail(message: string): never {
    throw new SyntaxError(`${message} at position ${this.#pos}`)
  }

  #ws(): void {
    const t = this.#text
    while (this.#pos < t.length) {
      const c = t.charCodeAt(this.#pos)
      if (c === 32 || c === 10 || c === 13 || c === 9) this.#pos++
      else break
    }
  }

  #string(): string {
    // Find the closing quote, then let JSON.parse decode the escapes exactly as it would.
    const t = this.#text
    const start = this.#pos
    let i = start + 1
    for (;;) {
      if (i >= t.length) this.#fail('unterminated string')
      const c = t.charCodeAt(i)
      if (c === 92) i += 2
      else if (c === 34) break
      else i++
    }
    this.#pos = i + 1
    return JSON.parse(t.slice(start, i + 1)) as string
  }

  #number(): number | bigint {
    const t = this.#text
    const m = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y
    m.lastIndex = this.#pos
    const found = m.exec(t)
    if (!found) this.#fail('invalid number')
    this.#pos = m.lastIndex
    const literal = found[0]
    const value = Number(literal)
    if (found[1] === undefined && found[2] === undefined && !Number.isSafeInteger(value))
      return BigInt(literal)
    return value
  }
}

/** JSON.stringify that writes BigInt values as exact number literals. */
export function stringifyExactJson(value: unknown): string {
  if (!containsBigInt(value)) return JSON.stringify(value)
  return write(value)
}

function containsBigInt(value: unknown): boolean {
  if (typeof value === 'bigint') return true
  if (Array.isArray(value)) return value.some(containsBigInt)
  if (value !== null && typeof value === 'object') return Object.values(value).some(containsBigInt)
  return false
}

function write(value: unknown): string {
  if (typeof value === 'bigint') return value.toString()
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : write(v))).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const parts: string[] = []
    for (const [k, v] of Object.entries(value))
      if (v !== undefined) parts.push(`${JSON.stringify(k)}:${write(v)}`)
    return `{${parts.join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}
