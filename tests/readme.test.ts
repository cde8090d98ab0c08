/**
 * The README as a script: every ```sh block, in order, from a fresh clone, against a real server.
 *
 * The project is a temp folder laid out like a clone after `npm install` (readme-project.ts); the
 * server is started there the way `npm start` starts it (`node dist/cli.js serve`, the bundled
 * models), on a free port. Each block runs as one `bash -eo pipefail` script in the project folder,
 * in a user's environment (no MODELGATE_* from ours). The only change made to a command: the
 * README's `localhost:8080` / `127.0.0.1:8080` become the test server's port, `:8081` its gRPC port (and MODELGATE_URL
 * names it, for the CLI's commands that talk to the server on its default URL).
 *
 * A block fails when a step exits non-zero, when a curl call gets an HTTP status >= 400 and the
 * README does not show an error answer for it, or when the README shows a JSON answer
 * (`# {...}`, `# [...]`) that the output does not match (json-pattern.ts says how they match).
 * A block is skipped only with `<!-- readme-test: skip — <reason> -->` on the line before it.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mismatches, parsePattern } from './support/json-pattern.js'
import { readmeShellBlocks, splitSteps, type ReadmeBlock } from './support/readme-examples.js'
import {
  makeFreshProject,
  removeProject,
  startProjectServer,
  userEnvironment,
  type ProjectServer,
} from './support/readme-project.js'
import { blockFailures, runBlock } from './support/readme-runner.js'

const README = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8')
const BLOCKS = readmeShellBlocks(README)
const BLOCK_TIMEOUT_MS = 30_000

describe('README.md', () => {
  it('starts with the two set-up commands, which CI runs (not this test)', () => {
    const first = README.split('```sh\n')[1]?.split('```')[0]
    expect(
      first
        ?.split('\n')
        .map((l) => l.replace(/\s+#.*$/, ''))
        .filter(Boolean),
    ).toEqual(['npm install && npm start', 'npm test'])
    expect(BLOCKS[0]?.skip).toBeTruthy()
  })

  it('skips a block only with a reason, and runs every other', () => {
    expect(BLOCKS.filter((b) => b.skip === '').map((b) => `README.md:${b.line}`)).toEqual([])
    expect(BLOCKS.filter((b) => b.skip === undefined).length).toBeGreaterThan(10)
  })
})

describe('README.md, its shell examples run as written, in order', () => {
  let root: string
  let project: string
  let env: NodeJS.ProcessEnv
  let server: ProjectServer
  let broken: string | undefined
  beforeAll(async () => {
    ;({ root, project } = await makeFreshProject())
    env = userEnvironment(root)
    server = await startProjectServer(project, env)
  })
  afterAll(async () => {
    await server?.stop()
    if (root) await removeProject(root)
  })

  for (const block of BLOCKS) {
    const name = `README.md:${block.line} (${block.heading})`
    if (block.skip !== undefined) {
      it.skip(`${name}: ${block.skip}`, () => {})
      continue
    }
    it(
      name,
      async (ctx) => {
        // Each block builds on the ones before it (v3 ships, then rolls back): after a failure, the rest would only echo it.
        if (broken) ctx.skip(`an earlier block failed (${broken})`)
        const report = await check(block, {
          cwd: project,
          env,
          port: server.port,
          grpcPort: server.grpcPort,
        })
        if (report) broken = name
        expect(report, report).toBeUndefined()
      },
      BLOCK_TIMEOUT_MS + 10_000,
    )
  }

  async function check(
    block: ReadmeBlock,
    o: { cwd: string; env: NodeJS.ProcessEnv; port: number; grpcPort: number },
  ): Promise<string | undefined> {
    const run = await runBlock(block, { ...o, timeoutMs: BLOCK_TIMEOUT_MS })
    const failures = blockFailures(run, 'README.md')
    if (failures.length === 0) return undefined
    const logTail = server.log().trimEnd().split('\n').slice(-15).join('\n')
    return `${failures.join('\n\n')}\n\nthe server's log, last lines:\n${logTail}`
  }
})

describe('how README examples are read', () => {
  it('cuts a block into steps: continuations, open quotes, here-documents, trailing and following comments', () => {
    const steps = splitSteps(
      [
        '# prose before',
        "curl -s localhost:8080/a -H 'x: #1' \\",
        '  -d \'{"a": 1}\'',
        '# {"a":1,...}',
        'curl -s localhost:8080/b    # {"ok":true}',
        "python3 - <<'PY'",
        'print(1)   # a Python comment',
        'PY',
        '# prose after',
        "curl -s localhost:8080/c -d '{",
        '  "k": "# not a comment"',
        "}'",
        '# {"c":1}',
      ],
      10,
    )
    expect(steps.map((s) => [s.line, s.command, s.expected?.text])).toEqual([
      [11, "curl -s localhost:8080/a -H 'x: #1' \\\n  -d '{\"a\": 1}'", '{"a":1,...}'],
      [14, 'curl -s localhost:8080/b', '{"ok":true}'],
      [15, "python3 - <<'PY'\nprint(1)   # a Python comment\nPY", undefined],
      [19, 'curl -s localhost:8080/c -d \'{\n  "k": "# not a comment"\n}\'', '{"c":1}'],
    ])
  })

  it('matches answers: exact members unless "...", timings loosely, floats within 1e-6', () => {
    const match = (pattern: string, actual: unknown) => mismatches(parsePattern(pattern), actual)
    expect(match('{"a":1,"b":[...],"ms":0.2}', { a: 1, b: [1, 2], ms: 41.5 })).toEqual([])
    expect(match('{"a":1}', { a: 1, b: 2 })).toHaveLength(1)
    expect(match('{"a":1,...}', { a: 1, b: 2 })).toEqual([])
    expect(match('{"a":1,...}', { b: 2 })).toHaveLength(1)
    expect(match('{"p":[0.9953984618186951]}', { p: [0.99539846] })).toEqual([])
    expect(match('{"p":[0.9953]}', { p: [0.99539846] })).toHaveLength(1)
    expect(match('{"v":2}', { v: 3 })).toHaveLength(1)
    expect(
      match('{"time":"2026-01-01T00:00:00.000Z","at":"x"}', {
        time: '2027-02-02T00:00:00.000Z',
        at: 'y',
      }),
    ).toEqual([])
    expect(match('{"ms":1}', { ms: '1' })).toHaveLength(1)
    expect(() => parsePattern('{"a":1,...,"b":2}')).toThrow(/last member/)
  })

  it('refuses a skip without a reason', () => {
    expect(readmeShellBlocks('<!-- readme-test: skip -->\n```sh\nls\n```\n')[0]?.skip).toBe('')
    expect(
      readmeShellBlocks('<!-- readme-test: skip — needs a cluster -->\n```sh\nls\n```\n')[0]?.skip,
    ).toBe('needs a cluster')
    expect(() => readmeShellBlocks('<!-- readme-test: maybe -->\n```sh\nls\n```\n')).toThrow(
      /readme-test mark/,
    )
  })
})
