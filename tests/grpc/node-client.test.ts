import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { status } from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metricValue } from '../support/api-client.js'
import {
  type GrpcCallOptions,
  grpcFailure,
  inferenceClient,
  type InferenceClient,
} from '../support/grpc-client.js'
import { addConstModel, identityModel, loopCounterModel, writeVersion } from '../support/models.js'
import { serve } from '../support/servers.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/**
 * inference.GRPCInferenceService through @grpc/grpc-js's own client over the vendored .proto:
 * every RPC, raw and typed tensors, int64 and BYTES exact, errors as status codes, deadlines,
 * cancellation, the message size limit and the repository extension's admin metadata.
 */

/** Loop trips that keep the one worker busy for a second or two: time to queue behind it. */
const LONG = 1_200_000

let t: TestServer
let client: InferenceClient
beforeAll(async () => {
  t = await startTestServer(
    async (dir) => {
      await writeVersion(dir, 'add', 1, addConstModel(10))
      await writeVersion(dir, 'i64', 1, identityModel('int64', ['n']))
      await writeVersion(dir, 'text', 1, identityModel('string', ['n']))
      await writeVersion(dir, 'half', 1, identityModel('float16', ['n']))
      for (const model of ['loop', 'loop-cancel']) {
        await writeVersion(dir, model, 1, loopCounterModel())
        await mkdir(join(dir, model), { recursive: true })
        await writeFile(
          join(dir, model, 'model.json'),
          JSON.stringify({
            execution: { mode: 'workers', workers: 1, timeoutSeconds: 30 },
            batching: { enabled: false },
          }),
        )
      }
    },
    { grpcPort: '0', grpcMaxMessageSize: '64k' },
  )
  client = inferenceClient(t.server.grpcPort!)
})
afterAll(async () => {
  client?.close()
  await t?.close()
})

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer)

/** An input with typed contents. */
function typedInput(datatype: string, shape: number[], contents: object, name = 'x') {
  return { name, datatype, shape, contents }
}

describe('health and metadata', () => {
  it('ServerLive, ServerReady, ServerMetadata', async () => {
    expect(await client.call('ServerLive', {})).toEqual({ live: true })
    expect(await client.call('ServerReady', {})).toEqual({ ready: true })
    const meta = await client.call('ServerMetadata', {})
    expect(meta).toMatchObject({ name: 'modelgate', extensions: ['model_repository'] })
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('ModelReady and ModelMetadata, by model and by version', async () => {
    expect(await client.call('ModelReady', { name: 'add' })).toEqual({ ready: true })
    expect(await client.call('ModelReady', { name: 'add', version: '1' })).toEqual({ ready: true })
    expect(await client.call('ModelMetadata', { name: 'add' })).toEqual({
      name: 'add',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['-1', '4'] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: ['-1', '4'] }],
    })
  })

  it('an unknown model or version is NOT_FOUND, with the stable error code in the trailer', async () => {
    const e = await grpcFailure(client.call('ModelMetadata', { name: 'nope' }))
    expect(e.code).toBe(status.NOT_FOUND)
    expect(e.details).toBe("model 'nope' does not exist")
    expect(e.metadata.get('modelgate-error-code')).toEqual(['model_not_found'])
    const v = await grpcFailure(client.call('ModelReady', { name: 'add', version: '7' }))
    expect(v.code).toBe(status.NOT_FOUND)
    expect(v.metadata.get('modelgate-error-code')).toEqual(['version_not_found'])
  })
})

describe('ModelInfer', () => {
  it('raw_input_contents in, raw_output_contents out', async () => {
    const r = await client.call('ModelInfer', {
      model_name: 'add',
      id: 'raw-1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4] }],
      raw_input_contents: [f32([1, 2, 3, 4, 5, 6, 7, 8])],
    })
    expect(r).toMatchObject({ model_name: 'add', model_version: '1', id: 'raw-1' })
    expect(r.outputs).toEqual([
      { name: 'y', datatype: 'FP32', shape: ['2', '4'], parameters: {}, contents: null },
    ])
    const y = r.raw_output_contents[0] as Buffer
    expect([...new Float32Array(y.buffer.slice(y.byteOffset, y.byteOffset + y.length))]).toEqual([
      11, 12, 13, 14, 15, 16, 17, 18,
    ])
  })

  it('typed contents in, typed contents out; an output asked for by name', async () => {
    const r = await client.call('ModelInfer', {
      model_name: 'add',
      model_version: '1',
      inputs: [typedInput('FP32', [1, 4], { fp32_contents: [0, 1, 2, 3] })],
      outputs: [{ name: 'y' }],
    })
    expect(r.raw_output_contents).toEqual([])
    expect(r.outputs[0].contents.fp32_contents).toEqual([10, 11, 12, 13])
    expect(r.id).not.toBe('') // made up, as for REST: feedback names it
  })

  it('int64 beyond 2^53 stays exact, typed and raw', async () => {
    const values = ['9007199254740993', '-9223372036854775808', '9223372036854775807']
    const typed = await client.call('ModelInfer', {
      model_name: 'i64',
      inputs: [typedInput('INT64', [3], { int64_contents: values })],
    })
    expect(typed.outputs[0].contents.int64_contents).toEqual(values)
    const raw = await client.call('ModelInfer', {
      model_name: 'i64',
      inputs: [{ name: 'x', datatype: 'INT64', shape: [3] }],
      raw_input_contents: [Buffer.from(BigInt64Array.from(values, BigInt).buffer)],
    })
    const out = raw.raw_output_contents[0] as Buffer
    expect(Array.from({ length: 3 }, (_, i) => out.readBigInt64LE(i * 8).toString())).toEqual(
      values,
    )
  })

  it('BYTES: bytes_contents, and raw length-prefixed elements', async () => {
    const typed = await client.call('ModelInfer', {
      model_name: 'text',
      inputs: [
        typedInput('BYTES', [2], { bytes_contents: [Buffer.from('héllo'), Buffer.from('')] }),
      ],
    })
    expect(typed.outputs[0].contents.bytes_contents.map(String)).toEqual(['héllo', ''])
    const element = (s: string) => {
      const b = Buffer.from(s)
      const n = Buffer.alloc(4)
      n.writeUInt32LE(b.length)
      return Buffer.concat([n, b])
    }
    const raw = await client.call('ModelInfer', {
      model_name: 'text',
      inputs: [{ name: 'x', datatype: 'BYTES', shape: [2] }],
      raw_input_contents: [Buffer.concat([element('a'), element('ünï')])],
    })
    expect(raw.raw_output_contents[0]).toEqual(Buffer.concat([element('a'), element('ünï')]))
    const bad = await grpcFailure(
      client.call('ModelInfer', {
        model_name: 'text',
        inputs: [typedInput('BYTES', [1], { bytes_contents: [Buffer.from([0xff])] })],
      }),
    )
    expect(bad.code).toBe(status.INVALID_ARGUMENT)
    expect(bad.details).toContain('not UTF-8')
  })

  it('FP16 travels raw only: typed contents for it are refused, the answer is raw', async () => {
    const e = await grpcFailure(
      client.call('ModelInfer', {
        model_name: 'half',
        inputs: [typedInput('FP16', [1], { fp32_contents: [1] })],
      }),
    )
    expect(e.code).toBe(status.INVALID_ARGUMENT)
    expect(e.details).toContain('raw_input_contents')
    const one = Buffer.from([0x00, 0x3c]) // 1.0 as float16, little-endian
    const r = await client.call('ModelInfer', {
      model_name: 'half',
      inputs: [{ name: 'x', datatype: 'FP16', shape: [1] }],
      raw_input_contents: [one],
    })
    expect(r.raw_output_contents).toEqual([one])
  })

  it("the data plane's errors map to status codes, with their message", async () => {
    const cases: [object, status, string][] = [
      [{ model_name: 'nope' }, status.NOT_FOUND, 'model_not_found'],
      [
        {
          model_name: 'add',
          inputs: [typedInput('INT32', [1, 4], { int_contents: [1, 2, 3, 4] })],
        },
        status.INVALID_ARGUMENT,
        'invalid_type',
      ],
      [
        {
          model_name: 'add',
          inputs: [typedInput('FP32', [1, 4], { fp32_contents: [1] })],
        },
        status.INVALID_ARGUMENT,
        'invalid_shape',
      ],
      [{ model_name: 'add', inputs: [] }, status.INVALID_ARGUMENT, 'missing_input'],
      [
        {
          model_name: 'add',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }],
          raw_input_contents: [f32([1, 2, 3, 4]), f32([1])],
        },
        status.INVALID_ARGUMENT,
        'invalid_request',
      ],
    ]
    for (const [request, code, errorCode] of cases) {
      const e = await grpcFailure(client.call('ModelInfer', request))
      expect({ code: e.code, errorCode: e.metadata.get('modelgate-error-code')[0] }).toEqual({
        code,
        errorCode,
      })
      expect(e.details).not.toBe('')
    }
  })

  it('a message over --grpc-max-message-size is RESOURCE_EXHAUSTED, naming both sizes', async () => {
    const e = await grpcFailure(
      client.call('ModelInfer', {
        model_name: 'add',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [5000, 4] }],
        raw_input_contents: [Buffer.alloc(5000 * 16)],
      }),
    )
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED)
    expect(e.details).toMatch(/larger than max \(\d+ vs\.? 65536\)/)
  })
})

describe('deadlines and cancellation', () => {
  /** Runs of the model so far. */
  const runs = (model: string) =>
    metricValue(t.url, 'modelgate_inference_duration_seconds_count', { model, version: '1' })
  const inFlight = () => metricValue(t.url, 'modelgate_in_flight_requests')
  const cancelled = (model: string) =>
    metricValue(t.url, 'modelgate_requests_total', { model, version: '1', status: '499' })
  const count = (model: string, m: number, o: GrpcCallOptions = {}) =>
    client.call(
      'ModelInfer',
      {
        model_name: model,
        inputs: [typedInput('INT64', [], { int64_contents: [String(m)] }, 'M')],
      },
      o,
    )

  it('a call whose deadline passes while it waits is DEADLINE_EXCEEDED and never runs', async () => {
    const before = (await runs('loop')) ?? 0
    const long = count('loop', LONG)
    await waitFor(async () => (await inFlight()) === 1, 'the long run to start')
    const late = grpcFailure(count('loop', 5, { deadline: new Date(Date.now() + 300) }))
    const e = await late
    expect(e.code).toBe(status.DEADLINE_EXCEEDED)
    const first = await long
    expect(first.outputs[0].contents.int64_contents).toEqual([String(LONG)])
    await waitFor(async () => (await cancelled('loop')) === 1, 'the late call to be dropped')
    expect((await runs('loop'))! - before).toBe(1)
  })

  it('a call cancelled while it waits is never run', async () => {
    const before = (await runs('loop-cancel')) ?? 0
    const long = count('loop-cancel', LONG)
    await waitFor(async () => (await inFlight()) === 1, 'the long run to start')
    let call: { cancel(): void } | undefined
    const gone = grpcFailure(count('loop-cancel', 5, { onCall: (c) => (call = c) }))
    await waitFor(async () => (await inFlight()) === 2, 'the second call to queue')
    call!.cancel()
    expect((await gone).code).toBe(status.CANCELLED)
    await long
    await waitFor(async () => (await cancelled('loop-cancel')) === 1, 'the call to be dropped')
    expect((await runs('loop-cancel'))! - before).toBe(1)
  })
})

describe('the repository extension', () => {
  it('is open to loopback peers when no token is configured', async () => {
    const index = await client.call('RepositoryIndex', { ready: true })
    expect(index.models).toContainEqual({
      name: 'add',
      version: '1',
      state: 'READY',
      reason: 'active',
    })
  })

  it('with a token: refused without it or with a wrong one; index, unload and load with it', async () => {
    const token = 'grpc-admin-token-0123456789'
    const s = await serve(
      async (dir) => {
        await writeVersion(dir, 'add', 1, addConstModel(1))
      },
      { grpcPort: '0' },
      { MODELGATE_ADMIN_TOKEN: token },
    )
    const c = inferenceClient(s.server.grpcPort!)
    try {
      const none = await grpcFailure(c.call('RepositoryIndex', {}))
      expect(none.code).toBe(status.UNAUTHENTICATED)
      expect(none.details).toContain('Bearer')
      const wrong = await grpcFailure(
        c.call('RepositoryIndex', {}, { metadata: { authorization: 'Bearer not-the-token' } }),
      )
      expect(wrong.code).toBe(status.UNAUTHENTICATED)
      const admin = { metadata: { authorization: `Bearer ${token}` } }
      expect((await c.call('RepositoryIndex', {}, admin)).models).toHaveLength(1)
      await c.call('RepositoryModelUnload', { model_name: 'add' }, admin)
      expect(await c.call('ModelReady', { name: 'add' })).toEqual({ ready: false })
      const unready = await grpcFailure(
        c.call('ModelInfer', {
          model_name: 'add',
          inputs: [typedInput('FP32', [1, 4], { fp32_contents: [0, 0, 0, 0] })],
        }),
      )
      expect(unready.code).toBe(status.UNAVAILABLE)
      await c.call('RepositoryModelLoad', { model_name: 'add' }, admin)
      expect(await c.call('ModelReady', { name: 'add' })).toEqual({ ready: true })
    } finally {
      c.close()
    }
  })
})

describe('shutdown', () => {
  it('drains: a call in flight is answered, a call after the shutdown began is refused', async () => {
    const s = await serve(
      async (dir) => {
        await writeVersion(dir, 'loop', 1, loopCounterModel())
        await writeFile(
          join(dir, 'loop', 'model.json'),
          JSON.stringify({ execution: { mode: 'workers', workers: 1 } }),
        )
      },
      { grpcPort: '0' },
    )
    const c = inferenceClient(s.server.grpcPort!)
    try {
      const long = c.call('ModelInfer', {
        model_name: 'loop',
        inputs: [typedInput('INT64', [], { int64_contents: [String(LONG)] }, 'M')],
      })
      await waitFor(
        async () => (await metricValue(s.url, 'modelgate_in_flight_requests')) === 1,
        'the long run to start',
      )
      const closed = s.server.close()
      const after = await grpcFailure(c.call('ServerLive', {}))
      expect(after.code).toBe(status.UNAVAILABLE)
      expect((await long).outputs[0].contents.int64_contents).toEqual([String(LONG)])
      await closed
    } finally {
      c.close()
    }
  })
})
