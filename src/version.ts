import { readFileSync } from 'node:fs'

/** modelgate's version, from its package.json (dist/ sits beside it). */
export const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version
