import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { SMOKE_FILE_MAX_BYTES } from '../repository/repository-file.js'
import { usageError } from './exit.js'

/**
 * The sample inputs `smoke record` runs, from a JSON file in one of three forms, so that files a
 * user already has serve as they are:
 *   {"inputs": ...}                          one request's inputs (reference.json's form)
 *   [{"name": "setosa", "inputs": ...}, ...]  named cases (name optional)
 *   {"cases": [{"name", "inputs", ...}]}      a smoke.json: its inputs are recorded again
 */

export interface SampleCase {
  readonly name: string
  readonly inputs: unknown
}

export async function readSampleCases(file: string): Promise<SampleCase[]> {
  const size = (await stat(file).catch(() => undefined))?.size
  if (size === undefined) throw usageError(`--inputs ${file} does not exist`)
  if (size > SMOKE_FILE_MAX_BYTES)
    throw usageError(`--inputs ${file} is larger than smoke.json may be (64 MiB)`)
  let json: unknown
  try {
    json = JSON.parse(await readFile(file, 'utf8'))
  } catch (e) {
    throw usageError(`--inputs ${file} is not JSON: ${(e as Error).message}`)
  }
  const entries = listed(json)
  if (!entries)
    throw usageError(
      `--inputs ${file}: expected {"inputs": ...}, a list of {"name", "inputs"}, or a smoke.json with "cases"`,
    )
  if (entries.length === 0) throw usageError(`--inputs ${file} holds no cases`)
  return entries.map((entry, i) => {
    const e = entry as { name?: unknown; inputs?: unknown } | null
    if (e === null || typeof e !== 'object' || e.inputs === undefined)
      throw usageError(`--inputs ${file}: case ${i} has no "inputs"`)
    return {
      name: typeof e.name === 'string' && e.name ? e.name : `${basename(file)}#${i}`,
      inputs: e.inputs,
    }
  })
}

function listed(json: unknown): unknown[] | undefined {
  if (Array.isArray(json)) return json
  if (json === null || typeof json !== 'object') return undefined
  const o = json as { inputs?: unknown; cases?: unknown }
  if (Array.isArray(o.cases)) return o.cases
  if (o.inputs !== undefined) return [{ inputs: o.inputs }]
  return undefined
}
