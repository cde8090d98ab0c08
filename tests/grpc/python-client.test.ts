import { execFile, spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { V2_TO_ELEMENT, type V2Datatype } from '../../src/v2/datatypes.js'
import { cases, compareOutput, writeConformanceModels } from '../support/conformance.js'
import { PROTO } from '../support/grpc-client.js'
import { makeTempDir, startTestServer, type TestServer } from '../support/test-server.js'

/**
 * A client nobody here wrote: Python's grpcio (Debian's python3-grpcio) with stubs that
 * grpc_tools (python3-grpc-tools) compiles from the vendored .proto, against the real server,
 * over every case of the ONNX conformance corpus (every datatype it has), raw as tritonclient
 * sends tensors and typed as KServe's client does. Outputs are compared with the manifest: dims
 * and integers exact, floats within its tolerance. .ci/run installs the packages where missing.
 */

const execFileAsync = promisify(execFile)
/** Debian's interpreter, where apt puts python3-grpcio (not a pyenv one first on PATH). */
const PYTHON = '/usr/bin/python3'
const CLIENT = join(import.meta.dirname, 'conformance_client.py')

const missing = spawnSync(PYTHON, ['-c', 'import grpc, grpc_tools'], { encoding: 'utf8' })
const skip =
  missing.status === 0
    ? undefined
    : `needs ${PYTHON} with grpc and grpc_tools (apt-get install python3-grpcio python3-grpc-tools): ${missing.error?.message ?? missing.stderr.trim()}`
if (skip) console.warn(`tests/grpc/python-client.test.ts skipped: ${skip}`)

interface PythonOutput {
  readonly datatype: V2Datatype
  readonly shape: number[]
  readonly raw: boolean
  readonly data: (number | string | boolean)[]
}

interface PythonLine {
  readonly case: string
  readonly mode: 'raw' | 'typed'
  readonly error?: string
  readonly response?: {
    model_name: string
    model_version: string
    id: string
    outputs: Record<string, PythonOutput>
  }
}

/** int64/uint64 as the manifest writes them: a number while it is exact, a decimal string beyond. */
function manifestInteger(value: number | string | boolean): number | string {
  const v = BigInt(value as string)
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : String(v)
}

describe.skipIf(skip !== undefined)('the conformance corpus through Python grpcio', () => {
  let t: TestServer
  let lines: PythonLine[]
  beforeAll(async () => {
    t = await startTestServer(writeConformanceModels, { grpcPort: '0' })
    const stubs = await makeTempDir('modelgate-grpc-python-')
    await execFileAsync(PYTHON, [
      '-m',
      'grpc_tools.protoc',
      `-I${dirname(PROTO)}`,
      `--python_out=${stubs}`,
      `--grpc_python_out=${stubs}`,
      PROTO,
    ])
    const input = cases.map((c) => ({
      name: c.name,
      model: c.name,
      inputs: c.inputs,
      outputs: c.outputs.map((o) => o.name),
    }))
    const child = execFileAsync(PYTHON, [CLIENT, `127.0.0.1:${t.server.grpcPort}`], {
      env: { ...process.env, PYTHONPATH: stubs },
      maxBuffer: 64 * 2 ** 20,
    })
    child.child.stdin!.end(JSON.stringify(input))
    const { stdout } = await child
    lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as PythonLine)
  }, 180_000)
  afterAll(() => t?.close())

  it('sent every case raw, and typed where the protocol has a contents field for its inputs', () => {
    const modes = (mode: string) => lines.filter((l) => l.mode === mode).map((l) => l.case)
    expect(modes('raw')).toEqual(cases.map((c) => c.name))
    expect(modes('typed')).toEqual(
      cases.filter((c) => c.inputs.every((i) => i.type !== 'float16')).map((c) => c.name),
    )
    const datatypes = new Set(cases.flatMap((c) => [...c.inputs, ...c.outputs].map((x) => x.type)))
    expect(datatypes.size).toBe(13) // every V2 datatype
  })

  it.each(cases)('$name: the same outputs as the manifest, raw and typed', (c) => {
    for (const line of lines.filter((l) => l.case === c.name)) {
      expect(line.error, `${line.mode}: ${line.error}`).toBeUndefined()
      const r = line.response!
      expect(r).toMatchObject({ model_name: c.name, model_version: '1', id: `py-${line.mode}` })
      expect(Object.keys(r.outputs).sort()).toEqual(c.outputs.map((o) => o.name).sort())
      const problems = c.outputs.flatMap((o) => {
        const got = r.outputs[o.name]!
        const type = V2_TO_ELEMENT[got.datatype]
        // Answered as asked: raw for raw, typed for typed unless an output is FP16 (no field).
        // A request without inputs has no raw_input_contents to tell: it is answered typed.
        const raw =
          (line.mode === 'raw' && c.inputs.length > 0) ||
          c.outputs.some((x) => x.type === 'float16')
        if (got.raw !== raw) return [`${line.mode}: output '${o.name}' raw is ${got.raw}`]
        const data =
          type === 'int64' || type === 'uint64' ? got.data.map(manifestInteger) : got.data
        return compareOutput({ type, shape: got.shape, data }, o, c.tolerance).map(
          (p) => `${line.mode}: ${p}`,
        )
      })
      expect(problems).toEqual([])
    }
  })
})
