import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadServeConfig } from '../src/config.js'

describe('loadServeConfig', () => {
  it('applies defaults', () => {
    const c = loadServeConfig({}, {})
    expect(c).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      maxBodyBytes: 32 * 2 ** 20,
      logLevel: 'info',
      defaultModel: undefined,
    })
    expect(c.modelsDir).toMatch(/\/models$/)
    expect(c.stateDir).toBe(`${c.modelsDir}/.modelgate`)
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('takes flags over environment over defaults', () => {
    const env = {
      MODELGATE_PORT: '9001',
      MODELGATE_HOST: '0.0.0.0',
      MODELGATE_DEFAULT_MODEL: 'iris',
    }
    const c = loadServeConfig({ port: '9002' }, env)
    expect(c.port).toBe(9002)
    expect(c.host).toBe('0.0.0.0')
    expect(c.defaultModel).toBe('iris')
  })

  it('parses sizes with units', () => {
    expect(loadServeConfig({ maxBodySize: '512k' }, {}).maxBodyBytes).toBe(512 * 1024)
    expect(loadServeConfig({ maxBodySize: '2MB' }, {}).maxBodyBytes).toBe(2 * 2 ** 20)
    expect(loadServeConfig({}, { MODELGATE_MAX_BODY_SIZE: '1000' }).maxBodyBytes).toBe(1000)
  })

  it('bounds an answer at 64 MiB unless --max-output-size or MODELGATE_MAX_OUTPUT_SIZE says otherwise', () => {
    expect(loadServeConfig({}, {}).maxOutputBytes).toBe(64 * 2 ** 20)
    expect(loadServeConfig({ maxOutputSize: '1g' }, {}).maxOutputBytes).toBe(2 ** 30)
    expect(loadServeConfig({}, { MODELGATE_MAX_OUTPUT_SIZE: '512k' }).maxOutputBytes).toBe(
      512 * 1024,
    )
    expect(() => loadServeConfig({}, { MODELGATE_MAX_OUTPUT_SIZE: 'lots' })).toThrow(
      /invalid MODELGATE_MAX_OUTPUT_SIZE: expected a size/,
    )
  })

  it('names the flag that holds a bad value', () => {
    expect(() => loadServeConfig({ port: 'eighty' }, {})).toThrow(
      new ConfigError("invalid --port: expected a number, got 'eighty'"),
    )
    expect(() => loadServeConfig({ maxBodySize: '12 parsecs' }, {})).toThrow(
      /invalid --max-body-size: expected a size/,
    )
    expect(() => loadServeConfig({ logLevel: 'loud' }, {})).toThrow(/invalid --log-level/)
  })

  it('says what is wrong in words a person uses, with the value given', () => {
    const message = (flags: Record<string, string>, env: Record<string, string> = {}) => {
      try {
        loadServeConfig(flags, env)
      } catch (e) {
        return (e as Error).message
      }
      throw new Error('no error')
    }
    expect(message({ port: '1.5' })).toBe("invalid --port: expected a whole number, got '1.5'")
    expect(message({ port: '99999' })).toBe("invalid --port: must be at most 65535, got '99999'")
    expect(message({ rescanMs: '5' })).toBe("invalid --rescan-ms: must be at least 100, got '5'")
    expect(message({ logLevel: 'loud' })).toBe(
      "invalid --log-level: expected one of debug, info, warn, error, silent, got 'loud'",
    )
    expect(message({}, { MODELGATE_POLL: 'maybe' })).toBe(
      "invalid MODELGATE_POLL: expected true or false, got 'maybe'",
    )
    expect(message({ host: '' })).toBe("invalid --host: must not be empty, got ''")
    // Never zod's own wording.
    for (const m of [message({ port: 'x' }), message({ shutdownTimeout: 'abc' })])
      expect(m).not.toMatch(/Invalid input|received|NaN/)
  })

  it('names the environment variable when the bad value came from there', () => {
    expect(() => loadServeConfig({}, { MODELGATE_PORT: '70000' })).toThrow(/invalid MODELGATE_PORT/)
  })

  it('bounds request bodies together and in time, with defaults of our own', () => {
    expect(loadServeConfig({}, {})).toMatchObject({
      maxInflightBodyBytes: 256 * 2 ** 20,
      headerTimeoutMs: 10_000,
      bodyTimeoutMs: 30_000,
      requestTimeoutMs: 300_000,
    })
    const c = loadServeConfig(
      { maxInflightBodySize: '1g', headerTimeout: '2.5' },
      { MODELGATE_BODY_TIMEOUT: '5', MODELGATE_REQUEST_TIMEOUT: '60' },
    )
    expect(c).toMatchObject({
      maxInflightBodyBytes: 2 ** 30,
      headerTimeoutMs: 2500,
      bodyTimeoutMs: 5000,
      requestTimeoutMs: 60_000,
    })
    expect(() => loadServeConfig({ bodyTimeout: '0' }, {})).toThrow(/invalid --body-timeout/)
  })

  it('refuses a body budget smaller than the largest body, naming both', () => {
    expect(() => loadServeConfig({ maxBodySize: '64mb', maxInflightBodySize: '32mb' }, {})).toThrow(
      new ConfigError(
        'invalid --max-inflight-body-size: must be at least --max-body-size (67108864 bytes), or no body of the largest size could ever be received',
      ),
    )
    expect(() => loadServeConfig({}, { MODELGATE_MAX_INFLIGHT_BODY_SIZE: '1mb' })).toThrow(
      /invalid MODELGATE_MAX_INFLIGHT_BODY_SIZE: must be at least --max-body-size/,
    )
    expect(
      loadServeConfig({ maxBodySize: '1mb', maxInflightBodySize: '1mb' }, {}).maxInflightBodyBytes,
    ).toBe(2 ** 20)
  })

  it('refuses a request timeout shorter than the header timeout', () => {
    expect(() => loadServeConfig({ headerTimeout: '20', requestTimeout: '10' }, {})).toThrow(
      /invalid --request-timeout: must be at least --header-timeout \(20 s\)/,
    )
  })

  it('resolves the state directory from --state-dir', () => {
    expect(loadServeConfig({ stateDir: '/tmp/x' }, {}).stateDir).toBe('/tmp/x')
  })

  it('bounds model files at what onnxruntime-node can take (2 GiB - 1), and lower with --max-model-size', () => {
    expect(loadServeConfig({}, {})).toMatchObject({
      maxModelBytes: 2 ** 31 - 1,
      threadpoolStallMs: 10_000,
    })
    expect(loadServeConfig({ maxModelSize: '512mb' }, {}).maxModelBytes).toBe(512 * 2 ** 20)
    expect(() => loadServeConfig({ maxModelSize: '2gb' }, {})).toThrow(
      /invalid --max-model-size: at most 2147483647 bytes/,
    )
    expect(loadServeConfig({}, { MODELGATE_THREADPOOL_STALL_MS: '500' }).threadpoolStallMs).toBe(
      500,
    )
  })
})

describe('webhooks', () => {
  it('runs one process unless --workers or MODELGATE_WORKERS asks for 2 to 64', () => {
    expect(loadServeConfig({}, {}).workers).toBe(1)
    expect(loadServeConfig({ workers: '4' }, {}).workers).toBe(4)
    expect(loadServeConfig({}, { MODELGATE_WORKERS: '64' }).workers).toBe(64)
    expect(() => loadServeConfig({ workers: '0' }, {})).toThrow(
      new ConfigError("invalid --workers: must be at least 1, got '0'"),
    )
    expect(() => loadServeConfig({}, { MODELGATE_WORKERS: '65' })).toThrow(
      new ConfigError("invalid MODELGATE_WORKERS: must be at most 64, got '65'"),
    )
    expect(() => loadServeConfig({ workers: '1.5' }, {})).toThrow(
      /invalid --workers: expected a whole number/,
    )
  })

  it('takes --webhook more than once, or MODELGATE_WEBHOOK as a space-separated list', () => {
    expect(loadServeConfig({}, {}).webhooks).toEqual([])
    expect(
      loadServeConfig({ webhook: ['http://a.example/hook', 'https://b.example/x?k=1'] }, {})
        .webhooks,
    ).toEqual(['http://a.example/hook', 'https://b.example/x?k=1'])
    expect(
      loadServeConfig({}, { MODELGATE_WEBHOOK: ' http://a.example/1  http://b.example/2 ' })
        .webhooks,
    ).toEqual(['http://a.example/1', 'http://b.example/2'])
  })

  it('refuses a webhook that is not an http(s) URL, naming the flag', () => {
    expect(() => loadServeConfig({ webhook: ['ftp://a.example/'] }, {})).toThrow(
      /invalid --webhook: expected an http:\/\/ or https:\/\/ URL, got 'ftp:\/\/a.example\/'/,
    )
    expect(() => loadServeConfig({}, { MODELGATE_WEBHOOK: 'not-a-url' })).toThrow(
      /invalid MODELGATE_WEBHOOK: .*'not-a-url'/,
    )
  })

  it('reads the signing secret from MODELGATE_WEBHOOK_SECRET or --webhook-secret-file, never argv', async () => {
    expect(loadServeConfig({}, {}).webhookSecret).toBeUndefined()
    expect(loadServeConfig({}, { MODELGATE_WEBHOOK_SECRET: ' s3cret\n' }).webhookSecret).toBe(
      's3cret',
    )
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-config-'))
    try {
      await writeFile(join(dir, 'secret'), 'from-file\n')
      const c = loadServeConfig(
        { webhookSecretFile: join(dir, 'secret') },
        { MODELGATE_WEBHOOK_SECRET: 'from-env' },
      )
      expect(c.webhookSecret).toBe('from-file')
      expect(() => loadServeConfig({ webhookSecretFile: join(dir, 'none') }, {})).toThrow(
        /invalid --webhook-secret-file: cannot read/,
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
