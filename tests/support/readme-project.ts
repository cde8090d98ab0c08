import { spawn, type ChildProcess } from 'node:child_process'
import { cp, mkdir, rm, symlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { waitReady } from './api-client.js'
import { makeTempDir } from './test-server.js'
import { waitFor } from './wait-for.js'

const REPO = join(import.meta.dirname, '..', '..')

/**
 * A fresh clone after `npm install`, without copying node_modules: `node_modules` and `dist` are
 * symlinks to this repository's, `package.json`, `package-lock.json`, `.npmrc` and `scripts/` are
 * copies, and `models/` is a real copy without any state (the README's examples ship versions into
 * it and roll them back).
 */
export async function makeFreshProject(): Promise<{ root: string; project: string }> {
  const root = await makeTempDir('modelgate-readme-')
  const project = join(root, 'modelgate')
  await mkdir(project)
  for (const name of ['node_modules', 'dist'])
    await symlink(join(REPO, name), join(project, name), 'dir')
  for (const name of ['package.json', 'package-lock.json', '.npmrc'])
    await cp(join(REPO, name), join(project, name))
  await cp(join(REPO, 'scripts'), join(project, 'scripts'), { recursive: true })
  await cp(join(REPO, 'models'), join(project, 'models'), {
    recursive: true,
    filter: (src) => basename(src) !== '.modelgate',
  })
  return { root, project }
}

/**
 * The environment a user's shell would have: this process's, without anything modelgate, vitest or
 * the `npm test` that runs us put there. npm gets its own cache in `root` (`npx modelgate` installs
 * the project there, as it does into ~/.npm for a user), never asks the registry (`npx` of a name
 * it cannot resolve would otherwise download a package of that name), and runs no lifecycle script:
 * `prepare` would rebuild `dist`, which `npm test` has just built and which is a symlink here.
 */
export function userEnvironment(root: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(MODELGATE_|VITEST|npm_|NODE_OPTIONS$|NODE_ENV$)/i.test(k),
    ),
  )
  return {
    ...env,
    npm_config_cache: join(root, 'npm-cache'),
    npm_config_offline: 'true',
    npm_config_ignore_scripts: 'true',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  }
}

export interface ProjectServer {
  readonly port: number
  /** Where it listens for gRPC (`npm start` turns it on: the README's localhost:8081). */
  readonly grpcPort: number
  /** The server's log so far (JSON lines), for failure messages. */
  log(): string
  stop(): Promise<void>
}

/** `npm start` without its build: `node dist/cli.js serve` from the project, on free ports (HTTP, gRPC). */
export async function startProjectServer(
  project: string,
  env: NodeJS.ProcessEnv,
): Promise<ProjectServer> {
  const child = spawn(
    process.execPath,
    ['dist/cli.js', 'serve', '--port', '0', '--grpc-port', '0'],
    {
      cwd: project,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let log = ''
  child.stdout.on('data', (c: Buffer) => (log += c.toString()))
  child.stderr.on('data', (c: Buffer) => (log += c.toString()))
  const stop = () => stopChild(child)
  try {
    let port = 0
    let grpcPort = 0
    await waitFor(() => {
      if (child.exitCode !== null)
        throw new Error(`the server exited with status ${child.exitCode}:\n${log}`)
      const m = /"event":"listening","url":"http:\/\/[^"]*:(\d+)"/.exec(log)
      if (m) port = Number(m[1])
      const g = /"event":"grpc_listening","address":"[^"]*:(\d+)"/.exec(log)
      if (g) grpcPort = Number(g[1])
      return port !== 0 && grpcPort !== 0
    }, 'the server to listen')
    await waitReady(`http://127.0.0.1:${port}`)
    return { port, grpcPort, log: () => log, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

export async function removeProject(root: string): Promise<void> {
  await rm(root, { recursive: true, force: true })
}
