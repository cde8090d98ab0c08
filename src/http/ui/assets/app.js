// The dashboard's script: plain JavaScript, served as it is (no build step). The page is complete
// without it; this keeps it up to date (the server renders every update: this only swaps the
// `data-live` parts in) and sends the admin actions with the token this tab keeps.
const TOKEN_KEY = 'modelgate.adminToken'
/** Live figures (rates, latencies) change without events: the page is read again this often. */
const REFRESH_MS = 2000
const RECONNECT_MS = [1000, 2000, 5000, 10000]

document.documentElement.classList.replace('no-js', 'js')

const model = document.body.dataset.model
/** What the admin routes answer this client: `open`, `token` (one is needed), `loopback_only`. */
const access = document.body.dataset.access
const liveState = document.getElementById('live-state')
const actionStatus = document.getElementById('action-status')

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY)
}

function authHeaders() {
  const token = storedToken()
  return token ? { authorization: `Bearer ${token}` } : {}
}

/** Admin calls can be made: the server serves this client, or it has a token to send. */
function canAdmin() {
  return access === 'open' || (access === 'token' && storedToken() !== null)
}

// --- Keeping the page current ---------------------------------------------------------------

let refreshing = false
let refreshAgain = false

/** Reads the page again (with the token, so the history shows) and swaps in its live parts. */
async function refresh() {
  if (refreshing) {
    refreshAgain = true
    return
  }
  refreshing = true
  try {
    const res = await fetch(location.pathname, {
      headers: { accept: 'text/html', ...authHeaders() },
      cache: 'no-store',
    })
    if (!res.ok) return
    const fresh = new DOMParser().parseFromString(await res.text(), 'text/html')
    for (const part of document.querySelectorAll('[data-live]')) {
      // Someone is typing in it (a rollback reason): leave it until they are done.
      if (part.contains(document.activeElement) && document.activeElement.matches('input')) continue
      const next = fresh.querySelector(`[data-live="${part.dataset.live}"]`)
      // Unchanged parts stay as they are: focus, selection and a screen reader's place with them.
      if (next && next.innerHTML !== part.innerHTML) part.replaceWith(document.adoptNode(next))
    }
    document.body.dataset.refreshedAt = String(Date.now())
  } catch {
    showLiveState('Server unreachable: retrying', 'down')
  } finally {
    refreshing = false
    if (refreshAgain) {
      refreshAgain = false
      void refresh()
    }
  }
}

function showLiveState(text, state) {
  liveState.textContent = text
  liveState.dataset.state = state
}

setInterval(() => {
  if (!document.hidden) void refresh()
}, REFRESH_MS)

// --- Lifecycle events -----------------------------------------------------------------------

let following = false

/**
 * Follows `GET /events` with fetch rather than EventSource, which cannot send the Authorization
 * header (the token must not go in a URL, where logs would keep it). Every event reads the page
 * again at once; the periodic reads carry on beside it.
 */
async function followEvents() {
  if (following || !canAdmin()) return
  following = true
  let failures = 0
  const url = model ? `/events?model=${encodeURIComponent(model)}` : '/events'
  while (canAdmin()) {
    try {
      const res = await fetch(url, { headers: { accept: 'text/event-stream', ...authHeaders() } })
      if (res.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY)
        break
      }
      if (!res.ok || !res.body) throw new Error(`GET /events answered ${res.status}`)
      showLiveState('Live', 'live')
      failures = 0
      // Events since the page was rendered may have been missed while connecting.
      void refresh()
      await readEvents(res.body, () => void refresh())
    } catch {
      // The connection dropped (a restart, the network): try again, a little later each time.
    }
    showLiveState('Reconnecting to events…', 'down')
    await new Promise((r) => setTimeout(r, RECONNECT_MS[Math.min(failures++, 3)]))
  }
  following = false
  showLiveState(`Updating every ${REFRESH_MS / 1000} s`, 'polling')
}

/** Calls `onEvent` for each Server-Sent Event in `body` (comment lines are keep-alives). */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buffered = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffered += value.replaceAll('\r\n', '\n')
    let end = buffered.indexOf('\n\n')
    while (end >= 0) {
      const frame = buffered.slice(0, end)
      buffered = buffered.slice(end + 2)
      if (/^(event|data):/m.test(frame)) onEvent()
      end = buffered.indexOf('\n\n')
    }
  }
}

// --- Admin actions --------------------------------------------------------------------------

const tokenDialog = document.getElementById('token-dialog')
const tokenInput = document.getElementById('token-input')

/** The token, asked for once per tab; null when the person cancels. */
function askToken() {
  tokenInput.value = ''
  tokenDialog.showModal()
  return new Promise((resolve) => {
    tokenDialog.addEventListener(
      'close',
      () => {
        const token = tokenDialog.returnValue === 'ok' ? tokenInput.value.trim() : ''
        if (token) sessionStorage.setItem(TOKEN_KEY, token)
        resolve(token || null)
      },
      { once: true },
    )
  })
}

function say(text, kind) {
  actionStatus.textContent = text
  actionStatus.dataset.kind = kind
}

/** POSTs an admin call, asking for the token first when the server needs one and the tab has none. */
async function admin(path, body) {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (access === 'token' && storedToken() === null && (await askToken()) === null) return null
    const res = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders() },
      body: JSON.stringify(body),
    })
    const answer = await res.json().catch(() => ({}))
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY)
      say('The admin token was not accepted.', 'error')
      continue
    }
    if (!res.ok) throw new Error(answer.error?.message ?? `the server answered ${res.status}`)
    void followEvents()
    return answer
  }
  return null
}

const base = () => `/models/${encodeURIComponent(model)}`

const ACTIONS = {
  rollback: {
    question: (form) =>
      `Roll ${model} back? The version before v${activeVersion()} serves again at once.${reasonOf(form) ? `\nReason: ${reasonOf(form)}` : ''}`,
    send: (form) => admin(`${base()}/rollback`, reasonOf(form) ? { reason: reasonOf(form) } : {}),
    done: (a) => `Rolled back ${a.model}: v${a.from} → v${a.to} (${a.warm ? 'warm' : 'cold'}).`,
  },
  promote: {
    question: (button) =>
      `Promote v${button.dataset.version} of ${model}? It serves every request from now on.`,
    send: (button) => admin(`${base()}/promote`, { version: Number(button.dataset.version) }),
    done: (a) => `Promoted ${a.model}: v${a.from ?? '—'} → v${a.to}.`,
  },
  abort: {
    question: () => `Abort the rollout of ${model}? Every request goes to the active version.`,
    send: () => admin(`${base()}/rollout/abort`, {}),
    done: (a) => `Rollout of v${a.version} aborted; v${a.active} serves.`,
  },
}

function activeVersion() {
  return document.querySelector('tr[data-status="active"]')?.dataset.version ?? '?'
}

function reasonOf(form) {
  return form.elements.reason?.value.trim() ?? ''
}

async function act(name, element) {
  const action = ACTIONS[name]
  if (!action || !confirm(action.question(element))) return
  const controls = element.matches('form') ? element.querySelectorAll('button') : [element]
  for (const c of controls) c.disabled = true
  try {
    const answer = await action.send(element)
    if (answer) say(action.done(answer), 'ok')
  } catch (e) {
    say(`${name} failed: ${e.message}`, 'error')
  } finally {
    for (const c of controls) c.disabled = false
    await refresh()
  }
}

document.addEventListener('submit', (e) => {
  const form = e.target.closest('form[data-action]')
  if (!form) return
  e.preventDefault()
  void act(form.dataset.action, form)
})

document.addEventListener('click', (e) => {
  const button = e.target.closest('button[data-action]')
  if (button) void act(button.dataset.action, button)
})

showLiveState(`Updating every ${REFRESH_MS / 1000} s`, 'polling')
void followEvents()
