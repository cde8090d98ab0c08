import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { getJson, postJson, waitActive } from '../support/api-client.js'
import { addConstModel, classifierModel } from '../support/models.js'
import { serve } from '../support/servers.js'
import { dropVersion, writeFiles } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'

/**
 * The dashboard read with plain HTTP, as a browser without JavaScript (or a script) reads it:
 * every figure is in the HTML the server renders. The browser tests are in tests/ui/.
 */

const TOKEN = 'ui-test-token-0123456789'

async function html(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers: { accept: 'text/html', ...headers } })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

async function twoVersions(dir: string) {
  await writeFiles(join(dir, 'clf'), { 'model.json': '{"drift": {"window": 10}}' })
  await dropVersion(dir, 'clf', 1, classifierModel([1, 0, 0]))
  await dropVersion(dir, 'adder', 1, addConstModel(1))
}

describe('GET /', () => {
  it('sends a browser to /ui and answers API clients with JSON', async () => {
    const t = await serve(() => {})
    const browser = await fetch(`${t.url}/`, {
      headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
      redirect: 'manual',
    })
    expect(browser.status).toBe(303)
    expect(browser.headers.get('location')).toBe('/ui')
    expect(browser.headers.get('vary')).toBe('Accept')
    for (const accept of ['*/*', 'application/json', 'text/html;q=0']) {
      const res = await fetch(`${t.url}/`, { headers: { accept }, redirect: 'manual' })
      expect(res.status, accept).toBe(200)
      expect(await res.json()).toMatchObject({
        name: 'modelgate',
        ui: '/ui',
        openapi: '/openapi.json',
      })
    }
  })
})

describe('the dashboard without JavaScript', () => {
  it('renders every model and its live figures, with a rate measured off the request path', async () => {
    const t = await serve(twoVersions)
    await dropVersion(t.modelsDir, 'clf', 2, classifierModel([1, 0.001, 0]))
    await waitActive(t.url, 'clf', 2)
    for (let i = 0; i < 10; i++) {
      const r = await postJson(
        `${t.url}/models/clf/predict`,
        { inputs: { x: [[0, 0, 0]] } },
        {
          'x-prediction-id': `p${i}`,
        },
      )
      expect(r.status).toBe(200)
    }
    await postJson(`${t.url}/models/clf/feedback`, {
      items: Array.from({ length: 10 }, (_, i) => ({ id: `p${i}`, label: i < 9 ? 0 : 1 })),
    })
    // The rate is sampled once a second: GET /models/{name} shows it as the page does.
    await waitFor(async () => {
      const v = (await getJson(`${t.url}/models/clf`)).body.versions[1]
      return v.live?.requestsPerSecond > 0
    }, 'a request rate for clf v2')

    const overview = await html(`${t.url}/ui`)
    expect(overview.status).toBe(200)
    expect(overview.headers.get('content-type')).toMatch(/^text\/html/)
    expect(overview.headers.get('content-security-policy')).toContain("default-src 'self'")
    const row = /<tr data-model="clf">.*?<\/tr>/.exec(overview.text)![0]
    expect(row).toContain('href="/ui/models/clf"')
    expect(row).toContain('v2')
    expect(row).toContain('probation until')
    expect(row).toMatch(/<span>\d+(\.\d)?\/s<\/span>/) // requests per second
    expect(row).toContain('0%') // error rate
    expect(row).toContain('90.0%') // accuracy
    expect(row).toMatch(/\d ms/) // p99
    expect(overview.text).toContain('<tr data-model="adder">')

    const page = await html(`${t.url}/ui/models/clf`)
    expect(page.status).toBe(200)
    expect(page.text).toContain('<h1>clf</h1>')
    expect(page.text).toContain('data-version="2" data-status="active"')
    expect(page.text).toContain('data-version="1" data-status="retained"')
    for (const stage of ['load', 'signature', 'smoke', 'latency', 'warmup'])
      expect(page.text).toContain(`</span> ${stage} `)
    expect(page.text).toContain('Probation: v2 against v1')
    expect(page.text).toContain('accuracy')
    expect(page.text).toMatch(/Drift<\/h2>.*Reference: the first window served/s)
    // Loopback and no token: the history is shown, newest first.
    expect(page.text).toMatch(/<ol class="timeline"><li class="event event-promoted">.*v2/)
    // Actions are for the script, which sends the token: marked so the page hides them without it.
    expect(page.text).toContain('class="needs-js action" data-action="rollback"')
    expect(page.text).toContain('<noscript>')
  })

  it('shows the history only to a request with the admin token, when one is set', async () => {
    const t = await serve(twoVersions, {}, { MODELGATE_ADMIN_TOKEN: TOKEN })
    const anonymous = await html(`${t.url}/ui/models/clf`)
    expect(anonymous.text).toContain('data-access="token"')
    expect(anonymous.text).not.toContain('class="timeline"')
    expect(anonymous.text).toContain('it shows once this page has the admin token')
    const admin = await html(`${t.url}/ui/models/clf`, { authorization: `Bearer ${TOKEN}` })
    expect(admin.text).toContain('data-access="open"')
    expect(admin.text).toContain('class="timeline"')
  })

  it('serves its script, style and icon itself, and nothing else under /ui/assets', async () => {
    const t = await serve(() => {})
    for (const [file, type] of [
      ['app.js', 'text/javascript'],
      ['style.css', 'text/css'],
      ['favicon.svg', 'image/svg+xml'],
    ] as const) {
      const res = await fetch(`${t.url}/ui/assets/${file}`)
      expect(res.status, file).toBe(200)
      expect(res.headers.get('content-type')).toContain(type)
    }
    expect((await fetch(`${t.url}/ui/assets/..%2Fformat.js`)).status).toBe(404)
    expect((await fetch(`${t.url}/ui/assets/nope.js`)).status).toBe(404)
  })

  it('answers a page for a model it does not have: 404, in HTML, naming it and leading back', async () => {
    const t = await serve(twoVersions)
    const page = await html(`${t.url}/ui/models/nope`)
    expect(page.status).toBe(404)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(page.text).toContain('model &#39;nope&#39; does not exist.')
    expect(page.text).toContain('href="/ui"')
    // Any other client gets the API's error, as from every route.
    const api = await getJson(`${t.url}/ui/models/nope`)
    expect(api.status).toBe(404)
    expect(api.body.error.code).toBe('model_not_found')
  })
})
