import type { LogLevel } from './config.js'

/** Structured logs: one JSON object per line, so a lifecycle event is one greppable record. */
export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void
  info(event: string, fields?: Record<string, unknown>): void
  warn(event: string, fields?: Record<string, unknown>): void
  error(event: string, fields?: Record<string, unknown>): void
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export interface LogRecord extends Record<string, unknown> {
  readonly time: string
  readonly level: Exclude<LogLevel, 'silent'>
  readonly event: string
}

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const threshold = RANK[level]
  const emit = (lvl: Exclude<LogLevel, 'silent'>) =>
    function log(event: string, fields?: Record<string, unknown>): void {
      if (RANK[lvl] < threshold) return
      const record: LogRecord = { time: new Date().toISOString(), level: lvl, event, ...fields }
      write(`${JSON.stringify(record, errorsAsText)}\n`)
    }
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') }
}

/** A logger that keeps records in memory, for tests that assert on what was logged. */
export function createMemoryLogger(): Logger & { readonly records: LogRecord[] } {
  const records: LogRecord[] = []
  const logger = createLogger('debug', (line) => records.push(JSON.parse(line) as LogRecord))
  return Object.assign(logger, { records })
}

function errorsAsText(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.message
  if (typeof value === 'bigint') return value.toString()
  return value
}
