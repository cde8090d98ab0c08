// npm run bench:peer — modelgate beside the stack the continuous-deployment tutorials deploy:
// FastAPI + uvicorn serving a scikit-learn RandomForestClassifier loaded with joblib, against
// modelgate serving the same forest exported to ONNX (TreeEnsembleClassifier). Same trees, same
// request bodies (one row each); outputs are checked equal on every test row before timing.
// Skipped (exit 0) when no Python with scikit-learn, FastAPI, uvicorn, joblib and numpy is found.
//
// Environment: PEER_PYTHON (the python3 to use; default: python3 on PATH, else /usr/bin/python3 —
// the first that has the packages), PEER_KEEP=1 (keep the temporary models directory and print
// where it is), and the BENCH_* knobs of bench/lib/settings.mjs (BENCH_SECONDS: per load run,
// default 5).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import { load, LoadErrorsFound } from '../lib/load.mjs'
import { percentile } from '../lib/load-result.mjs'
import { fmt, table, writeReport } from '../lib/report.mjs'
import { freePort, startServerProcess } from '../lib/server-process.mjs'
import { benchSettings } from '../lib/settings.mjs'
import { exportAll, forestModel } from './export-onnx.mjs'

const PEER_DIR = fileURLToPath(new URL('.', import.meta.url))
const SECONDS = benchSettings().seconds ?? 5
const CONNECTIONS = [1, 16]
const BODIES_PER_MODEL = 64
const PROBA_TOLERANCE = 1e-6
const TARGET_RATIO = 50
const DEBIAN = 'apt-get install python3-sklearn python3-fastapi uvicorn python3-joblib'

// ---------------------------------------------------------------------------------------------
// 1. A Python with the peer's packages, or skip.

const PROBE = `
import json, sys, importlib.util
import sklearn, fastapi, uvicorn, joblib, numpy, pydantic
has = lambda m: importlib.util.find_spec(m) is not None
print(json.dumps({"executable": sys.executable, "python": sys.version.split()[0], "sklearn": sklearn.__version__,
  "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__, "joblib": joblib.__version__,
  "numpy": numpy.__version__, "pydantic": pydantic.VERSION,
  "loop": "uvloop" if has("uvloop") else "asyncio", "http": "httptools" if has("httptools") else "h11"}))
`

function findPython() {
  const tried = []
  // PEER_PYTHON, when set, is the only candidate; else python3 on PATH (which may be a pyenv shim
  // without the packages), then Debian's own /usr/bin/python3.
  const candidates = process.env.PEER_PYTHON
    ? [process.env.PEER_PYTHON]
    : ['python3', '/usr/bin/python3']
  for (const py of [...new Set(candidates)]) {
    const r = spawnSync(py, ['-c', PROBE], { encoding: 'utf8' })
    if (r.status === 0) return { py, info: JSON.parse(r.stdout.trim().split('\n').at(-1)) }
    const why = r.error ? r.error.code : (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`)
    tried.push(`${py}: ${why}`)
  }
  return { tried }
}

const found = findPython()
if (!found.py) {
  console.log(
    [
      'bench:peer skipped: it needs Python 3 with scikit-learn, FastAPI, uvicorn, joblib and numpy.',
      ...found.tried.map((t) => `  tried ${t}`),
      `On Debian/Ubuntu: ${DEBIAN}`,
      'or point PEER_PYTHON at a python3 that has them.',
    ].join('\n'),
  )
  process.exit(0)
}
const { py, info: pyInfo } = found
console.log(
  `peer: ${pyInfo.executable} (Python ${pyInfo.python}, scikit-learn ${pyInfo.sklearn}, FastAPI ${pyInfo.fastapi}, uvicorn ${pyInfo.uvicorn} with ${pyInfo.loop} + ${pyInfo.http})`,
)

// ---------------------------------------------------------------------------------------------
// 2. Train, dump, export.

const work = mkdtempSync(join(tmpdir(), 'mg-bench-peer-'))
const dumpDir = join(work, 'sklearn')
const modelsDir = join(work, 'models')
const cleanups = []
async function cleanup() {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {})
  if (process.env.PEER_KEEP) console.log(`kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
process.once('SIGINT', () => cleanup().finally(() => process.exit(130)))

function fail(message) {
  const e = new Error(message)
  e.fatal = true
  throw e
}

try {
  console.log('training (scikit-learn) and exporting (ONNX)...')
  const trained = spawnSync(py, [join(PEER_DIR, 'train_export.py'), dumpDir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (trained.status !== 0) fail(`train_export.py failed (exit ${trained.status})`)
  const training = JSON.parse(trained.stdout.trim().split('\n').at(-1))
  const exported = exportAll(dumpDir, modelsDir)
  const dumps = Object.fromEntries(exported.map((e) => [e.name, e.dump]))
  const names = ['forest', 'forest-wine'].filter((n) => dumps[n])

  // -------------------------------------------------------------------------------------------
  // 3. In-process: onnxruntime on the exported forest, and the conventions that make it sklearn's.

  const inProcess = {}
  const variants = {}
  for (const name of names) {
    const dump = dumps[name]
    const session = await InferenceSession.create(
      readFileSync(join(modelsDir, name, '1', 'model.onnx')),
    )
    inProcess[name] = await runtimeRate(session, dump)
    await session.release()
    variants[name] = await conventionCheck(dump)
  }
  const sklearnRate = pythonRate(dumpDir, names)

  // -------------------------------------------------------------------------------------------
  // 4. Both servers.

  const mg = await startServerProcess({ models: modelsDir, stateDir: join(work, 'state') })
  cleanups.push(() => mg.stop())
  for (const name of names) {
    const m = await (await fetch(`${mg.url}/models/${name}`)).json()
    if (m.active !== 1)
      fail(`modelgate did not promote ${name} v1: ${JSON.stringify(m.versions ?? m)}`)
  }
  const peer = await startUvicorn(dumpDir)
  cleanups.push(() => peer.stop())

  // -------------------------------------------------------------------------------------------
  // 5. Outputs equal on every test row, one row per request, before any timing.

  const equality = {}
  for (const name of names) {
    console.log(`checking ${name}: ${dumps[name].rows.length} rows on both servers...`)
    equality[name] = await compareOutputs(name, dumps[name], mg.url, peer.url)
    const e = equality[name]
    console.log(
      `  labels equal ${e.labelsEqual}/${e.rows}, argmax agreement ${e.argmaxAgree}/${e.rows}, probabilities within ${PROBA_TOLERANCE} ${e.probaWithin}/${e.rows} (max |Δ| ${e.maxAbsDiff.toExponential(2)})`,
    )
    if (e.mismatches.length) {
      console.error(`OUTPUTS DIFFER for ${name}; first mismatches:`)
      for (const x of e.mismatches.slice(0, 10)) console.error(`  ${JSON.stringify(x)}`)
      fail(
        `modelgate and FastAPI + sklearn disagree on ${e.mismatches.length} of ${e.rows} rows of ${name}: not timing`,
      )
    }
  }

  // -------------------------------------------------------------------------------------------
  // 6. Load: the same bodies (one row each) on both, 1 and 16 connections.

  const runs = []
  for (const name of names) {
    const dump = dumps[name]
    const step = Math.max(1, Math.floor(dump.n_dataset_rows / BODIES_PER_MODEL))
    const bodies = Array.from({ length: Math.min(BODIES_PER_MODEL, dump.n_dataset_rows) }, (_, i) =>
      JSON.stringify({ inputs: [dump.rows[i * step]] }),
    )
    for (const connections of CONNECTIONS) {
      for (const [server, url] of [
        ['modelgate', mg.url],
        ['fastapi', peer.url],
      ]) {
        const r = await load({
          url: `${url}/models/${name}/predict`,
          bodies,
          connections,
          seconds: SECONDS,
        })
        console.log(
          `  ${name} ${server} c=${connections}: ${fmt(r.rps)} req/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, errors ${r.errors}`,
        )
        runs.push({ model: name, server, ...r })
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // 7. Report.

  const pairs = runs
    .filter((r) => r.server === 'modelgate')
    .map((m) => {
      const f = runs.find(
        (r) => r.server === 'fastapi' && r.model === m.model && r.connections === m.connections,
      )
      return {
        model: m.model,
        connections: m.connections,
        modelgate: m,
        fastapi: f,
        ratio: m.rps / f.rps,
      }
    })
  const headline = pairs.find((p) => p.model === 'forest' && p.connections === 16)
  const md = writeReport('peer', {
    title:
      'A peer, side by side: modelgate vs FastAPI + uvicorn + scikit-learn on the same RandomForest',
    command: 'npm run bench:peer',
    data: {
      python: pyInfo,
      uvicornWorkers: 1,
      training,
      seconds: SECONDS,
      bodiesPerModel: BODIES_PER_MODEL,
      equality: Object.fromEntries(
        Object.entries(equality).map(([k, v]) => [k, { ...v, mismatches: undefined }]),
      ),
      conventions: variants,
      inProcess: { onnxruntime: inProcess, sklearn: sklearnRate },
      runs,
      ratios: pairs.map((p) => ({ model: p.model, connections: p.connections, ratio: p.ratio })),
      target: {
        model: 'forest',
        connections: 16,
        ratio: TARGET_RATIO,
        measured: headline?.ratio,
        met: headline ? headline.ratio >= TARGET_RATIO : false,
      },
    },
    sections: [
      {
        title: 'Setup',
        body: [
          `- **Peer**: FastAPI ${pyInfo.fastapi} on uvicorn ${pyInfo.uvicorn} (**1 worker**, ${pyInfo.loop} event loop, ${pyInfo.http} HTTP parser, log level warning so no access log), Python ${pyInfo.python} (\`${pyInfo.executable}\`), scikit-learn ${pyInfo.sklearn}, numpy ${pyInfo.numpy}, pydantic ${pyInfo.pydantic}. Each model loaded once at startup with \`joblib.load\`; a request runs one \`predict_proba\` and takes the label from it (\`classes_[argmax]\`, as \`predict\` does). See \`bench/peer/app.py\`.`,
          `- **modelgate**: \`node dist/cli.js serve\` (the real CLI, default settings) over the exported models directory; each model passed its gate (smoke.json cases written by the exporter) and serves version 1.`,
          `- **Models**: \`RandomForestClassifier(n_estimators=100, random_state=0)\` trained on 75% of a dataset bundled with scikit-learn, exported by \`bench/peer/export-onnx.mjs\` to one ai.onnx.ml TreeEnsembleClassifier.`,
          '',
          table(
            names.map((n) => ({
              model: n,
              dataset: dumps[n].dataset,
              classes: dumps[n].classes.length,
              features: dumps[n].n_features,
              trees: dumps[n].n_trees,
              nodes: training.models[n].nodes,
              'held-out accuracy': training.models[n].test_accuracy,
              'ONNX bytes': exported.find((e) => e.name === n).bytes,
            })),
          ),
          '',
          `Requests: \`POST /models/{name}/predict\` with \`{"inputs": [[...one row...]]}\` on both servers, ${BODIES_PER_MODEL} distinct rows of the dataset sent in turn; ${pairs[0]?.modelgate.tool ?? 'wrk'}, ${SECONDS} s per run, one server at a time on the same machine (the load generator shares its cores).`,
        ].join('\n'),
      },
      {
        title:
          'Outputs checked before timing (every test row, one row per request, on both servers)',
        body: [
          table(
            names.map((n) => {
              const e = equality[n]
              return {
                model: n,
                rows: `${e.rows} (${dumps[n].n_dataset_rows} dataset + ${dumps[n].n_edge_rows} on split edges)`,
                'labels equal': `${e.labelsEqual}/${e.rows}`,
                'argmax(modelgate probabilities) = FastAPI label': `${e.argmaxAgree}/${e.rows}`,
                [`probabilities within ${PROBA_TOLERANCE}`]: `${e.probaWithin}/${e.rows}`,
                'max |Δp|': e.maxAbsDiff.toExponential(2),
                'sklearn ties': e.ties,
              }
            }),
          ),
          '',
          'Split-edge rows put one feature exactly on a split threshold (rounded down to float32) and a float32 step above it. Labels are also equal to `predict()` run in the training process.',
        ].join('\n'),
      },
      {
        title: `Throughput and latency (${pairs[0]?.modelgate.tool ?? 'wrk'}, ${SECONDS} s per run, one row per request)`,
        body: [
          table(
            pairs.map((p) => ({
              model: p.model,
              connections: p.connections,
              'modelgate req/s': p.modelgate.rps,
              'modelgate p50 ms': p.modelgate.p50,
              'modelgate p99 ms': p.modelgate.p99,
              'FastAPI req/s': p.fastapi.rps,
              'FastAPI p50 ms': p.fastapi.p50,
              'FastAPI p99 ms': p.fastapi.p99,
              'modelgate ÷ FastAPI': `${p.ratio.toFixed(1)}×`,
            })),
          ),
          '',
          headline
            ? `Target (issue #4): forest at 16 connections ≥ ${TARGET_RATIO}× FastAPI + sklearn req/s with identical outputs: **${headline.ratio.toFixed(1)}×, ${headline.ratio >= TARGET_RATIO ? 'met' : 'NOT met'}**.`
            : '',
        ].join('\n'),
      },
      {
        title: 'Baselines in-process (no HTTP, no JSON; batch 1, rows in turn)',
        body: table(
          names.flatMap((n) => [
            {
              model: n,
              what: 'onnxruntime-node session.run() (exported forest)',
              'calls/s': inProcess[n].runsPerSec,
              'p50 ms': inProcess[n].p50,
              'p99 ms': inProcess[n].p99,
            },
            {
              model: n,
              what: 'sklearn predict_proba() in the Python process',
              'calls/s': sklearnRate[n].callsPerSec,
              'p50 ms': sklearnRate[n].p50,
              'p99 ms': sklearnRate[n].p99,
            },
          ]),
        ),
      },
      {
        title:
          'Why the exporter does what it does (onnxruntime in-process vs sklearn, every test row)',
        body: [
          table(
            names.flatMap((n) =>
              variants[n].map((v) => ({
                model: n,
                export: v.label,
                'label mismatches': v.labelMismatches,
                [`probability rows off by > ${PROBA_TOLERANCE}`]: v.probaMismatches,
                'max |Δp|': v.maxAbsDiff.toPrecision(3),
              })),
            ),
          ),
          '',
          '- Thresholds: sklearn compares `float64(x_f32) <= t` with a float64 `t`; onnxruntime compares in float32. Rounding `t` to the nearest float32 sends rows lying between `t` and a rounded-up `float32(t)` the wrong way; the largest float32 `<= t` matches exactly.',
          '- Two classes: onnxruntime-node 1.30 returns `[1 - p, p]` and label 1 iff `p > 0.5` only when each leaf carries a single weight (P(class 1)) under **class id 0**. With class id 1 it returns `[0, p]` (labels right, probabilities wrong); listing both classes\' weights makes it a "mixed" model whose label is class 1 whenever `p > 0`.',
        ].join('\n'),
      },
    ],
  })
  console.log(`\n${md}`)
  await cleanup()
} catch (e) {
  await cleanup()
  console.error(e.fatal || e instanceof LoadErrorsFound ? `bench:peer FAILED: ${e.message}` : e)
  process.exit(1)
}

// ---------------------------------------------------------------------------------------------

function rowTensor(dump, i) {
  return new Tensor('float32', Float32Array.from(dump.rows[i]), [1, dump.n_features])
}

/** session.run() at batch 1 over the dataset rows in turn: calls/s back to back, and p50/p99. */
async function runtimeRate(session, dump, seconds = 2) {
  const feeds = Array.from({ length: Math.min(BODIES_PER_MODEL, dump.n_dataset_rows) }, (_, i) => ({
    input: rowTensor(dump, i),
  }))
  for (let i = 0; i < 500; i++) await session.run(feeds[i % feeds.length])
  const lat = []
  const start = performance.now()
  const end = start + seconds * 1000
  let t = start
  for (let i = 0; t < end; i++) {
    await session.run(feeds[i % feeds.length])
    const now = performance.now()
    lat.push(now - t)
    t = now
  }
  const runsPerSec = lat.length / ((t - start) / 1000)
  lat.sort((a, b) => a - b)
  return { runsPerSec, p50: percentile(lat, 50), p99: percentile(lat, 99), runs: lat.length }
}

/** The shipped export and the variants it avoids, each against sklearn's own outputs. */
async function conventionCheck(dump) {
  const list = [
    {
      label: 'shipped: float32 thresholds rounded down; binary: one weight under class id 0',
      o: {},
    },
    { label: 'thresholds rounded to nearest float32', o: { thresholds: 'nearest' } },
  ]
  if (dump.classes.length === 2) {
    list.push({ label: 'binary: one weight under class id 1', o: { binary: 'single1' } })
    list.push({ label: "binary: both classes' weights", o: { binary: 'both' } })
  }
  const out = []
  for (const { label, o } of list) {
    const session = await InferenceSession.create(forestModel(dump, o))
    let labelMismatches = 0
    let probaMismatches = 0
    let maxAbsDiff = 0
    for (let i = 0; i < dump.rows.length; i++) {
      const r = await session.run({ input: rowTensor(dump, i) })
      if (Number(r.label.data[0]) !== dump.expected.label[i]) labelMismatches++
      const d = maxDiff(r.probabilities.data, dump.expected.probabilities[i])
      if (d > PROBA_TOLERANCE) probaMismatches++
      maxAbsDiff = Math.max(maxAbsDiff, d)
    }
    await session.release()
    out.push({
      label,
      options: o,
      rows: dump.rows.length,
      labelMismatches,
      probaMismatches,
      maxAbsDiff,
    })
  }
  return out
}

function maxDiff(a, b) {
  if (a.length !== b.length) return Infinity
  let d = 0
  for (let k = 0; k < a.length; k++) d = Math.max(d, Math.abs(a[k] - b[k]))
  return d
}

function argmax(p) {
  let best = 0
  for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k
  return best
}

/** sklearn predict_proba on one row at a time in the Python process, rows in turn. */
function pythonRate(dir, names, seconds = 2) {
  const code = `
import json, sys, time, joblib, numpy as np
out = {}
for name in sys.argv[2:]:
    m = joblib.load(f"{sys.argv[1]}/{name}.joblib")
    d = json.load(open(f"{sys.argv[1]}/{name}.json"))
    rows = [np.asarray([r], dtype=np.float32) for r in d["rows"][:${BODIES_PER_MODEL}]]
    for r in rows[:20]: m.predict_proba(r)
    lat = []
    start = t = time.perf_counter()
    while t - start < ${seconds}:
        m.predict_proba(rows[len(lat) % len(rows)])
        now = time.perf_counter(); lat.append((now - t) * 1000); t = now
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, max(0, -(-p * len(lat) // 100) - 1))]
    out[name] = {"callsPerSec": len(lat) / (t - start), "p50": pct(50), "p99": pct(99), "calls": len(lat)}
print(json.dumps(out))
`
  const r = spawnSync(py, ['-c', code, dir, ...names], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (r.status !== 0) fail('timing sklearn in-process failed')
  return JSON.parse(r.stdout.trim().split('\n').at(-1))
}

async function startUvicorn(dir) {
  const port = await freePort()
  const child = spawn(
    py,
    [
      '-m',
      'uvicorn',
      'app:app',
      '--app-dir',
      PEER_DIR,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--workers',
      '1',
      '--log-level',
      'warning',
    ],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        PEER_MODELS: dir,
        PEER_DEFAULT_MODEL: 'forest',
        PYTHONDONTWRITEBYTECODE: '1',
      },
    },
  )
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) fail(`uvicorn exited with ${child.exitCode}`)
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { url, pid: child.pid, stop }
    } catch {}
    if (Date.now() > deadline) {
      await stop()
      fail('uvicorn not up after 60 s')
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function post(url, row) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [row] }),
  })
  const text = await r.text()
  if (!r.ok) fail(`${url} answered ${r.status}: ${text.slice(0, 300)}`)
  return JSON.parse(text)
}

/** Every row, one per request, to both servers; labels exactly, probabilities within tolerance. */
async function compareOutputs(name, dump, mgUrl, peerUrl, inFlight = 4) {
  const res = {
    rows: dump.rows.length,
    labelsEqual: 0,
    argmaxAgree: 0,
    probaWithin: 0,
    maxAbsDiff: 0,
    ties: 0,
    mismatches: [],
  }
  let next = 0
  async function worker() {
    while (next < dump.rows.length) {
      const i = next++
      const row = dump.rows[i]
      const [m, f] = await Promise.all([
        post(`${mgUrl}/models/${name}/predict`, row),
        post(`${peerUrl}/models/${name}/predict`, row),
      ])
      const mLabel = m.outputs.label[0]
      const mProba = m.outputs.probabilities[0]
      const fLabel = f.label[0]
      const fProba = f.probabilities[0]
      const d = maxDiff(mProba, fProba)
      const sorted = [...fProba].sort((a, b) => b - a)
      if (sorted[0] === sorted[1]) res.ties++
      const labelOk = mLabel === fLabel && fLabel === dump.expected.label[i]
      const argmaxOk = dump.classes[argmax(mProba)] === fLabel
      const probaOk = d <= PROBA_TOLERANCE
      res.maxAbsDiff = Math.max(res.maxAbsDiff, d)
      if (labelOk) res.labelsEqual++
      if (argmaxOk) res.argmaxAgree++
      if (probaOk) res.probaWithin++
      if (!labelOk || !probaOk)
        res.mismatches.push({
          row: i,
          modelgate: { label: mLabel, probabilities: mProba },
          fastapi: { label: fLabel, probabilities: fProba },
          sklearnLabel: dump.expected.label[i],
        })
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  return res
}
