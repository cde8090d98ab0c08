import { describe, expect, it } from 'vitest'
import { modelConfigSchema } from '../../src/repository/model-config.js'

describe('model.json', () => {
  it('bounds what drift may hold in memory', () => {
    // A window holds, per feature, a Float64Array of its reference and a Uint8Array ring: at
    // 1,000,000 rows and 256 columns that was 2.3 GB.
    const tooWide = modelConfigSchema.safeParse({ drift: { window: 100_001 } })
    expect(tooWide.success).toBe(false)
    expect(tooWide.error?.issues[0]?.path).toEqual(['drift', 'window'])
    expect(modelConfigSchema.parse({ drift: { window: 100_000 } }).drift?.window).toBe(100_000)
  })

  it('takes each rollout mode with its defaults, and refuses steps that do not increase', () => {
    expect(modelConfigSchema.parse({}).rollout).toEqual({ mode: 'immediate' })
    expect(modelConfigSchema.parse({ rollout: { mode: 'shadow' } }).rollout).toEqual({
      mode: 'shadow',
      fraction: 1,
      minRequests: 200,
      agreement: { min: 0.98, tolerance: { atol: 1e-5, rtol: 1e-3 } },
    })
    expect(modelConfigSchema.parse({ rollout: { mode: 'canary' } }).rollout).toEqual({
      mode: 'canary',
      steps: [10, 50],
      stepSeconds: 60,
    })
    const down = modelConfigSchema.safeParse({ rollout: { mode: 'canary', steps: [50, 10] } })
    expect(down.success).toBe(false)
    expect(down.error?.issues[0]?.message).toBe('steps must increase')
    expect(modelConfigSchema.safeParse({ rollout: { mode: 'blue-green' } }).success).toBe(false)
  })
})
