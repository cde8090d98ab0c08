import { pino, type DestinationStream } from 'pino'
import type { LogLevel } from './config.js'

/**
 * Structured logs: one JSON object per line, so a lifecycle event is one greppable record:
 * `{"level":"info","time":"2026-12-02T17:31:08.532Z","event":"version_promoted","model":"iris",...}`.
 * Written by pino (the Node ecosystem's JSON logger, synchronous writes: a line is out before the
 * process exits) behind this small interface, so call sites name an event and its fields.
 */
export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void
  info(event: string, fields?: Record<string, unknown>): void
  warn(event: string, fields?: Record<string, unknown>): void
  error(event: string, fields?: Record<string, unknown>): void
}

export interface LogRecord extends Record<string, unknown> {
  readonly time: string
  readonly level: Exclude<LogLevel, 'silent'>
  readonly event: string
}

const METHODS = ['debug', 'info', 'warn', 'error'] as const

/** A logger writing JSON lines to stdout, or to `write` (one call per line, newline included). */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
  const destination: DestinationStream | undefined = write && { write }
  const options = {
    level,
    base: undefined, // no pid and hostname on every line: the process is known from where its output goes
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  }
  // Synchronous writes, as process.stdout does for pipes and files: no line is lost or reordered
  // when the process exits right after logging (a failed start, the end of a drain).
  const p = pino(options, destination ?? pino.destination({ dest: 1, sync: true }))
  const logger = {} as Logger
  for (const method of METHODS) {
    logger[method] = function log(event, fields) {
      // `event` first, so a line reads level, time, event, then the details.
      p[method](fields === undefined ? { event } : plain({ event, ...fields }))
    }
  }
  return logger
}

/** A logger that keeps records in memory, for tests that assert on what was logged. */
export function createMemoryLogger(): Logger & { readonly records: LogRecord[] } {
  const records: LogRecord[] = []
  const logger = createLogger('debug', (line) => records.push(JSON.parse(line) as LogRecord))
  return Object.assign(logger, { records })
}

/**
 * Field values JSON would lose: an Error has no enumerable properties (it would print as `{}`),
 * so it becomes its message; a bigint becomes its decimal text.
 */
function plain(fields: Record<string, unknown>): Record<string, unknown> {
  for (const key in fields) {
    const value = fields[key]
    if (value instanceof Error) fields[key] = value.message
    else if (typeof value === 'bigint') fields[key] = value.toString()
  }
  return fields
}
