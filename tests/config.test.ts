import { describe, expect, it } from 'vitest'
import { ConfigError, loadServeConfig } from '../src/config.js'

describe('loadServeConfig', () => {
  it('applies defaults', () => {
    const c = loadServeConfig({}, {})
    expect(c).toMatchObject({ port: 8080, host: '127.0.0.1', maxBodyBytes: 32 * 2 ** 20, logLevel: 'info', defaultModel: undefined })
    expect(c.modelsDir).toMatch(/\/models$/)
    expect(c.stateDir).toBe(`${c.modelsDir}/.modelgate`)
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('takes flags over environment over defaults', () => {
    const env = { MODELGATE_PORT: '9001', MODELGATE_HOST: '0.0.0.0', MODELGATE_DEFAULT_MODEL: 'iris' }
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

  it('names the flag that holds a bad value', () => {
    expect(() => loadServeConfig({ port: 'eighty' }, {})).toThrow(new ConfigError('invalid --port: Invalid input: expected number, received NaN'))
    expect(() => loadServeConfig({ maxBodySize: '12 parsecs' }, {})).toThrow(/invalid --max-body-size: expected a size/)
    expect(() => loadServeConfig({ logLevel: 'loud' }, {})).toThrow(/invalid --log-level/)
  })

  it('names the environment variable when the bad value came from there', () => {
    expect(() => loadServeConfig({}, { MODELGATE_PORT: '70000' })).toThrow(/invalid MODELGATE_PORT/)
  })

  it('resolves the state directory from --state-dir', () => {
    expect(loadServeConfig({ stateDir: '/tmp/x' }, {}).stateDir).toBe('/tmp/x')
  })

  it('bounds model files at what onnxruntime-node can take (2 GiB - 1), and lower with --max-model-size', () => {
    expect(loadServeConfig({}, {})).toMatchObject({ maxModelBytes: 2 ** 31 - 1, threadpoolStallMs: 10_000 })
    expect(loadServeConfig({ maxModelSize: '512mb' }, {}).maxModelBytes).toBe(512 * 2 ** 20)
    expect(() => loadServeConfig({ maxModelSize: '2gb' }, {})).toThrow(/invalid --max-model-size: at most 2147483647 bytes/)
    expect(loadServeConfig({}, { MODELGATE_THREADPOOL_STALL_MS: '500' }).threadpoolStallMs).toBe(500)
  })
})
