import { readdirSync, readFileSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import {
  BOOLEAN_OPTIONS,
  envName,
  flagName,
  loadServeConfig,
  OPTION_KEYS,
  type OptionKey,
  type ServeConfig,
} from '../src/config.js'
import { postJson } from './support/api-client.js'
import { dashboard, dashboardQueries, type Query } from './support/grafana-dashboard.js'
import { addConstModel, writeModelFile, writeVersion } from './support/models.js'
import { makeTempDir, startTestServer, type TestServer } from './support/test-server.js'
import { waitFor } from './support/wait-for.js'

/**
 * deploy/: the Kubernetes manifests, the KServe InferenceService, the Prometheus configuration, the
 * prometheus-adapter rule the autoscaler scales on and the Grafana dashboard. No cluster here:
 * every file is parsed and checked against what the server really does: its configuration
 * (src/config.ts), the paths it answers (a real server) and the metric names and labels its
 * /metrics serves.
 */

const ROOT = join(import.meta.dirname, '..')
const DEPLOY = join(ROOT, 'deploy')

/** Flags and variables of the graceful shutdown being added to the server; checked once config.ts knows them. */
const PENDING_ENV = new Set(['MODELGATE_SHUTDOWN_TIMEOUT'])
const PENDING_FLAGS = new Set(['--shutdown-timeout'])
/** Labels that Prometheus (the scrape config) adds to every series, beside the server's own. */
const TARGET_LABELS = new Set(['instance', 'job', 'namespace', 'pod', 'deployment'])
/** Series Prometheus makes itself, not the server. */
const PROMETHEUS_SERIES = new Set(['up'])

// ---------------------------------------------------------------------------------------------
// Reading the files

type Obj = Record<string, any>

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  )
}

/** Every document of a YAML file, read as Kubernetes reads it (YAML 1.1: `on`, `yes` are booleans). */
function readYaml(path: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { version: '1.1', uniqueKeys: true })
  for (const d of docs) {
    if (d.errors.length > 0)
      throw new Error(`${path}: ${d.errors.map((e) => e.message).join('; ')}`)
    if (d.warnings.length > 0)
      throw new Error(`${path}: ${d.warnings.map((e) => e.message).join('; ')}`)
  }
  return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null)
}

function readOne(rel: string): Obj {
  const docs = readYaml(join(DEPLOY, rel))
  if (docs.length !== 1) throw new Error(`${rel}: expected one document, found ${docs.length}`)
  return docs[0]!
}

const kustomization = readOne('kubernetes/kustomization.yaml')
const namespace = readOne('kubernetes/namespace.yaml')
const pvc = readOne('kubernetes/pvc.yaml')
const deployment = readOne('kubernetes/deployment.yaml')
const service = readOne('kubernetes/service.yaml')
const hpa = readOne('kubernetes/hpa.yaml')
const pdb = readOne('kubernetes/pdb.yaml')
const adapter = readOne('prometheus-adapter/values.yaml')
const secretExample = readOne('kubernetes/secret.example.yaml')
const isvc = readOne('kserve/inferenceservice.yaml')
const prometheus = readOne('prometheus/prometheus.yml')
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')

const podSpec: Obj = deployment.spec.template.spec
const podLabels: Obj = deployment.spec.template.metadata.labels
const container: Obj = podSpec.containers[0]
const kserveContainer: Obj = isvc.spec.predictor.containers[0]
const DEFAULT_PORT = loadServeConfig({}, {}).port

// ---------------------------------------------------------------------------------------------
// Containers: their command line and environment through the server's own configuration

/** `serve --flag value ...` as the cli reads it (known flags only; the graceful-shutdown flag is pending). */
function flagsOf(args: readonly string[]): Partial<Record<OptionKey, string | boolean>> {
  expect(args[0], 'the first argument is the command').toBe('serve')
  const byFlag = new Map(OPTION_KEYS.map((k) => [flagName(k), k]))
  const flags: Partial<Record<OptionKey, string | boolean>> = {}
  for (let i = 1; i < args.length; i++) {
    const arg = String(args[i])
    const key = byFlag.get(arg)
    if (key === undefined) {
      expect(PENDING_FLAGS.has(arg), `${arg} is a flag of modelgate serve`).toBe(true)
      i++
      continue
    }
    if (BOOLEAN_OPTIONS.has(key)) flags[key] = true
    else flags[key] = String(args[++i])
  }
  return flags
}

/** Plain `value` entries of a container's env (valueFrom entries are left out). */
function envOf(c: Obj): Record<string, string> {
  const env: Record<string, string> = {}
  for (const e of (c.env ?? []) as Obj[]) {
    if (e.valueFrom !== undefined) continue
    // Kubernetes takes strings only: an unquoted 8080 or `true` is refused by the API server.
    expect(typeof e.value, `env ${e.name} is a string`).toBe('string')
    env[e.name] = e.value
  }
  return env
}

/** The configuration the container's server would run with: its args and env through loadServeConfig. */
async function configOf(c: Obj, adminTokenFile?: string): Promise<ServeConfig> {
  const env = envOf(c)
  for (const name of Object.keys(env).filter((n) => n.startsWith('MODELGATE_'))) {
    const known = OPTION_KEYS.some((k) => envName(k) === name) || name === 'MODELGATE_ADMIN_TOKEN'
    expect(known || PENDING_ENV.has(name), `${name} is a variable modelgate reads`).toBe(true)
  }
  if (adminTokenFile !== undefined) env.MODELGATE_ADMIN_TOKEN_FILE = adminTokenFile
  return loadServeConfig(flagsOf(c.args ?? []), env)
}

function volumeNamed(spec: Obj, name: string): Obj {
  const v = ((spec.volumes ?? []) as Obj[]).find((x) => x.name === name)
  expect(v, `volume ${name}`).toBeDefined()
  return v!
}

/** The mount that holds `path` (the longest mount path that is a prefix of it). */
function mountHolding(c: Obj, path: string): Obj | undefined {
  return ((c.volumeMounts ?? []) as Obj[])
    .filter(
      (m) => path === m.mountPath || path.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`),
    )
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0]
}

/** `path` is on a volume the container may write: a writable PVC or emptyDir mount. */
function expectWritable(spec: Obj, c: Obj, path: string, what: string): Obj {
  const m = mountHolding(c, path)
  expect(
    m,
    `${what} (${path}) is on a mounted volume: the root file system is read-only`,
  ).toBeDefined()
  expect(m!.readOnly ?? false, `${what} (${path}) is mounted writable`).toBe(false)
  const v = volumeNamed(spec, m!.name)
  expect(
    v.persistentVolumeClaim !== undefined || v.emptyDir !== undefined,
    `${what} is on a PVC or an emptyDir`,
  ).toBe(true)
  return v
}

function containerPort(c: Obj, port: string | number): number {
  if (typeof port === 'number') return port
  const p = ((c.ports ?? []) as Obj[]).find((x) => x.name === port)
  expect(p, `a container port named ${port}`).toBeDefined()
  return p!.containerPort
}

interface Probe {
  readonly where: string
  readonly path: string
  readonly port: number
}

function probesOf(where: string, c: Obj): Probe[] {
  return (['livenessProbe', 'readinessProbe', 'startupProbe'] as const)
    .filter((k) => c[k] !== undefined)
    .map((k) => {
      expect(c[k].httpGet, `${where} ${k} is an HTTP GET`).toBeDefined()
      return {
        where: `${where} ${k}`,
        path: c[k].httpGet.path,
        port: containerPort(c, c[k].httpGet.port),
      }
    })
}

/** Kubernetes quantities: 500m, 2, 512Mi, 2Gi, 1G. */
function quantity(q: string | number): number {
  const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q))
  expect(m, `quantity ${q}`).not.toBeNull()
  const unit: Record<string, number> = {
    '': 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  }
  return Number(m![1]) * unit[m![2] ?? '']!
}

function expectHardened(where: string, spec: Obj, c: Obj): void {
  const sc = c.securityContext as Obj
  expect(sc, `${where}: securityContext`).toBeDefined()
  expect(sc.runAsNonRoot ?? spec.securityContext?.runAsNonRoot, `${where}: runAsNonRoot`).toBe(true)
  // The image's `node` user (node:20-slim, uid 1000): files the image owns stay readable.
  expect(dockerfile).toMatch(/^FROM node:20-slim\s*$/m)
  expect(dockerfile).toMatch(/^USER node\s*$/m)
  expect(sc.runAsUser ?? spec.securityContext?.runAsUser, `${where}: runAsUser`).toBe(1000)
  expect(sc.readOnlyRootFilesystem, `${where}: readOnlyRootFilesystem`).toBe(true)
  expect(sc.allowPrivilegeEscalation, `${where}: allowPrivilegeEscalation`).toBe(false)
  expect(sc.privileged ?? false, `${where}: privileged`).toBe(false)
  expect(sc.capabilities?.drop, `${where}: every capability dropped`).toContain('ALL')
  expect(sc.capabilities?.add ?? [], `${where}: no capability added`).toEqual([])
  expect(
    (sc.seccompProfile ?? spec.securityContext?.seccompProfile)?.type,
    `${where}: seccomp`,
  ).toBe('RuntimeDefault')
}

function expectResources(where: string, c: Obj): void {
  const r = c.resources as Obj
  expect(r?.requests?.cpu, `${where}: cpu request`).toBeDefined()
  expect(r?.requests?.memory, `${where}: memory request`).toBeDefined()
  expect(r?.limits?.memory, `${where}: memory limit`).toBeDefined()
  // Fits a 2-core node, with room beside it.
  expect(quantity(r.requests.cpu)).toBeLessThanOrEqual(1.5)
  expect(quantity(r.requests.memory)).toBeLessThanOrEqual(quantity(r.limits.memory))
  expect(quantity(r.requests.memory)).toBeGreaterThanOrEqual(256 * 2 ** 20)
}

function expectPlatformEnv(where: string, c: Obj): void {
  const env = envOf(c)
  // onnxruntime writes under $HOME: it must be on a writable volume.
  expect(env.HOME, `${where}: HOME`).toBeDefined()
  // The same allocator setting the image has.
  const fromImage = /MALLOC_MMAP_THRESHOLD_=(\d+)/.exec(dockerfile)?.[1]
  expect(fromImage).toBeDefined()
  expect(env.MALLOC_MMAP_THRESHOLD_, `${where}: MALLOC_MMAP_THRESHOLD_`).toBe(fromImage)
}

// ---------------------------------------------------------------------------------------------
// The autoscaler's custom metric: the HPA names it, a prometheus-adapter rule makes it

/** The HPA's per-pod metric (`type: Pods`): the one the custom metrics API must serve. */
function hpaPodsMetric(): Obj {
  const pods = (hpa.spec.metrics as Obj[]).filter((m) => m.type === 'Pods')
  expect(pods, 'one per-pod metric').toHaveLength(1)
  return pods[0]!.pods
}

interface AdapterRule {
  /** The Prometheus series the rule reads. */
  readonly series: string
  /** The name the custom metrics API serves it under. */
  readonly served: string
  readonly rule: Obj
}

/** prometheus-adapter's rules, each naming its series by name (one series a rule, checkable). */
function adapterRules(): AdapterRule[] {
  expect(adapter.rules.default, "the chart's default rules are off").toBe(false)
  return (adapter.rules.custom as Obj[]).map((rule) => {
    const names = promqlMetrics(rule.seriesQuery)
    expect(names, `seriesQuery ${rule.seriesQuery} names one series`).toHaveLength(1)
    const series = names[0]!
    const matches = new RegExp(rule.name.matches)
    expect(series, `name.matches ${matches}`).toMatch(matches)
    expect(rule.name.as, 'the rule says the name it serves').toBeTypeOf('string')
    // Go's ${1} is JavaScript's $1.
    const as = String(rule.name.as).replace(/\$\{(\d+)\}/g, '$$$1')
    return { series, served: series.replace(matches, as), rule }
  })
}

/** A metricsQuery as prometheus-adapter sends it for a per-pod query of `series`. */
function adapterQuery(metricsQuery: string, series: string): string {
  return metricsQuery
    .replaceAll('<<.Series>>', series)
    .replaceAll('<<.LabelMatchers>>', 'namespace="modelgate",pod=~"modelgate-a|modelgate-b"')
    .replaceAll('<<.GroupBy>>', 'pod')
}

// ---------------------------------------------------------------------------------------------
// PromQL: the metric names and label names an expression uses (enough of the grammar for the
// expressions in deploy/, checked by the tests below against the live server)

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'inf',
  'nan',
  'atan2',
])

function withoutStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
}

function promqlMetrics(expr: string): string[] {
  let s = withoutStrings(expr)
  s = s.replace(/\$\{[^}]*\}|\$\w+/g, ' ') // Grafana variables ($__rate_interval, ${DS})
  s = s.replace(/\{[^}]*\}/g, ' ') // label matchers
  s = s.replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  s = s.replace(/\boffset\s+-?[0-9a-z]+/g, ' ')
  const names = new Set<string>()
  for (const m of s.matchAll(/(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    if (m[2] !== undefined || PROMQL_KEYWORDS.has(m[1]!)) continue // a function call or a keyword
    names.add(m[1]!)
  }
  return [...names]
}

function promqlLabels(expr: string): string[] {
  const s = withoutStrings(expr).replace(/\$\{[^}]*\}|\$\w+/g, 'x')
  const labels = new Set<string>()
  for (const braces of s.matchAll(/\{([^}]*)\}/g)) {
    for (const m of braces[1]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g))
      labels.add(m[1]!)
  }
  for (const m of s.matchAll(
    /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
  )) {
    for (const l of m[1]!
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean))
      labels.add(l)
  }
  return [...labels]
}

const alertRules: Obj[] = (prometheus.rule_files as string[]).flatMap((f) =>
  readOne(posix.join('prometheus', f)).groups.flatMap((g: Obj) => g.rules),
)

function alertQueries(): Query[] {
  return alertRules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))
}

// ---------------------------------------------------------------------------------------------

describe('deploy/ files', () => {
  it('.dockerignore keeps the build context to what the Dockerfile copies', () => {
    // `*` then `!path` lines: what the build context holds.
    const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
    expect(lines[0]).toBe('*')
    const kept = lines.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''))
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+\s*$/gm)]
      .flatMap((m) => m[1]!.trim().split(/\s+/))
      .map((p) => p.replace(/\/$/, ''))
    expect(copied.length).toBeGreaterThan(3)
    expect(kept.sort()).toEqual([...new Set(copied)].sort())
  })

  it('every YAML file parses as Kubernetes reads it, and every manifest is named', () => {
    const yamlFiles = filesUnder(DEPLOY).filter((f) => /\.ya?ml$/.test(f))
    expect(yamlFiles.length).toBeGreaterThanOrEqual(9)
    for (const f of yamlFiles) {
      const docs = readYaml(f)
      expect(docs.length, f).toBeGreaterThan(0)
      if (/\/(kubernetes|kserve)\//.test(f)) {
        for (const d of docs) {
          expect(d.apiVersion, `${f}: apiVersion`).toBeTypeOf('string')
          expect(d.kind, `${f}: kind`).toBeTypeOf('string')
          if (d.kind !== 'Kustomization')
            expect(d.metadata?.name, `${f}: metadata.name`).toBeTypeOf('string')
        }
      }
    }
  })

  it('kustomization lists every manifest but the example Secret, in the namespace it creates', () => {
    const dir = join(DEPLOY, 'kubernetes')
    const manifests = readdirSync(dir).filter(
      (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && !f.includes('.example.'),
    )
    expect([...kustomization.resources].sort()).toEqual(manifests.sort())
    expect(kustomization.resources).not.toContain('secret.example.yaml')
    expect(namespace.kind).toBe('Namespace')
    expect(kustomization.namespace).toBe(namespace.metadata.name)
    expect(secretExample.metadata.namespace).toBe(namespace.metadata.name)
    // Pod Security Admission: the restricted profile, which the pod below satisfies.
    expect(namespace.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted')
    // The images entry rewrites the Deployment's image.
    const image = String(container.image)
    expect(kustomization.images.map((i: Obj) => i.name)).toContain(
      image.slice(0, image.lastIndexOf(':')),
    )
  })

  it('the Deployment serves on the port the server listens on by default, on every interface', async () => {
    const config = await configOf(container, await tokenFileFromExample())
    expect(config.port).toBe(DEFAULT_PORT)
    expect(config.grpcPort).toBe(8081) // the image's, as its ENV and EXPOSE say
    expect(container.ports.map((p: Obj) => p.containerPort)).toEqual([DEFAULT_PORT, 8081])
    expect(dockerfile).toMatch(/^\s*MODELGATE_GRPC_PORT=8081$/m)
    expect(dockerfile).toMatch(/^EXPOSE 8080 8081$/m)
    expect(config.host).toBe('0.0.0.0')
    // The image's default arguments, spelled out: the same server a `docker run` starts.
    expect(dockerfile).toMatch(/^ENTRYPOINT \["modelgate"\]\s*$/m)
    const cmd = JSON.parse(/^CMD (\[.*\])\s*$/m.exec(dockerfile)![1]!) as string[]
    expect(container.args.slice(0, cmd.length)).toEqual(cmd)
  })

  it('the Deployment mounts the PVC, writable, at the models path its args use; state and HOME are writable too', async () => {
    const config = await configOf(container, await tokenFileFromExample())
    const modelsMount = mountHolding(container, config.modelsDir)
    expect(modelsMount?.mountPath, 'the models directory is a mount point').toBe(config.modelsDir)
    const volume = expectWritable(podSpec, container, config.modelsDir, 'the models directory')
    expect(volume.persistentVolumeClaim.claimName).toBe(pvc.metadata.name)
    expect(pvc.kind).toBe('PersistentVolumeClaim')
    expect(pvc.spec.resources.requests.storage).toBeDefined()
    expectWritable(podSpec, container, config.stateDir, 'the state directory')
    expectWritable(podSpec, container, envOf(container).HOME!, 'HOME')
    expect(
      volumeNamed(podSpec, mountHolding(container, envOf(container).HOME!)!.name).emptyDir,
    ).toBeDefined()
  })

  it('the replicas share one ReadWriteMany PVC for models and state, and poll it', async () => {
    const config = await configOf(container, await tokenFileFromExample())
    // Pods on several nodes mount the one claim, writable.
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany'])
    const shared = (path: string) =>
      volumeNamed(podSpec, mountHolding(container, path)!.name).persistentVolumeClaim?.claimName
    expect(shared(config.modelsDir), 'models on the shared claim').toBe(pvc.metadata.name)
    expect(shared(config.stateDir), 'state on the shared claim').toBe(pvc.metadata.name)
    // inotify does not see other nodes' writes on a network file system.
    expect(config.poll).toBe(true)
    expect(readFileSync(join(DEPLOY, 'kubernetes/pvc.yaml'), 'utf8')).toMatch(
      new RegExp(`${envName('poll')}=true|${flagName('poll')}`),
    )
    // More than one pod, always: the HPA owns the count (a `replicas:` in the Deployment would
    // be applied again by every `kubectl apply -k`, under the HPA).
    expect(deployment.spec.replicas, 'the HPA owns the replica count').toBeUndefined()
    expect(hpa.spec.minReplicas).toBeGreaterThan(1)
    // A rolling update keeps as many pods serving as before: the new one starts beside them.
    expect(deployment.spec.strategy.type).toBe('RollingUpdate')
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0)
    expect(deployment.spec.strategy.rollingUpdate.maxSurge).toBeGreaterThan(0)
  })

  it('the HPA scales the Deployment between two bounds, on a per-pod metric and on CPU against its request', () => {
    expect(hpa.apiVersion).toBe('autoscaling/v2')
    expect(hpa.kind).toBe('HorizontalPodAutoscaler')
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: deployment.apiVersion,
      kind: deployment.kind,
      name: deployment.metadata.name,
    })
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas)
    const metrics = hpa.spec.metrics as Obj[]
    expect(metrics.map((m) => m.type).sort()).toEqual(['Pods', 'Resource'])
    const perPod = hpaPodsMetric()
    expect(perPod.target.type).toBe('AverageValue')
    expect(quantity(perPod.target.averageValue)).toBeGreaterThan(0)
    const cpu = metrics.find((m) => m.type === 'Resource')!.resource as Obj
    expect(cpu.name).toBe('cpu')
    expect(cpu.target.type).toBe('Utilization')
    expect(cpu.target.averageUtilization).toBeGreaterThan(0)
    // Utilization is measured against the request: the container must have one.
    expect(quantity(container.resources.requests.cpu)).toBeGreaterThan(0)
  })

  it('the PodDisruptionBudget covers the Deployment pods and lets a drain go on', () => {
    expect(pdb.apiVersion).toBe('policy/v1')
    expect(pdb.kind).toBe('PodDisruptionBudget')
    const selector = pdb.spec.selector.matchLabels as Obj
    expect(selector).toEqual(deployment.spec.selector.matchLabels)
    for (const [k, v] of Object.entries(selector))
      expect(podLabels[k], `PodDisruptionBudget selector ${k}`).toBe(v)
    // One pod at a time, and never a budget that blocks every eviction at the HPA's minimum.
    if (pdb.spec.maxUnavailable !== undefined) expect(pdb.spec.maxUnavailable).toBe(1)
    else expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas)
    // Spread over nodes, so a drain takes one replica, not all of them.
    const spread = podSpec.topologySpreadConstraints as Obj[]
    expect(spread.map((c) => c.topologyKey)).toContain('kubernetes.io/hostname')
    for (const c of spread)
      expect(c.labelSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels)
  })

  it('the Deployment runs as non-root with a read-only root file system', () => {
    expectHardened('Deployment', podSpec, container)
    expect(podSpec.securityContext.runAsNonRoot).toBe(true)
    expect(podSpec.securityContext.fsGroup).toBe(1000)
    expect(podSpec.automountServiceAccountToken).toBe(false)
    expectResources('Deployment', container)
    expectPlatformEnv('Deployment', container)
    // Only volume types the restricted profile allows.
    for (const v of podSpec.volumes as Obj[]) {
      expect(
        Object.keys(v).filter((k) => k !== 'name'),
        `volume ${v.name}`,
      ).toSatisfy((keys: string[]) =>
        keys.every((k) =>
          [
            'persistentVolumeClaim',
            'emptyDir',
            'secret',
            'configMap',
            'projected',
            'downwardAPI',
          ].includes(k),
        ),
      )
    }
  })

  it('the admin token comes from the Secret, as a file the server reads', async () => {
    const file = envOf(container).MODELGATE_ADMIN_TOKEN_FILE!
    expect(file).toBeDefined()
    const mount = mountHolding(container, file)!
    expect(mount.readOnly).toBe(true)
    const secret = volumeNamed(podSpec, mount.name).secret as Obj
    expect(secret.secretName).toBe(secretExample.metadata.name)
    const item = (secret.items as Obj[]).find((i) => posix.join(mount.mountPath, i.path) === file)
    expect(item, 'the file is an item of the Secret').toBeDefined()
    expect(Object.keys(secretExample.stringData)).toContain(item!.key)
    // Readable by the pod's group (fsGroup), by no one else.
    expect(secret.defaultMode & 0o007).toBe(0)
    expect(secret.defaultMode & 0o040).toBe(0o040)
    // The server accepts the token read from such a file.
    expect((await configOf(container, await tokenFileFromExample())).adminToken).toBe(
      secretExample.stringData[item!.key],
    )
  })

  it('graceful shutdown fits in the termination grace period', async () => {
    /** The shutdown timeout in seconds: as the server reads it once config.ts knows it, else the variable. */
    const timeoutOf = async (c: Obj, tokenFile?: string): Promise<number> => {
      const fromConfig = (
        (await configOf(c, tokenFile)) as unknown as { shutdownTimeoutMs?: number }
      ).shutdownTimeoutMs
      return fromConfig !== undefined
        ? fromConfig / 1000
        : Number(envOf(c).MODELGATE_SHUTDOWN_TIMEOUT)
    }
    const timeout = await timeoutOf(container, await tokenFileFromExample())
    expect(timeout).toBe(Number(envOf(container).MODELGATE_SHUTDOWN_TIMEOUT))
    expect(timeout).toBeGreaterThan(0)
    const preStop = container.lifecycle?.preStop?.exec?.command as string[] | undefined
    const pause = preStop?.[0] === 'sleep' ? Number(preStop[1]) : 0
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThan(pause + timeout)
    expect(isvc.spec.predictor.terminationGracePeriodSeconds).toBeGreaterThan(
      await timeoutOf(kserveContainer),
    )
  })

  it('the Service selects the Deployment pods and targets the container port', () => {
    for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels as Obj))
      expect(podLabels[k], `Deployment selector ${k}`).toBe(v)
    const selector = service.spec.selector as Obj
    expect(Object.keys(selector).length).toBeGreaterThan(0)
    for (const [k, v] of Object.entries(selector))
      expect(podLabels[k], `Service selector ${k}`).toBe(v)
    const listens: Obj = { http: DEFAULT_PORT, grpc: 8081 }
    expect((service.spec.ports as Obj[]).map((p) => p.name)).toEqual(Object.keys(listens))
    for (const p of service.spec.ports as Obj[]) {
      expect(containerPort(container, p.targetPort), `Service port ${p.name} targetPort`).toBe(
        listens[p.name],
      )
    }
  })

  it('the KServe InferenceService runs modelgate as a V2 custom predictor on /mnt/models, port 8080', async () => {
    expect(isvc.apiVersion).toBe('serving.kserve.io/v1beta1')
    expect(isvc.kind).toBe('InferenceService')
    expect(isvc.spec.predictor.containers).toHaveLength(1)
    expect(kserveContainer.name).toBe('kserve-container')
    const args = kserveContainer.args as string[]
    expect(args[args.indexOf('--models') + 1]).toBe('/mnt/models')
    expect(args[args.indexOf('--port') + 1]).toBe('8080')
    const config = await configOf(kserveContainer)
    expect(config.modelsDir).toBe('/mnt/models')
    expect(config.port).toBe(8080)
    expect(config.port).toBe(DEFAULT_PORT)
    expect(config.host).toBe('0.0.0.0')
    expect(kserveContainer.ports.map((p: Obj) => p.containerPort)).toEqual([config.port])
    // KServe's custom-container conventions: STORAGE_URI (downloaded to /mnt/models, mounted
    // read-only) and PROTOCOL.
    const env = envOf(kserveContainer)
    expect(env.STORAGE_URI).toMatch(/^[a-z0-9]+:\/\//)
    expect(env.PROTOCOL).toBe('v2')
    expect(
      mountHolding(kserveContainer, config.stateDir),
      'state is not under the read-only /mnt/models',
    ).toBeDefined()
    expectWritable(isvc.spec.predictor, kserveContainer, config.stateDir, 'the state directory')
    expectWritable(isvc.spec.predictor, kserveContainer, env.HOME!, 'HOME')
    expectHardened('InferenceService', isvc.spec.predictor, kserveContainer)
    expectResources('InferenceService', kserveContainer)
    expectPlatformEnv('InferenceService', kserveContainer)
    const a = isvc.metadata.annotations as Obj
    expect(Number(a['prometheus.kserve.io/port'])).toBe(config.port)
    expect(a['prometheus.kserve.io/path']).toBe('/metrics')
  })

  it('Prometheus scrapes /metrics on the server port, selecting the pods the manifests make', () => {
    const jobs = prometheus.scrape_configs as Obj[]
    expect(jobs.length).toBeGreaterThanOrEqual(2)
    for (const job of jobs)
      expect(job.metrics_path ?? '/metrics', `job ${job.job_name}`).toBe('/metrics')
    const keep = (job: Obj, label: string) =>
      (job.relabel_configs as Obj[]).find(
        (r) => r.action === 'keep' && r.source_labels.join() === label,
      )?.regex
    const podLabel = (k: string) =>
      `__meta_kubernetes_pod_label_${k.replace(/[^A-Za-z0-9_]/g, '_')}`

    // deploy/kubernetes: the pods by label, the container port by name.
    const k8s = jobs.find((j) => j.job_name === 'modelgate')!
    expect(k8s.kubernetes_sd_configs[0].role).toBe('pod')
    expect(k8s.kubernetes_sd_configs[0].namespaces.names).toEqual([kustomization.namespace])
    const labels = deployment.spec.template.metadata.labels as Obj
    const labelKeeps = Object.entries(labels).filter(([k]) => keep(k8s, podLabel(k)) !== undefined)
    expect(labelKeeps.length, 'selects the pods by one of their labels').toBeGreaterThan(0)
    for (const [k, v] of labelKeeps)
      expect(new RegExp(`^(?:${keep(k8s, podLabel(k))})$`).test(v)).toBe(true)
    const portName = keep(k8s, '__meta_kubernetes_pod_container_port_name')
    expect(containerPort(container, portName)).toBe(DEFAULT_PORT)
    const a = deployment.spec.template.metadata.annotations as Obj
    expect(Number(a['prometheus.io/port'])).toBe(DEFAULT_PORT)
    expect(a['prometheus.io/path']).toBe('/metrics')

    // deploy/kserve: the InferenceService's pods, the kserve-container on its port.
    const ks = jobs.find((j) => j.job_name === 'modelgate-kserve')!
    expect(keep(ks, '__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice')).toBe(
      isvc.metadata.name,
    )
    expect(keep(ks, '__meta_kubernetes_pod_container_name')).toBe(kserveContainer.name)
    expect(Number(keep(ks, '__meta_kubernetes_pod_container_port_number'))).toBe(
      kserveContainer.ports[0].containerPort,
    )

    // Outside Kubernetes: the default port.
    const targets = jobs.flatMap((j) =>
      (j.static_configs ?? []).flatMap((s: Obj) => s.targets as string[]),
    )
    expect(targets.length).toBeGreaterThan(0)
    for (const t of targets) expect(Number(t.split(':').pop())).toBe(DEFAULT_PORT)
  })

  it('the Grafana dashboard is importable: a datasource input, unique ids, panels on the grid', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36)
    expect(dashboard.__inputs).toEqual([
      expect.objectContaining({
        name: 'DS_PROMETHEUS',
        type: 'datasource',
        pluginId: 'prometheus',
      }),
    ])
    expect(dashboard.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/)
    expect(dashboard.id).toBeNull()
    const panels = dashboard.panels as Obj[]
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length)
    for (const p of panels) {
      expect(
        p.gridPos.x + p.gridPos.w,
        `panel ${p.title} fits the 24-column grid`,
      ).toBeLessThanOrEqual(24)
      if (p.type === 'row') continue
      expect(p.datasource, `panel ${p.title}`).toEqual({
        type: 'prometheus',
        uid: '${DS_PROMETHEUS}',
      })
      expect(p.targets.length, `panel ${p.title} has queries`).toBeGreaterThan(0)
      expect(new Set(p.targets.map((t: Obj) => t.refId)).size).toBe(p.targets.length)
    }
    for (const v of dashboard.templating.list as Obj[])
      expect(v.datasource.uid).toBe('${DS_PROMETHEUS}')
  })

  it('the dashboard covers traffic, latency, batching, versions, swaps, rejections, rollbacks and memory', () => {
    const used = new Set(dashboardQueries().flatMap((q) => promqlMetrics(q.expr)))
    const want = [
      'modelgate_requests_total',
      'modelgate_request_duration_seconds_bucket',
      'modelgate_inference_duration_seconds_bucket',
      'modelgate_batch_size_bucket',
      'modelgate_queue_duration_seconds_bucket',
      'modelgate_active_version',
      'modelgate_loaded_versions',
      'modelgate_promotions_total',
      'modelgate_rejections_total',
      'modelgate_rollbacks_total',
      'modelgate_gate_duration_seconds_sum',
      'modelgate_swap_duration_seconds_count',
      'modelgate_in_flight_requests',
      'process_resident_memory_bytes',
    ]
    for (const m of want) expect(used, m).toContain(m)
  })

  it('reads PromQL the way the checks below need', () => {
    expect(
      promqlMetrics(
        'histogram_quantile(0.99, sum by (model, le) (rate(a_bucket{model=~"$model"}[$__rate_interval])))',
      ),
    ).toEqual(['a_bucket'])
    expect(
      promqlMetrics(
        'sum by (m) (x) / ignoring (s) group_left sum(y offset 15m) > 1e-3 and on (m) z',
      ),
    ).toEqual(['x', 'y', 'z'])
    expect(
      promqlLabels(
        'sum by (model, le) (rate(a{status!~"2..", instance=~"$instance"}[5m])) unless on (stage) b',
      ),
    ).toEqual(['status', 'instance', 'model', 'le', 'stage'])
  })
})

// ---------------------------------------------------------------------------------------------
// Against the real server: the probes answer, and every metric and label the dashboard and the
// alerts use is one the server serves.

interface Exposition {
  /** `# TYPE` of every registered metric, also those without a series yet. */
  readonly types: Map<string, string>
  /** Sample name (with _bucket, _sum, _count) -> label names seen on its series. */
  readonly samples: Map<string, Set<string>>
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>()
  const samples = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) types.set(type[1]!, type[2]!)
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line)
    if (!sample) continue
    const labels = samples.get(sample[1]!) ?? new Set<string>()
    for (const m of (sample[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) labels.add(m[1]!)
    samples.set(sample[1]!, labels)
  }
  return { types, samples }
}

/** The registered metric a referenced name belongs to, and its type; undefined if none. */
function metricOf(name: string, e: Exposition): { base: string; type: string } | undefined {
  if (e.types.has(name)) return { base: name, type: e.types.get(name)! }
  const m = /^(.+)_(bucket|sum|count)$/.exec(name)
  if (m && ['histogram', 'summary'].includes(e.types.get(m[1]!) ?? '')) {
    if (m[2] === 'bucket' && e.types.get(m[1]!) !== 'histogram') return undefined
    return { base: m[1]!, type: e.types.get(m[1]!)! }
  }
  return undefined
}

const TOKEN = 'deploy-test-admin-token-0123456789'
let exampleTokenDir: string | undefined

/** A file holding the example Secret's token, standing in for the mounted Secret. */
async function tokenFileFromExample(): Promise<string> {
  exampleTokenDir ??= await makeTempDir('modelgate-deploy-')
  const file = join(exampleTokenDir, 'token')
  await writeFile(file, String(secretExample.stringData.token))
  return file
}

afterAll(async () => {
  if (exampleTokenDir !== undefined) await rm(exampleTokenDir, { recursive: true, force: true })
})

describe('deploy/ against the real server', () => {
  let t: TestServer
  let exposition: Exposition

  beforeAll(async () => {
    t = await startTestServer(
      async (dir) => {
        await writeVersion(dir, 'adder', 1, addConstModel(1))
        await writeVersion(dir, 'adder', 2, addConstModel(2))
        // A version that is not a model: rejected at load (rejections, promotions by result).
        await writeModelFile(join(dir, 'adder', '3.onnx'), 'not a model')
        // Batching on: batch size and queue time series.
        await writeFile(
          join(dir, 'adder', 'model.json'),
          JSON.stringify({ batching: { enabled: true } }),
        )
      },
      {},
      { MODELGATE_ADMIN_TOKEN: TOKEN },
    )
    await waitFor(
      async () =>
        (await (await fetch(`${t.url}/metrics`)).text()).includes('modelgate_rejections_total{'),
      'version 3 to be rejected',
    )
    // Requests to /predict, so the per-model and per-version series exist.
    for (let i = 0; i < 3; i++)
      expect((await postJson(`${t.url}/predict`, { inputs: [[1, 2, 3, 4]] })).status).toBe(200)
    expect((await postJson(`${t.url}/predict`, { inputs: [[1, 2, 3]] })).status).toBe(400)
    // A rollback (admin), for the rollback series.
    const rb = await postJson(
      `${t.url}/models/adder/rollback`,
      { version: 1 },
      { authorization: `Bearer ${TOKEN}` },
    )
    expect(rb.status, JSON.stringify(rb.body)).toBe(200)
    expect((await postJson(`${t.url}/predict`, { inputs: [[1, 2, 3, 4]] })).status).toBe(200)
    const res = await fetch(`${t.url}/metrics`)
    expect(res.status).toBe(200)
    exposition = parseExposition(await res.text())
  })
  afterAll(() => t?.close())

  it('every probe of the Deployment and the InferenceService answers 200 on the server port', async () => {
    const probes = [
      ...probesOf('Deployment', container),
      ...probesOf('InferenceService', kserveContainer),
    ]
    expect(probes.map((p) => p.where)).toEqual(
      expect.arrayContaining([
        'Deployment livenessProbe',
        'Deployment readinessProbe',
        'InferenceService livenessProbe',
        'InferenceService readinessProbe',
      ]),
    )
    for (const p of probes) {
      expect(p.port, `${p.where} port`).toBe(DEFAULT_PORT)
      const res = await fetch(`${t.url}${p.path}`)
      expect(res.status, `${p.where}: GET ${p.path}`).toBe(200)
    }
    // Liveness and readiness are different answers: readiness is the one that waits for models.
    expect(container.livenessProbe.httpGet.path).not.toBe(container.readinessProbe.httpGet.path)
  })

  it('the scrape path serves Prometheus text', async () => {
    const res = await fetch(`${t.url}${prometheus.scrape_configs[0].metrics_path}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  })

  it('the server registered the metrics this test drove (its /metrics is what the checks below see)', () => {
    for (const m of [
      'modelgate_requests_total',
      'modelgate_rejections_total',
      'modelgate_rollbacks_total',
      'modelgate_swap_duration_seconds_count',
      'modelgate_batch_size_bucket',
    ]) {
      expect(exposition.samples.has(m), `${m} has a series`).toBe(true)
    }
  })

  for (const [what, queries] of [
    ['the Grafana dashboard', dashboardQueries],
    ['the alert rules', alertQueries],
  ] as const) {
    it(`every metric ${what} queries is one the server serves, of the right type`, () => {
      const qs = queries()
      expect(qs.length).toBeGreaterThan(0)
      for (const q of qs) {
        const names = promqlMetrics(q.expr)
        expect(names.length, `${q.where}: ${q.expr}`).toBeGreaterThan(0)
        for (const name of names) {
          if (PROMETHEUS_SERIES.has(name)) continue
          const metric = metricOf(name, exposition)
          expect(metric, `${q.where}: ${name} is not in the server's /metrics`).toBeDefined()
          if (/\bhistogram_quantile\s*\(/.test(q.expr) && name.endsWith('_bucket'))
            expect(metric!.type, `${q.where}: ${name}`).toBe('histogram')
          if (metric!.type === 'histogram')
            expect(
              name,
              `${q.where}: a histogram is queried by its _bucket, _sum or _count series`,
            ).not.toBe(metric!.base)
        }
        if (/\bhistogram_quantile\s*\(/.test(q.expr))
          expect(
            names.some((n) => n.endsWith('_bucket')),
            `${q.where}: histogram_quantile over buckets`,
          ).toBe(true)
      }
    })

    it(`every label ${what} uses is a label of the series it queries`, () => {
      for (const q of queries()) {
        const names = promqlMetrics(q.expr).filter((n) => !PROMETHEUS_SERIES.has(n))
        if (names.length === 0) continue // only series Prometheus makes itself (`up`): its labels are the target's
        // The run above drives every series the files query: a query whose series is missing
        // would have its labels go unchecked.
        expect(
          names.filter((n) => !exposition.samples.has(n)),
          `${q.where}: series this run did not produce`,
        ).toEqual([])
        const labels = new Set([
          ...TARGET_LABELS,
          ...names.flatMap((n) => [...exposition.samples.get(n)!]),
        ])
        for (const l of promqlLabels(q.expr))
          expect(labels, `${q.where}: label ${l} of ${names.join(', ')}`).toContain(l)
      }
    })
  }

  it("the HPA's per-pod metric is a prometheus-adapter rule over a series the server serves, with the scrape job's pod labels", () => {
    const name = hpaPodsMetric().metric.name
    const served = adapterRules().filter((r) => r.served === name)
    expect(served, `one adapter rule serves ${name}`).toHaveLength(1)
    const { series, rule } = served[0]!
    const metric = metricOf(series, exposition)
    expect(metric, `${series} is in the server's /metrics`).toBeDefined()
    expect(exposition.samples.has(series), `${series} has a series`).toBe(true)

    // The rule maps the series to pods by the labels the `modelgate` scrape job sets from the
    // pod's namespace and name: without them the custom metrics API has nothing per pod.
    const job = (prometheus.scrape_configs as Obj[]).find((j) => j.job_name === 'modelgate')!
    const setFrom = (meta: string) =>
      (job.relabel_configs as Obj[]).find(
        (r) => (r.action ?? 'replace') === 'replace' && r.source_labels.join() === meta,
      )?.target_label
    const overrides = rule.resources.overrides as Obj
    expect(overrides[setFrom('__meta_kubernetes_namespace')]).toEqual({ resource: 'namespace' })
    expect(overrides[setFrom('__meta_kubernetes_pod_name')]).toEqual({ resource: 'pod' })
    const labels = new Set([...Object.keys(overrides), ...exposition.samples.get(series)!])

    // seriesQuery and metricsQuery read that series, by labels it has.
    const query = adapterQuery(rule.metricsQuery, series)
    for (const [what, expr] of [
      ['seriesQuery', rule.seriesQuery],
      ['metricsQuery', query],
    ] as const) {
      expect(promqlMetrics(expr), `${what}: ${expr}`).toEqual([series])
      for (const l of promqlLabels(expr)) expect(labels, `${what}: label ${l}`).toContain(l)
    }
    expect(promqlLabels(query), 'grouped by pod').toContain('pod')
    // A counter is read as a rate, a gauge as it is (or averaged over time).
    const rates = /\b(?:rate|irate|increase)\s*\(/.test(query)
    expect(metric!.type, `${series} in ${query}`).toBe(rates ? 'counter' : 'gauge')
  })

  it('the alerts use the labels their annotations print', () => {
    for (const r of alertRules) {
      const grouped = /^\s*\(?\s*(?:sum|max|min|avg|count)\s+by\s*\(([^)]*)\)/.exec(r.expr)
      const printed = [...JSON.stringify(r.annotations).matchAll(/\$labels\.([A-Za-z_]+)/g)].map(
        (m) => m[1]!,
      )
      if (grouped === null) continue
      const kept = grouped[1]!.split(',').map((s) => s.trim())
      for (const l of printed) expect(kept, `alert ${r.alert} prints $labels.${l}`).toContain(l)
    }
  })
})
