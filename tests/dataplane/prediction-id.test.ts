import { describe, expect, it } from 'vitest'
import { clientPredictionId, PredictionIds } from '../../src/dataplane/prediction-id.js'
import { InvalidRequestError } from '../../src/errors.js'

/** The InvalidRequestError `clientPredictionId` throws for `id`. */
function rejection(id: string, from = 'X-Prediction-Id'): InvalidRequestError {
  try {
    clientPredictionId(id, from)
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidRequestError)
    return e as InvalidRequestError
  }
  throw new Error(`expected ${JSON.stringify(id)} to be rejected`)
}

describe('clientPredictionId', () => {
  it('is undefined when the client gave none or an empty one', () => {
    expect(clientPredictionId(undefined, 'X-Prediction-Id')).toBeUndefined()
    expect(clientPredictionId('', 'id')).toBeUndefined()
  })

  it('takes every allowed character', () => {
    const id = 'AZaz09._:-'
    expect(clientPredictionId(id, 'X-Prediction-Id')).toBe(id)
  })

  it('takes 128 characters and rejects 129', () => {
    expect(clientPredictionId('a'.repeat(128), 'X-Prediction-Id')).toBe('a'.repeat(128))
    const e = rejection('a'.repeat(129))
    expect(e.code).toBe('invalid_request')
    expect(e.status).toBe(400)
    expect(e.message).toContain('129 characters')
  })

  it.each(['a b', 'a/b', 'a?b', 'ä', 'a\nb', 'a%20', '#'])(
    'rejects %j, naming where it came from',
    (id) => {
      expect(rejection(id, 'X-Prediction-Id').message).toMatch(/^X-Prediction-Id must be/)
      expect(rejection(id, 'V2 "id"').message).toMatch(/^V2 "id" must be/)
    },
  )
})

describe('PredictionIds', () => {
  it('gives a different id each time, each a valid client id', () => {
    const ids = new PredictionIds()
    const seen = new Set<string>()
    for (let i = 0; i < 10_000; i++) {
      const id = ids.next()
      expect(clientPredictionId(id, 'generated')).toBe(id)
      seen.add(id)
    }
    expect(seen.size).toBe(10_000)
  })

  it('gives different ids from two generators (two processes)', () => {
    const a = new PredictionIds()
    const b = new PredictionIds()
    expect(a.next()).not.toBe(b.next())
  })
})
