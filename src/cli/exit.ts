/**
 * The exit status of every command, documented in each --help and the README: a script tells "the
 * answer is no" from "could not ask".
 */
export const EXIT = {
  ok: 0,
  /** Refused: by the server (4xx/5xx: reached, and it said no), by its verdict, or by the command (the version exists, not an ONNX file). */
  refused: 1,
  usage: 2,
  /** No answer: connection refused, DNS, TLS, or the timeout. Nothing was changed. */
  unreachable: 3,
  /** `ship --wait` gave up waiting; the version stays shipped and the server carries on. */
  timeout: 4,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** A command that stops with a message for the operator and a status for the script. */
export class CommandError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message)
  }
}

/** A usage error found in the arguments: exit 2, before any request. */
export class CommandUsageError extends CommandError {
  constructor(message: string) {
    super(EXIT.usage, message)
  }
}

export const usageError = (message: string) => new CommandUsageError(message)
export const refused = (message: string) => new CommandError(EXIT.refused, message)

/**
 * Runs a command to its exit status. process.exit, not a return: onnxruntime's threads (smoke
 * record) or an open connection must not keep a finished command alive.
 */
export async function runCommand(usage: string, command: () => Promise<number>): Promise<never> {
  try {
    process.exit(await command())
  } catch (e) {
    if (!(e instanceof CommandError)) throw e
    const help = e.exitCode === EXIT.usage ? `\n\n${usage}` : ''
    process.stderr.write(`modelgate: ${e.message}${help}\n`)
    process.exit(e.exitCode)
  }
}
