/**
 * Exit status of `modelgate ship` and `modelgate smoke record`, the same meanings as the other
 * commands that talk to a server: a script tells "the answer is no" from "could not ask".
 */
export const EXIT = {
  ok: 0,
  /** Refused: by the command (the version exists, not an ONNX file) or by the server's verdict. */
  refused: 1,
  usage: 2,
  /** The server did not answer: nothing was changed. */
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

export const usageError = (message: string) => new CommandError(EXIT.usage, message)
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
