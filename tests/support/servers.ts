import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import {
  makeTempDir,
  startServerListening,
  startServerOver,
  startTestServer,
  type TestServer,
} from './test-server.js'

/**
 * Servers and temp directories that belong to the running test: each is closed or removed when
 * the test finishes, passed or failed. vitest runs these in reverse order, so a server is closed
 * before the directory it serves is removed. Call them inside a test; a server shared by a whole
 * file starts in beforeAll and closes in afterAll.
 */

type Populate = (modelsDir: string) => Promise<void> | void
type Options = Parameters<typeof startServerOver>[1]
type Env = Parameters<typeof startServerOver>[2]

/** startTestServer: a fresh models directory filled by `populate`, both gone when the test finishes. */
export async function serve(populate: Populate, options?: Options, env?: Env): Promise<TestServer> {
  return closedWithTest(await startTestServer(populate, options, env))
}

/** startServerOver: a server over `modelsDir` (a start or a restart), closed when the test finishes. */
export async function serveOver(
  modelsDir: string,
  options?: Options,
  env?: Env,
): Promise<TestServer> {
  return closedWithTest(await startServerOver(modelsDir, options, env))
}

/** startServerListening: listening, its models still loading; closed when the test finishes. */
export async function serveListening(
  modelsDir: string,
  options?: Options,
  env?: Env,
): Promise<TestServer> {
  return closedWithTest(await startServerListening(modelsDir, options, env))
}

/** A test may close a server itself (to restart over its directory): close() is idempotent. */
function closedWithTest(t: TestServer): TestServer {
  onTestFinished(() => t.close())
  return t
}

/** A fresh temp directory, removed when the test finishes. */
export async function tempDir(prefix?: string): Promise<string> {
  const dir = await makeTempDir(prefix)
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A fresh `models` directory filled by `populate`, in a temp directory of its own (where staged
 * versions go too), removed when the test finishes: it outlives the servers over it, for restarts.
 */
export async function tempModelsDir(populate: Populate, prefix?: string): Promise<string> {
  const dir = join(await tempDir(prefix), 'models')
  await mkdir(dir)
  await populate(dir)
  return dir
}
