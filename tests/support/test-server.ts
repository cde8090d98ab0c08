import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// The server runs from src/, as the unit tests do: one copy of each module, so an error it throws is
// the class a test imports. The processes and threads it starts run from dist/ (`npm test` builds first).
import { loadServeConfig, type ServeOptionsInput } from '../../src/config.js'
import { createMemoryLogger } from '../../src/log.js'
import { startServer, type ModelgateServer } from '../../src/server.js'
import { waitReady } from './api-client.js'

export interface TestServer {
  readonly url: string
  readonly server: ModelgateServer
  readonly modelsDir: string
  readonly logs: ReturnType<typeof createMemoryLogger>['records']
  close(): Promise<void>
}

export async function makeTempDir(prefix = 'modelgate-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

type ServerOptions = Partial<Record<keyof ServeOptionsInput, string>>
type Env = Readonly<Record<string, string | undefined>>

/**
 * The real server on a free port over a real models directory. `populate` fills the directory
 * before the server starts; the returned server is ready (/readyz answers 200). `env` is what
 * loadServeConfig sees as the environment (e.g. `{ MODELGATE_ADMIN_TOKEN: '...' }`).
 */
export async function startTestServer(
  populate: (modelsDir: string) => Promise<void> | void,
  options: ServerOptions = {},
  env: Env = {},
): Promise<TestServer> {
  const root = await makeTempDir()
  const modelsDir = join(root, 'models')
  await mkdir(modelsDir)
  await populate(modelsDir)
  const t = await startServerOver(modelsDir, options, env)
  return {
    ...t,
    async close() {
      await t.close()
      await rm(root, { recursive: true, force: true })
    },
  }
}

/**
 * The real server over an existing models directory: a restart. The directory belongs to the
 * caller: close() stops the server and leaves it in place.
 */
export async function startServerOver(
  modelsDir: string,
  options: ServerOptions = {},
  env: Env = {},
): Promise<TestServer> {
  const t = await startServerListening(modelsDir, options, env)
  await t.server.loaded
  await waitReady(t.url)
  return t
}

/**
 * startServerOver without waiting: the server listens, and is still loading its models (for
 * tests of what it answers before it is ready; `server.loaded` settles when the load is done).
 */
export async function startServerListening(
  modelsDir: string,
  options: ServerOptions = {},
  env: Env = {},
): Promise<TestServer> {
  // A short stability window keeps tests quick; tests about stability set their own.
  // The `workers` test project runs every lifecycle test with each model in inference workers.
  const forced = process.env.MODELGATE_EXECUTION
  const config = loadServeConfig(
    {
      models: modelsDir,
      port: '0',
      host: '127.0.0.1',
      stabilityMs: '100',
      ...(forced && { execution: forced }),
      ...options,
    },
    env,
  )
  const logger = createMemoryLogger()
  const server = await startServer(config, logger)
  return { url: server.url, server, modelsDir, logs: logger.records, close: () => server.close() }
}
