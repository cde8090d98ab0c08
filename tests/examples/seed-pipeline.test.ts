import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cp, mkdir, symlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parse } from 'yaml'
import { eventsOf, historyOf, modelDetail, versionView } from '../support/api-client.js'
import { spawnServerCli } from '../support/cli-server.js'
import { readmeShellBlocks } from '../support/readme-examples.js'
import { makeFreshProject, removeProject, userEnvironment } from '../support/readme-project.js'
import { blockFailures, type BlockRun, runBlock } from '../support/readme-runner.js'

/**
 * examples/seed-pipeline/README.md as a script: every ```sh block of its walkthrough, in order, as
 * written, from the example's folder in a fresh project (readme-project.ts), against the real
 * server (`dist/cli.js serve --models models`, as the README's skipped first block starts it, on a
 * free port: the only change to a command is that port). A block fails as in tests/readme.test.ts:
 * a step exits non-zero, or prints other JSON than the README shows. After each block, what it
 * did is checked through the API: which version serves, the history, each version's state.
 *
 * The README asks for a `python3` with scikit-learn; here that is Debian's (python3-sklearn), put
 * first on PATH: the pyenv one that may be there has none. Without it the walkthrough is skipped.
 */

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'seed-pipeline')
const README = 'examples/seed-pipeline/README.md'
const README_TEXT = readFileSync(join(EXAMPLE, 'README.md'), 'utf8')
const BLOCKS = readmeShellBlocks(README_TEXT)
const MODEL = 'cancer'
/** What a clone of the example holds (the walkthrough makes the rest). */
const EXAMPLE_FILES = ['data.py', 'train.py', 'traffic.py', 'ci.sh', 'models/cancer/model.json']
/** The nine size measurements (radius, perimeter, area: mean, error, worst) the new scanner inflates. */
const SIZE_COLUMNS = ['0', '2', '3', '10', '12', '13', '20', '22', '23']
const BLOCK_TIMEOUT_MS = 60_000

const PYTHON = '/usr/bin/python3'
const probe = spawnSync(PYTHON, ['-c', 'import sklearn, joblib'], { encoding: 'utf8' })
const skip =
  probe.status === 0
    ? undefined
    : `needs ${PYTHON} with scikit-learn (apt-get install python3-sklearn python3-joblib): ${probe.error?.message ?? probe.stderr.trim()}`
if (skip) console.warn(`tests/examples/seed-pipeline.test.ts: the walkthrough is skipped: ${skip}`)

/** The step of a run whose command contains `text`. */
function step(run: BlockRun, text: string) {
  const found = run.steps.find((s) => s.step.command.includes(text))
  if (!found) throw new Error(`no step runs '${text}'`)
  return found
}

/** `python3 traffic.py`'s report of the run whose command contains `text`. */
function traffic(run: BlockRun, text: string): any {
  return JSON.parse(step(run, text).stdout)
}

type Check = (o: { url: string; run: BlockRun }) => Promise<void>

/** What each block of the walkthrough must have done, by its heading. */
const CHECKS: Record<string, Check> = {
  'Version 1: train, test, ship': async ({ url }) => {
    const detail = await modelDetail(url, MODEL)
    expect(detail.active).toBe(1)
    const [promoted] = eventsOf(await historyOf(url, MODEL), 'promoted', 1)
    const smoke = promoted.stages.find((s: any) => s.stage === 'smoke')
    expect(smoke).toMatchObject({ status: 'passed', details: { minAccuracy: 0.8 } })
    expect(smoke.details.accuracy).toBeGreaterThan(0.9)
    // The server's gate also held the ONNX model to scikit-learn's own answers (ci.sh ships them).
    expect(smoke.details.cases.length).toBeGreaterThan(114)
    expect(promoted.unverified).toBeFalsy()
  },
  'Serving, and the truth coming back': async ({ url, run }) => {
    expect(traffic(run, 'traffic.py').answeredBy).toEqual({ 1: { rows: 171, right: 160 } })
    const live = versionView(await modelDetail(url, MODEL), 1).live
    expect(live).toMatchObject({ requests: 171, errors: 0, feedback: 171 })
    expect(step(run, 'modelgate status').stdout).toMatch(/^\s+1\s+active\s+171\s+0\s/m)
  },
  'Version 2: a retrain, on probation': async ({ url }) => {
    expect((await modelDetail(url, MODEL)).active).toBe(2)
    const history = await historyOf(url, MODEL)
    expect(eventsOf(history, 'promoted', 2)[0]).toMatchObject({ from: 1, trigger: 'watch' })
    const [passed] = eventsOf(history, 'probation_passed', 2)
    expect(passed.insufficient).toBeFalsy()
    expect(passed.rules.map((r: any) => [r.rule, r.status])).toEqual([
      ['error_rate', 'ok'],
      ['latency', 'ok'],
      ['accuracy', 'ok'],
    ])
  },
  'Version 3: broken, refused by CI': async ({ url, run }) => {
    // CI stopped at validate: exit status 1 (the README's `|| test $? -eq 1`), nothing shipped.
    const ci = step(run, 'ci.sh model_v3.pkl').stdout
    expect(ci).toContain('[below_min_accuracy]')
    expect(ci).toMatch(/^FAIL$/m)
    expect(ci).not.toContain('shipped')
    const detail = await modelDetail(url, MODEL)
    expect(detail.active).toBe(2)
    expect(versionView(detail, 3)).toBeUndefined()
  },
  "Version 3 again: refused by the server's gate": async ({ url, run }) => {
    const detail = await modelDetail(url, MODEL)
    expect(detail.active).toBe(2)
    expect(versionView(detail, 3)).toMatchObject({
      status: 'rejected',
      stage: 'smoke',
      reason: 'below_min_accuracy',
    })
    expect(step(run, 'ship model_v3.onnx').stdout).toContain(
      'rejected at smoke: below_min_accuracy',
    )
  },
  'Version 4: worse, and rolled back': async ({ url, run }) => {
    const history = await historyOf(url, MODEL)
    expect(eventsOf(history, 'promoted', 4)[0]).toMatchObject({ from: 2, trigger: 'watch' })
    const [rolledBack] = eventsOf(history, 'auto_rolled_back', 4)
    expect(rolledBack).toMatchObject({ to: 2, rule: 'accuracy', warm: true, sample: 171 })
    expect(rolledBack.observed).toBeLessThan(rolledBack.limit)
    const detail = await modelDetail(url, MODEL)
    expect(detail.active).toBe(2)
    expect(versionView(detail, 4).status).toBe('rolled_back')
    expect(traffic(run, 'traffic.py').answeredBy).toEqual({ 4: { rows: 171, right: 146 } })
  },
  'Drift: a new scanner': async ({ url }) => {
    const [drift] = eventsOf(await historyOf(url, MODEL), 'drift_detected', 2)
    expect(drift.features.map((f: any) => f.feature)).toEqual(SIZE_COLUMNS)
    const detail = await modelDetail(url, MODEL)
    expect(detail.drift).toMatchObject({ reference: 'first_window', detected: true })
    const unmoved = detail.drift.features.filter(
      (f: any) => f.input === 'features' && !SIZE_COLUMNS.includes(f.feature),
    )
    expect(unmoved).toHaveLength(21)
    for (const f of unmoved) expect(f.psi, f.feature).toBe(0)
  },
  'Retrain on the new world': async ({ url, run }) => {
    const detail = await modelDetail(url, MODEL)
    expect(detail.active).toBe(5)
    expect(detail.drift.detected).toBe(false)
    const history = await historyOf(url, MODEL)
    expect(eventsOf(history, 'promoted', 5)[0]).toMatchObject({ from: 2, trigger: 'watch' })
    expect(eventsOf(history, 'drift_cleared', 2)[0].reason).toBe('version 5 is active')
    // Version 2 got 132 of the new scanner's 171 right in the block before.
    expect(traffic(run, 'traffic.py').answeredBy).toEqual({ 5: { rows: 171, right: 160 } })
    // The whole story, in order.
    expect(history.map((e) => `${e.event} ${e.version}`).slice(0, 9)).toEqual([
      'promoted 1',
      'promoted 2',
      'probation_passed 2',
      'rejected 3',
      'promoted 4',
      'auto_rolled_back 4',
      'drift_detected 2',
      'promoted 5',
      'drift_cleared 2',
    ])
  },
}

/** A fresh project with the example's own files in examples/seed-pipeline, as a clone has them. */
async function exampleProject(): Promise<{ root: string; dir: string }> {
  const { root, project } = await makeFreshProject()
  onTestFinished(() => removeProject(root))
  const dir = join(project, 'examples', 'seed-pipeline')
  for (const file of EXAMPLE_FILES) {
    await mkdir(dirname(join(dir, file)), { recursive: true })
    await cp(join(EXAMPLE, file), join(dir, file))
  }
  return { root, dir }
}

/** A user's environment whose `python3` is the one with scikit-learn. */
async function withPython(root: string): Promise<NodeJS.ProcessEnv> {
  const bin = join(root, 'bin')
  await mkdir(bin)
  await symlink(PYTHON, join(bin, 'python3'))
  const env = userEnvironment(root)
  return { ...env, PATH: `${bin}:${env.PATH}` }
}

describe('examples/seed-pipeline', () => {
  it('has a check for every block of its walkthrough, and the walkthrough a block for every check', () => {
    const walkthrough = BLOCKS.filter((b) => b.skip === undefined).map((b) => b.heading)
    expect(walkthrough).toEqual(Object.keys(CHECKS))
    expect(BLOCKS.filter((b) => b.skip !== undefined).map((b) => b.heading)).toEqual(['The server'])
  })

  it('shows model.json as it is', () => {
    const shown = README_TEXT.split('```json\n')[1]?.split('```')[0]
    expect(shown).toBe(readFileSync(join(EXAMPLE, 'models', 'cancer', 'model.json'), 'utf8'))
  })

  it.skipIf(skip !== undefined)(
    "runs its README's walkthrough as written: v1 serves, v2 passes probation, v3 is refused, v4 is rolled back on feedback, drift is detected, the retrain serves",
    async () => {
      const { root, dir } = await exampleProject()
      const env = await withPython(root)
      const server = await spawnServerCli(['--models', join(dir, 'models')])
      const port = Number(new URL(server.url).port)
      const logTail = () => server.output().trimEnd().split('\n').slice(-15).join('\n')
      for (const block of BLOCKS.filter((b) => b.skip === undefined)) {
        const run = await runBlock(block, {
          cwd: dir,
          env,
          port,
          grpcPort: 0,
          timeoutMs: BLOCK_TIMEOUT_MS,
        })
        const failures = blockFailures(run, README)
        expect(
          failures,
          `${failures.join('\n\n')}\n\nthe server's log, last lines:\n${logTail()}`,
        ).toEqual([])
        await CHECKS[block.heading]!({ url: server.url, run })
      }
    },
    180_000,
  )
})

describe('examples/seed-pipeline/.github/workflows/model.yml', () => {
  const workflow = parse(readFileSync(join(EXAMPLE, '.github', 'workflows', 'model.yml'), 'utf8'), {
    uniqueKeys: true,
    prettyErrors: true,
  })
  const runs = (job: string): string[] =>
    workflow.jobs[job].steps.flatMap((s: any) => (s.run ? [s.run] : []))

  it('is a workflow: triggers, two jobs, each step either uses an action at a version or runs a command', () => {
    expect(Object.keys(workflow.on)).toEqual(['push', 'pull_request'])
    expect(workflow.on.push.branches).toEqual(['main'])
    expect(Object.keys(workflow.jobs)).toEqual(['test', 'ship'])
    for (const job of Object.values<any>(workflow.jobs)) {
      expect(job['runs-on']).toBeDefined()
      for (const s of job.steps) {
        expect(Boolean(s.uses) !== Boolean(s.run), JSON.stringify(s)).toBe(true)
        if (s.uses) expect(s.uses).toMatch(/^actions\/[a-z-]+@v\d+$/)
      }
    }
  })

  it('tests on every push and pull request: installs sklearn and the modelgate command, trains, runs ci.sh', () => {
    const commands = runs('test').join('\n')
    expect(commands).toContain('apt-get install -y python3-sklearn')
    expect(commands).toContain('npm ci')
    expect(commands).toMatch(/^python3 data\.py$/m)
    expect(commands).toMatch(/^python3 train\.py --seed 1 --out model\.pkl$/m)
    expect(commands).toMatch(/^\.\/ci\.sh model\.pkl$/m)
    const upload = workflow.jobs.test.steps.find((s: any) => s.uses?.startsWith('actions/upload'))
    expect(upload.with).toEqual({ name: 'model', path: 'model.pkl' })
  })

  it('ships only from main, after the tests, the same pickle, with ci.sh --ship', () => {
    const ship = workflow.jobs.ship
    expect(ship.needs).toBe('test')
    expect(ship.if).toContain("github.ref == 'refs/heads/main'")
    expect(Object.keys(ship.env)).toEqual(['MODELS', 'MODELGATE_URL'])
    const download = ship.steps.find((s: any) => s.uses?.startsWith('actions/download'))
    expect(download.with).toEqual({ name: 'model' })
    const commands = runs('ship').join('\n')
    expect(commands).toContain('npm ci')
    expect(commands).toMatch(/^\.\/ci\.sh model\.pkl --ship$/m)
  })

  it("calls the example's files with options the walkthrough uses too", () => {
    const walkthrough = BLOCKS.flatMap((b) => b.steps.map((s) => s.command))
    const lines = [...runs('test'), ...runs('ship')].flatMap((r) => r.split('\n'))
    for (const line of lines.filter((l) => /^(python3 |\.\/)/.test(l))) {
      const words = line.split(' ')
      const program = words.find((w) => /\.(py|sh)$/.test(w))!
      expect(EXAMPLE_FILES, line).toContain(program.replace(/^\.\//, ''))
      const same = walkthrough.filter((c) => c.includes(program))
      for (const option of words.filter((w) => w.startsWith('--')))
        expect(
          same.some((c) => c.includes(option)),
          `${line}: the walkthrough never runs ${program} with ${option}`,
        ).toBe(true)
    }
  })
})
