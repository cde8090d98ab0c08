import { parseArgs, type ParseArgsConfig } from 'node:util'
import { DEFAULT_URL, ModelgateClient, ServerRefusal, serverUrl, Unreachable } from './client.js'
import { CommandUsageError, EXIT } from './exit.js'

/**
 * What every command that talks to a running server shares: `--url`, `--token`, `--timeout`,
 * `--json`, `--help`; usage errors before any request; one mapping from what went wrong to the
 * exit status and the message.
 */

const DEFAULT_TIMEOUT_SECONDS = 30

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>
type Values = Record<string, string | boolean | undefined>

export interface RemoteCommand {
  /** `status [MODEL]`: the synopsis after `modelgate`. */
  readonly synopsis: string
  /** What it does, and its own options' lines. */
  readonly help: string
  readonly options: ParseArgsOptionsConfig
  /** Checks the arguments (throwing CommandUsageError), then asks the server. */
  run(client: ModelgateClient, values: Values, positionals: readonly string[]): Promise<Answer>
}

/** The server's JSON answer (printed as is with --json) and the text a person reads. */
export interface Answer {
  readonly json: unknown
  readonly text: string
}

const COMMON_HELP = `Options of every command that talks to a server:
  --url URL       the server (default: ${DEFAULT_URL}, or MODELGATE_URL)
  --token TOKEN   the admin token, when the server has one. Every user of this machine can read
                  a command line (ps): prefer the environment variable MODELGATE_ADMIN_TOKEN
  --timeout SEC   wait this long for an answer (default: ${DEFAULT_TIMEOUT_SECONDS})
  --json          print the server's JSON answer as is (an error too: {"error": {...}})
  -h, --help

Exit status: 0 done; 1 the server said no (its error code and message are printed: an unknown
model, a conflict, a failed gate, a missing token); 2 usage error; 3 the server could not be
reached (connection refused, no answer within --timeout).
`

const COMMON_OPTIONS: ParseArgsOptionsConfig = {
  url: { type: 'string' },
  token: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}

function commandUsage(command: RemoteCommand): string {
  return `Usage: modelgate ${command.synopsis} [options]\n\n${command.help}\n${COMMON_HELP}`
}

/** Runs `command` with `args`; sets the exit status (the process ends once stdout is flushed). */
export async function runRemote(
  command: RemoteCommand,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  const out = (text: string) => process.stdout.write(text)
  const err = (text: string) => process.stderr.write(`modelgate: ${text}\n`)
  let values: Values
  let positionals: string[]
  let client: ModelgateClient
  try {
    ;({ values, positionals } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: true,
      options: { ...COMMON_OPTIONS, ...command.options },
    }) as { values: Values; positionals: string[] })
    if (values.help) {
      out(commandUsage(command))
      return
    }
    client = new ModelgateClient({
      url: serverUrl(stringValue(values.url) ?? env.MODELGATE_URL ?? DEFAULT_URL),
      token: stringValue(values.token) ?? (env.MODELGATE_ADMIN_TOKEN || undefined),
      timeoutMs: timeoutSeconds(stringValue(values.timeout)) * 1000,
    })
  } catch (e) {
    err(`${(e as Error).message}\n\n${commandUsage(command)}`)
    process.exitCode = EXIT.usage
    return
  }
  try {
    const answer = await command.run(client, values, positionals)
    out(values.json ? `${JSON.stringify(answer.json)}\n` : answer.text)
    process.exitCode = EXIT.ok
  } catch (e) {
    if (e instanceof CommandUsageError) {
      err(`${e.message}\n\n${commandUsage(command)}`)
      process.exitCode = EXIT.usage
    } else if (e instanceof ServerRefusal) {
      if (values.json)
        out(
          `${JSON.stringify({ error: { code: e.code, message: e.message, details: e.details } })}\n`,
        )
      err(`${e.code} (HTTP ${e.status}): ${e.message}${refusalDetails(e)}`)
      process.exitCode = EXIT.refused
    } else if (e instanceof Unreachable) {
      err(e.message)
      process.exitCode = EXIT.unreachable
    } else throw e
  }
}

function stringValue(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function timeoutSeconds(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_TIMEOUT_SECONDS
  const seconds = Number(raw)
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new CommandUsageError(`--timeout '${raw}' is not a number of seconds above 0`)
  return seconds
}

/** A failed gate says which stages failed and why; other errors have said it in their message. */
function refusalDetails(e: ServerRefusal): string {
  const stages = (e.details as { stages?: unknown } | undefined)?.stages
  if (!Array.isArray(stages)) return ''
  return stages
    .filter((s: { status?: string }) => s.status === 'failed')
    .map(
      (s: { stage?: string; reason?: string; message?: string }) =>
        `\n  ${s.stage}: ${[s.reason, s.message].filter(Boolean).join(': ')}`,
    )
    .join('')
}

/** A positional that must be a positive integer: a version. */
export function versionArgument(raw: string | undefined, what: string): number {
  const v = Number(raw)
  if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(v) || v < 1)
    throw new CommandUsageError(`${what} must be a version number (1, 2, ...), got '${raw ?? ''}'`)
  return v
}

/** Exactly `names.length` positionals, named in the error when one is missing or extra. */
export function positionalsOf(
  positionals: readonly string[],
  required: readonly string[],
  optional: readonly string[] = [],
): (string | undefined)[] {
  if (positionals.length < required.length)
    throw new CommandUsageError(`missing ${required[positionals.length]}`)
  if (positionals.length > required.length + optional.length)
    throw new CommandUsageError(
      `unexpected argument '${positionals[required.length + optional.length]}'`,
    )
  return [...required, ...optional].map((_, i) => positionals[i])
}

/** A model name as one path segment. */
export function modelPath(name: string): string {
  return `/models/${encodeURIComponent(name)}`
}
