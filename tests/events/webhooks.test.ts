import { createHmac } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { historyOf, metricValue, predict, waitActive } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'
import {
  type ReceivedRequest,
  refusedUrl,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../support/webhook-receiver.js'

/**
 * --webhook against a real receiver (node:http): every lifecycle event is POSTed, in order per
 * model, signed; and a receiver that fails, hangs or is not there never holds up a prediction or
 * a promotion.
 */

const SECRET = 'a-webhook-secret-of-some-length'

let server: TestServer | undefined
let receiver: WebhookReceiver | undefined
afterEach(async () => {
  await server?.close()
  await receiver?.close()
  server = receiver = undefined
})

async function serveTwoModels(url: string, options: Record<string, string> = {}) {
  return startTestServer(
    async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
      await writeVersion(dir, 'other', 1, addConstModel(10))
    },
    { webhook: url, ...options },
    { MODELGATE_WEBHOOK_SECRET: SECRET },
  )
}

/** The ids of one model's events, in the order they reached the receiver. */
function idsOf(requests: readonly ReceivedRequest[], model: string): number[] {
  return requests.filter((r) => r.event.model === model).map((r) => r.event.id)
}

const ascending = (ids: readonly number[]) => ids.every((id, i) => i === 0 || id > ids[i - 1]!)

describe('--webhook', () => {
  it('POSTs every history entry as an event, in order per model, signed, with its type and id in headers, and the URL’s credentials as Basic auth', async () => {
    receiver = await startWebhookReceiver()
    // Credentials in the URL are sent as Basic auth (and kept out of logs and metrics).
    server = await serveTwoModels(receiver.url.replace('http://', 'http://hook:s%40cret@'))
    await writeVersion(server.modelsDir, 'adder', 2, addConstModel(2))
    await writeVersion(server.modelsDir, 'other', 2, addConstModel(20))
    await waitActive(server.url, 'adder', 2)
    await waitActive(server.url, 'other', 2)
    const history = [
      ...(await historyOf(server.url, 'adder')),
      ...(await historyOf(server.url, 'other')),
    ]
    await waitFor(() => receiver!.delivered.length === history.length, 'every event delivered')

    for (const r of receiver.delivered) {
      expect(r.headers['content-type']).toBe('application/json')
      expect(r.headers.authorization).toBe(`Basic ${Buffer.from('hook:s@cret').toString('base64')}`)
      expect(r.headers['x-modelgate-event']).toBe(r.event.type)
      expect(r.headers['x-modelgate-event-id']).toBe(String(r.event.id))
      const hmac = createHmac('sha256', SECRET).update(r.body).digest('hex')
      expect(r.headers['x-modelgate-signature']).toBe(`sha256=${hmac}`)
    }
    for (const model of ['adder', 'other'])
      expect(ascending(idsOf(receiver.delivered, model))).toBe(true)
    // The event is the history entry: `event` is `type`, every other field as written.
    for (const entry of history) {
      const { event, ...rest } = entry
      const sent = receiver.delivered.find(
        (r) =>
          r.event.model === entry.model && r.event.time === entry.time && r.event.type === event,
      )
      expect(sent?.event, `${entry.model} ${event} v${entry.version}`).toEqual({
        id: sent?.event.id,
        type: event,
        ...rest,
      })
    }
    expect(receiver.delivered.map((r) => r.event.type)).toContain('promoted')
    expect(new Set(receiver.delivered.map((r) => r.event.id)).size).toBe(history.length)
    expect(
      await metricValue(server.url, 'modelgate_webhook_deliveries_total', {
        webhook: receiver.url,
        result: 'delivered',
      }),
    ).toBe(history.length)
  })

  it('retries a receiver that answers 500, and keeps a model’s events in order', async () => {
    // Every event of 'adder' is refused twice (retried after 1 s, then 2 s); 'other' is accepted.
    const tries = new Map<number, number>()
    receiver = await startWebhookReceiver((event) => {
      const n = (tries.get(event.id) ?? 0) + 1
      tries.set(event.id, n)
      return event.model === 'adder' && n <= 2 ? 500 : 200
    })
    server = await serveTwoModels(receiver.url)
    await writeVersion(server.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(server.url, 'adder', 2)
    const adder = (await historyOf(server.url, 'adder')).length
    const count = adder + (await historyOf(server.url, 'other')).length
    await waitFor(() => receiver!.delivered.length === count, 'every event delivered', 30_000)
    // Each adder event three times, and the next one only once the one before was delivered.
    const ids = idsOf(receiver.delivered, 'adder')
    expect(ids).toHaveLength(adder)
    expect(idsOf(receiver.requests, 'adder')).toEqual(ids.flatMap((id) => [id, id, id]))
    expect(ascending(ids)).toBe(true)
    expect(ascending(idsOf(receiver.delivered, 'other'))).toBe(true)
    expect(
      await metricValue(server.url, 'modelgate_webhook_deliveries_total', {
        webhook: receiver.url,
        result: 'delivered',
      }),
    ).toBe(count)
  }, 45_000)

  it('a receiver that never answers holds up neither predictions nor a promotion; attempts time out, and shutdown abandons them', async () => {
    receiver = await startWebhookReceiver(() => 'never')
    server = await serveTwoModels(receiver.url, { shutdownTimeout: '1' })
    await waitFor(() => receiver!.requests.length > 0, 'a delivery to hang')
    expect((await predict(server.url, 'adder')).constant).toBe(1)
    await writeVersion(server.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(server.url, 'adder', 2)
    expect((await predict(server.url, 'adder')).constant).toBe(2)
    // Still hanging: no delivery has been answered, and the queue holds the events.
    expect(receiver.delivered).toHaveLength(0)
    expect(
      await metricValue(server.url, 'modelgate_webhook_queue_depth', { webhook: receiver.url }),
    ).toBeGreaterThan(1)
    // Each attempt is given up after 5 s, and the event is tried again.
    await waitFor(
      () => receiver!.requests[0]!.abandonedBySender,
      'the first attempt to time out',
      10_000,
    )
    const first = receiver.requests[0]!.event.id
    await waitFor(
      () => receiver!.requests.filter((r) => r.event.id === first).length === 2,
      'a second attempt',
      10_000,
    )
    const logs = server.logs
    expect(logs.find((r) => r.event === 'webhook_attempt_failed' && r.id === first)?.error).toMatch(
      /no answer within 5000 ms/,
    )
    await server.close()
    const abandoned = logs.find((r) => r.event === 'webhook_events_abandoned')
    expect(abandoned).toMatchObject({ webhook: receiver.url, graceMs: 1000 })
    expect(abandoned!.events).toBeGreaterThan(1)
  }, 40_000)

  it('a receiver that is down (connection refused) holds up nothing', async () => {
    const url = await refusedUrl()
    server = await serveTwoModels(url, { shutdownTimeout: '1' })
    await writeVersion(server.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(server.url, 'adder', 2)
    expect((await predict(server.url, 'adder')).constant).toBe(2)
    await waitFor(
      () => server!.logs.some((r) => r.event === 'webhook_attempt_failed'),
      'an attempt to fail',
    )
    expect(server.logs.find((r) => r.event === 'webhook_attempt_failed')?.error).toMatch(
      /ECONNREFUSED/,
    )
    await server.close()
    expect(server.logs.find((r) => r.event === 'webhook_events_abandoned')).toMatchObject({
      webhook: url,
    })
  })
})
