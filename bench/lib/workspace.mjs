// A scenario's own temp directory: a models directory, the server's state directory and room for
// staging, removed at the end. The bench never touches the project's models/ folder or its state
// directory: a running `npm start` shares them.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** @returns {{root: string, models: string, stateDir: string, remove(): void}} */
export function createWorkspace(name) {
  const root = mkdtempSync(join(tmpdir(), `mg-bench-${name}-`))
  const models = join(root, 'models')
  const stateDir = join(root, 'state')
  mkdirSync(models)
  return { root, models, stateDir, remove: () => rmSync(root, { recursive: true, force: true }) }
}
