import { parseArgs, type ParseArgsConfig } from 'node:util'
import { usageError } from './exit.js'

type Options = NonNullable<ParseArgsConfig['options']>
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; strict: true; allowPositionals: true; options: O }>
>

/** A command's flags and positionals; an unknown or malformed flag is a usage error (exit 2). */
export function parseCommandArgs<const O extends Options>(args: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args, strict: true, allowPositionals: true, options })
  } catch (e) {
    throw usageError((e as Error).message)
  }
}

/** The word after a command with subcommands (`smoke`, `import`) that asks for its usage. */
export function asksForHelp(word: string | undefined): boolean {
  return word === undefined || word === '--help' || word === '-h' || word === 'help'
}
