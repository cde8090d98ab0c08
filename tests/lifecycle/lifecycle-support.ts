import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { GateJob } from '../../src/lifecycle/gate/gate-types.js'
import { X } from '../support/api-client.js'
import { addConstModel } from '../support/models.js'
import { tempModelsDir } from '../support/servers.js'

/** Helpers for the admin, restart, crash and load tests: versions told apart by y = x + v. */

/** The smoke case a version of addConstModel(c) passes (or fails, with `off` != 0). */
export function smokeFor(c: number, off = 0): string {
  return JSON.stringify({
    cases: [
      { name: `adds ${c}`, inputs: { x: X }, expect: { y: [X[0]!.map((v) => v + c + off)] } },
    ],
  })
}

/** Writes `<model>/<version>/model.onnx` = addConstModel(version) (and a passing smoke.json if asked). */
export async function writeConstVersion(
  modelsDir: string,
  model: string,
  version: number,
  o: { smoke?: boolean } = {},
): Promise<void> {
  const dir = join(modelsDir, model, String(version))
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'model.onnx'), addConstModel(version))
  if (o.smoke) await writeFile(join(dir, 'smoke.json'), smokeFor(version))
}

/** history.jsonl as written on disk: every complete line parsed; a torn last line is returned apart. */
export async function readHistoryFile(
  stateDir: string,
): Promise<{ entries: any[]; torn: string | undefined }> {
  const text = await readFile(join(stateDir, 'history.jsonl'), 'utf8').catch(() => '')
  const lines = text.split('\n')
  const last = lines.pop()!
  const entries = lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l))
  return { entries, torn: last === '' ? undefined : last }
}

/** A models directory holding adder v1 (y = x + 1), removed when the test finishes. */
export function modelsDirWithV1(prefix?: string): Promise<string> {
  return tempModelsDir((dir) => writeConstVersion(dir, 'adder', 1), prefix)
}

/** A gate job for one model file, with no smoke cases, contract or comparison. */
export function plainGateJob(file: string, sha256: string, root: string | undefined): GateJob {
  return {
    model: 'm',
    version: 1,
    candidate: { file, sha256 },
    root,
    sessionOptions: {},
    smoke: { cases: [], minAccuracy: 1, files: [] },
    requireSmoke: false,
    contract: undefined,
    allowSignatureChange: false,
    latency: undefined,
    agreement: undefined,
    reference: undefined,
  }
}
