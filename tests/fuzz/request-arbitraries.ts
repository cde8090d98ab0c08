import fc from 'fast-check'
import { deflateSync, gzipSync } from 'node:zlib'
import type { FuzzRequest } from './raw-request.js'
import {
  ELEMENT_BYTES,
  V2_DATATYPES,
  dimsFor,
  flatData,
  longRun,
  nestedData,
  tensorFor,
  validElement,
  wildShape,
  type InputSpec,
} from './tensor-arbitraries.js'
import {
  mostly,
  Obj,
  object,
  optional,
  orWild,
  Raw,
  toJsonText,
  wildAny,
  wildHuge,
  wildKey,
  wildString,
  wildValue,
  type Wild,
} from './wild-json.js'

/** What the generators know about the server under test. */
export interface FuzzTargets {
  /** Path templates of every documented route (`/models/{name}/predict`), and which are admin routes. */
  readonly routes: readonly {
    readonly template: string
    readonly methods: readonly string[]
    readonly admin: boolean
  }[]
  /** Models that serve, with the inputs and outputs of their active version. */
  readonly models: readonly FuzzModel[]
  /** Models that exist but do not serve (every version rejected). */
  readonly unserved: readonly string[]
  /** The one model admin requests with a valid token may change (promote, roll back, unload, load). */
  readonly sacrificial: string
  /** The model of `POST /predict`, and the one a body is shaped for when the path names none that serves. */
  readonly defaultModel: string
  readonly adminToken: string
  /** --max-body-size, for bodies just past it. */
  readonly maxBodyBytes: number
}

export interface FuzzModel {
  readonly name: string
  readonly inputs: readonly InputSpec[]
  readonly outputs: readonly string[]
}

/** Which part of the surface a property aims at. */
export type Focus = 'any' | 'predict' | 'v2' | 'admin' | 'paths' | 'encodings'

/**
 * How often a part of a request that should be right is wrong instead: one time in `odds + 1`;
 * Infinity: never. Properties about tensors send half their requests with a clean envelope (odds
 * Infinity), so that most reach the model and only the tensors are wrong.
 */
type Odds = number

const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
  'PURGE',
] as const

/** Path segments that are trouble: escapes valid and not, dot segments, prototype names, encoded slashes, raw non-ASCII. */
const ODD_SEGMENTS = [
  '%ff',
  '%',
  '%E0%A4%A',
  '%zz',
  '%2e%2e',
  '..',
  '.',
  '%2F',
  'a%2Fb',
  '%00',
  '%20',
  '%C3%A9',
  '%F0%9F%98%80',
  '%ED%A0%80',
  '%C0%AF',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  '\u00e9',
  '\u00ff\u00fe',
  '~',
  "'",
  '"',
  '%3Cx%3E',
  'a;b',
  'a,b',
  '*',
  '$',
  '@',
  '%25',
  '%2525',
  '+',
  'a+b',
  'nope',
  'NOPE',
  '.modelgate',
  '%2Emodelgate',
  'a\\b',
] as const

const ODD_VERSIONS = [
  '0',
  '-1',
  '01',
  '1.0',
  '1e3',
  '+1',
  '999999999999999',
  '9999999999999999',
  '18446744073709551616',
  'abc',
  '%31',
  '%',
  '%ff',
  '1%00',
  '00000000000000000001',
  '9'.repeat(400),
  '0x1',
  'Infinity',
  'NaN',
  '%2e',
  '3',
  '2',
] as const

const QUERIES = [
  'limit=1',
  'limit=0',
  'limit=-1',
  'limit=1e2',
  'limit=abc',
  'limit=200',
  'limit=201',
  'limit=%zz',
  'limit=',
  'limit',
  'a=%ff&b',
  'limit=1&limit=2',
  'limit=9007199254740993',
  'limit=0x10',
  'limit=%31',
  '=',
  '&&',
  '%',
  '__proto__=1',
] as const

/** `s` percent-encoded as UTF-8, as encodeURIComponent does, but a lone surrogate (U+FFFD) does not throw. */
function encodeSegment(s: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9\-_.!~*'()]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('')
}

/** A model name for a path: a real one, one that does not serve, or anything odd. */
function nameSegment(
  t: FuzzTargets,
  realNames: readonly string[],
  odds: Odds,
): fc.Arbitrary<string> {
  const odd = fc.oneof(
    fc.constantFrom(...t.unserved, 'missing-model'),
    fc.constantFrom(...ODD_SEGMENTS),
    wildString.map(encodeSegment),
    fc.integer({ min: 200, max: 6000 }).map((n) => 'm'.repeat(n)),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).map(encodeSegment),
  )
  return mostly(fc.constantFrom(...realNames).map(encodeSegment), odd, odds / 2)
}

function versionSegment(odds: Odds): fc.Arbitrary<string> {
  const odd = fc.oneof(
    fc.constantFrom(...ODD_VERSIONS),
    fc.nat().map(String),
    fc.bigInt({ min: 0n, max: 2n ** 80n }).map(String),
  )
  return mostly(fc.constant('1'), odd, odds / 2)
}

/** The path as written: sometimes with a trailing slash, a doubled one, a dot segment, a query, a fragment. */
function mutatedPath(path: string): fc.Arbitrary<string> {
  const query = fc.oneof(
    { weight: 6, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: fc.constantFrom(...QUERIES).map((q) => `?${q}`) },
    { weight: 1, arbitrary: wildString.map((s) => `?${encodeSegment(s)}=${encodeSegment(s)}`) },
  )
  const how = fc.constantFrom(
    'as-is',
    'as-is',
    'as-is',
    'as-is',
    'trailing',
    'double',
    'dot',
    'dotdot',
    'upper',
    'fragment',
  )
  return fc.tuple(how, query).map(([h, q]) => {
    const cut = path.indexOf('/', 1)
    const at = (insert: string) =>
      cut < 0 ? `${insert}${path}` : `${path.slice(0, cut)}${insert}${path.slice(cut)}`
    switch (h) {
      case 'trailing':
        return `${path}/${q}`
      case 'double':
        return `/${path}${q}`
      case 'dot':
        return `${at('/.')}${q}`
      case 'dotdot':
        return `${at('/x/..')}${q}`
      case 'upper':
        // ASCII only: 'ÿ'.toUpperCase() is U+0178, which no request line can carry.
        return `${path.replace(/[a-z]/g, (c) => c.toUpperCase())}${q}`
      case 'fragment':
        return `${path}${q}#frag`
      default:
        return `${path}${q}`
    }
  })
}

/** The simple API's body for `model`: `inputs` as a map or a bare tensor, `outputs`, `output_format`. */
function predictBody(model: FuzzModel, odds: Odds): fc.Arbitrary<Wild> {
  const specs = [...model.inputs]
  const chosen = mostly(
    fc.shuffledSubarray(specs, { minLength: specs.length }),
    fc.subarray(specs),
    odds,
  )
  const extra = mostly<(readonly [string, Wild])[]>(
    fc.constant([]),
    fc
      .tuple(fc.oneof(wildKey, fc.constantFrom(...specs.map((s) => s.name))), wildValue)
      .map((e) => [e]),
    odds,
  )
  const inputMap = fc
    .tuple(chosen, extra)
    .chain(([some, more]) =>
      fc
        .tuple(...some.map((s) => tensorFor(s).map((v) => [s.name, v] as const)))
        .map((entries) => new Obj([...entries, ...more])),
    )
  // A bare tensor for a one-input model: nested arrays or a scalar (an object is a map of inputs).
  const bare = (spec: InputSpec) =>
    fc.oneof(
      dimsFor(spec).chain((dims) => nestedData(spec.type, dims)),
      validElement(spec.type),
      wildHuge,
    )
  const inputs = orWild(specs.length === 1 ? fc.oneof(inputMap, bare(specs[0]!)) : inputMap, odds)
  const outputNames = fc.array(mostly(fc.constantFrom(...model.outputs), wildKey, odds), {
    minLength: 1,
    maxLength: 3,
  })
  return object(
    {
      inputs,
      outputs: optional(orWild(mostly<Wild>(outputNames, fc.constant([]), odds), odds)),
      output_format: optional(orWild(fc.constantFrom('nested', 'typed'), odds)),
    },
    odds,
  )
}

/** One V2 input: its JSON part and, when it travels as binary, its bytes. */
type V2Input = { readonly json: Wild; readonly bytes: Buffer | undefined }

function v2Input(model: FuzzModel, spec: InputSpec, odds: Odds): fc.Arbitrary<V2Input> {
  const otherTypes = fc.constantFrom(
    ...Object.values(V2_DATATYPES),
    'fp32',
    'FP8',
    'STRING',
    'BF16',
  )
  const datatype = orWild(mostly(fc.constant(V2_DATATYPES[spec.type]), otherTypes, odds), odds)
  const name = orWild(
    mostly(
      fc.constant(spec.name),
      fc.oneof(fc.constantFrom(...model.inputs.map((i) => i.name)), wildKey),
      odds,
    ),
    odds,
  )
  const json = (dims: number[]) => {
    const shape = fc.oneof(
      { weight: 8, arbitrary: fc.constant<Wild>(dims) },
      { weight: 1, arbitrary: wildShape },
    )
    const data = fc.oneof(
      { weight: 5, arbitrary: flatData(spec.type, dims) },
      { weight: 1, arbitrary: nestedData(spec.type, dims) },
      { weight: 1, arbitrary: wildAny },
    )
    return object(
      { name, shape, datatype, data, parameters: optional(orWild(fc.constant(new Obj([])), odds)) },
      odds,
    ).map((j): V2Input => ({ json: j, bytes: undefined }))
  }
  const binary = (dims: number[]): fc.Arbitrary<V2Input> =>
    binaryBytes(spec.type, dims).chain((bytes) => {
      const size = mostly(
        fc.constant<Wild>(bytes.length),
        fc.constantFrom<Wild>(
          bytes.length + 1,
          bytes.length - 1,
          -1,
          1.5,
          '4',
          null,
          new Raw('1e400'),
          2 ** 53,
        ),
        odds,
      )
      const shape = fc.oneof(
        { weight: 8, arbitrary: fc.constant<Wild>(dims) },
        { weight: 1, arbitrary: wildShape },
      )
      const data = mostly<Wild | undefined>(fc.constant(undefined), fc.constant([]), odds)
      return object(
        {
          name,
          shape,
          datatype,
          parameters: size.map((s) => new Obj([['binary_data_size', s]])),
          data,
        },
        odds,
      ).map((j): V2Input => ({ json: j, bytes }))
    })
  const run = longRun(spec)
  const long = run?.map(
    (r): V2Input => ({
      json: new Obj([
        ['name', spec.name],
        ['shape', r.dims],
        ['datatype', V2_DATATYPES[spec.type]],
        ['data', r.data],
      ]),
      bytes: undefined,
    }),
  )
  const shaped = fc
    .tuple(dimsFor(spec), fc.boolean())
    .chain(([dims, asBinary]) => (asBinary ? binary(dims) : json(dims)))
  return long ? fc.oneof({ weight: 8, arbitrary: shaped }, { weight: 1, arbitrary: long }) : shaped
}

/** The binary extension's bytes for `dims` of `type`: right, random, or BYTES with lengths that lie. */
function binaryBytes(type: InputSpec['type'], dims: readonly number[]): fc.Arbitrary<Buffer> {
  const count = Math.min(
    dims.reduce((a, b) => a * b, 1),
    256,
  )
  const random = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b))
  if (type === 'string') {
    const element = fc.oneof(
      validElement('string').map((s) => Buffer.from(String(s))),
      fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)),
    )
    const framed = fc
      .tuple(
        fc.array(element, { minLength: count, maxLength: count }),
        fc.constantFrom(0, 0, 0, 1, -1, 1e6),
      )
      .map(([parts, lie]) =>
        Buffer.concat(
          parts.flatMap((p, i) => {
            const length = Buffer.alloc(4)
            length.writeUInt32LE(i === 0 ? Math.max(0, p.length + lie) >>> 0 : p.length)
            return [length, p]
          }),
        ),
      )
    return fc.oneof({ weight: 4, arbitrary: framed }, { weight: 1, arbitrary: random })
  }
  const size = count * ELEMENT_BYTES[type]
  // BOOL: bytes other than 0 and 1 are refused; most are valid so that the rest of the request is reached.
  const right =
    type === 'bool'
      ? fc.array(fc.constantFrom(0, 1, 1, 0, 2, 255), { minLength: count, maxLength: count })
      : fc.uint8Array({ minLength: size, maxLength: size })
  return fc.oneof(
    { weight: 4, arbitrary: right.map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: random },
  )
}

/** A V2 inference request: JSON, or a JSON header then binary tensors; and its Inference-Header-Content-Length. */
function v2Request(
  model: FuzzModel,
  odds: Odds,
): fc.Arbitrary<{ body: Buffer; headerLength: string | undefined }> {
  const specs = [...model.inputs]
  const inputs = mostly(
    fc.shuffledSubarray(specs, { minLength: specs.length }),
    fc.array(fc.constantFrom(...specs), { maxLength: specs.length + 1 }),
    odds,
  ).chain((some) => fc.tuple(...some.map((spec) => v2Input(model, spec, odds))))
  const output = (name: Wild) =>
    object(
      {
        name: orWild(fc.constant(name), odds),
        parameters: optional(
          orWild(object({ binary_data: optional(orWild(fc.boolean(), odds)) }, odds), odds),
        ),
      },
      odds,
    )
  // Each output once, or (now and then) names that repeat or that the model does not have.
  const someOutputs = fc
    .shuffledSubarray([...model.outputs], { minLength: 1 })
    .chain((names) => fc.tuple(...names.map(output)))
  const oddOutputs = fc.array(fc.oneof(fc.constantFrom(...model.outputs), wildKey).chain(output), {
    maxLength: 3,
  })
  const headerLength = mostly(
    fc.constant('right'),
    fc.constantFrom(
      'absent',
      'short',
      'long',
      'zero',
      '-1',
      'abc',
      '1e2',
      '',
      ' 5',
      '0x10',
      '99999999999999999999',
      '1.5',
    ),
    odds,
  )
  return fc
    .tuple(
      inputs,
      optional(mostly<Wild[]>(someOutputs, oddOutputs, odds)),
      optional(object({ binary_data_output: optional(orWild(fc.boolean(), odds)) }, odds)),
      optional(orWild(wildString, odds)),
      headerLength,
    )
    .map(([ins, outs, parameters, id, how]) => {
      const header = Buffer.from(
        toJsonText(
          new Obj([
            ['inputs', ins.map((i) => i.json)],
            ...(outs ? [['outputs', outs] as const] : []),
            ...(parameters ? [['parameters', parameters] as const] : []),
            ...(id !== undefined ? [['id', id] as const] : []),
          ]),
        ),
      )
      const binary = ins.flatMap((i) => (i.bytes ? [i.bytes] : []))
      const body = Buffer.concat([header, ...binary])
      const lengths: Record<string, string | undefined> = {
        right: binary.length > 0 ? String(header.length) : undefined,
        absent: undefined,
        short: String(Math.max(0, header.length - 1)),
        long: String(body.length + 1),
        zero: '0',
      }
      return { body, headerLength: how in lengths ? lengths[how] : how }
    })
}

/** Bodies of the admin routes: rollback, promote, repository index. */
function adminBody(odds: Odds): fc.Arbitrary<Wild> {
  const version = optional(orWild(fc.integer({ min: -1, max: 4 }), odds))
  return fc.oneof(
    object(
      {
        version,
        reason: optional(
          orWild(
            fc.oneof(
              wildString,
              fc.integer({ min: 400, max: 600 }).map((n) => 'r'.repeat(n)),
            ),
            odds,
          ),
        ),
      },
      odds,
    ),
    object({ version, force: optional(orWild(fc.boolean(), odds)) }, odds),
    object({ ready: optional(orWild(fc.boolean(), odds)) }, odds),
  )
}

const ODD_CONTENT_TYPES = [
  undefined,
  'application/json; charset=utf-8',
  'application/json;charset=latin1',
  'APPLICATION/JSON',
  'application/vnd.api+json',
  'application/octet-stream',
  'text/plain',
  'text/json',
  'multipart/form-data; boundary=xyz',
  'application/x-www-form-urlencoded',
  '',
  ';',
  'application/',
  '+json',
  'application/json, text/plain',
  'application/json\t',
  '\u00e9/json',
] as const

const ACCEPT_ENCODINGS = [
  'gzip',
  'deflate',
  'br',
  '*',
  'gzip;q=0',
  'identity',
  'gzip;q=abc, deflate',
  'x-gzip',
  'gzip, deflate, br',
  '*;q=0',
  'zstd',
  ',,;',
  'gzip;q=1e400',
] as const

/** A body as compressed (or claimed to be): valid gzip/deflate, truncated, random bytes, a bomb, an encoding not supported. */
export interface Encoded {
  readonly encoding: string
  readonly body: Buffer
}

function encodings(maxBodyBytes: number): (body: Buffer) => fc.Arbitrary<Encoded> {
  // A few KiB that decode far past --max-body-size: refused as they decode, never buffered whole.
  const bomb = gzipSync(Buffer.alloc(maxBodyBytes * 4, 0x20))
  const cut = (z: Buffer, n: number) => z.subarray(0, n % Math.max(1, z.length))
  return (body) =>
    fc.oneof(
      {
        weight: 2,
        arbitrary: fc.constantFrom<Encoded>(
          { encoding: 'gzip', body: gzipSync(body) },
          { encoding: 'deflate', body: deflateSync(body) },
          { encoding: 'x-gzip', body: gzipSync(body) },
          { encoding: 'GZIP', body: gzipSync(body) },
        ),
      },
      {
        weight: 1,
        arbitrary: fc.nat().map((n) => ({ encoding: 'gzip', body: cut(gzipSync(body), n) })),
      },
      {
        weight: 1,
        arbitrary: fc.nat().map((n) => ({ encoding: 'deflate', body: cut(deflateSync(body), n) })),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom('gzip', 'deflate'), fc.uint8Array({ maxLength: 200 }))
          .map(([encoding, b]) => ({ encoding, body: Buffer.from(b) })),
      },
      { weight: 1, arbitrary: fc.constant<Encoded>({ encoding: 'gzip', body: bomb }) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom('br', 'compress', 'gzip, gzip', 'identity', '', 'zstd', 'gzip;q=1')
          .map((encoding) => ({ encoding, body })),
      },
      {
        weight: 1,
        arbitrary: fc.constant<Encoded>({
          encoding: 'gzip',
          body: Buffer.concat([gzipSync(body), gzipSync(body)]),
        }),
      },
    )
}

const EXTRA_HEADERS: readonly Record<string, string>[] = [
  { expect: '100-continue' },
  { expect: 'something-else' },
  { connection: 'close' },
  { connection: 'upgrade', upgrade: 'websocket' },
  { 'x-forwarded-for': '10.0.0.1' },
  { te: 'trailers' },
  { accept: 'text/html' },
  { 'inference-header-content-length': '3' },
  { host: 'example.com' },
  { host: '' },
  { host: 'a b' },
  { range: 'bytes=0-1' },
  { 'x-long': 'v'.repeat(8000) },
]

function authorization(
  token: string,
  how: 'valid' | 'wrong' | 'none',
): fc.Arbitrary<string | undefined> {
  if (how === 'none') return fc.constant(undefined)
  if (how === 'valid')
    return fc.constantFrom(
      `Bearer ${token}`,
      `bearer ${token}`,
      `Bearer   ${token}  `,
      `BEARER ${token}`,
    )
  return fc.constantFrom(
    'Bearer wrong',
    'Bearer',
    'Bearer ',
    'Basic Zm9vOmJhcg==',
    `Bearer ${token}x`,
    `Bearer ${'x'.repeat(5000)}`,
    token,
    `Bearer ${token.slice(1)}`,
    '\u00e9\u00e9',
  )
}

/** A request and the route template it was made from (for the record in a counterexample). */
export interface GeneratedRequest extends FuzzRequest {
  readonly route: string
}

type Payload = {
  readonly body: Buffer | undefined
  readonly headers: Readonly<Record<string, string>>
}

/**
 * A request aimed at `focus`: a documented route, a method (mostly the one the route takes), admin
 * auth right, wrong or absent, a body shaped for the route and wrong in every way, content and
 * compression headers, a query; for `paths` and `any`, the path itself mangled.
 */
export function requestArbitrary(t: FuzzTargets, focus: Focus): fc.Arbitrary<GeneratedRequest> {
  const routes = t.routes.filter((r) => {
    if (focus === 'predict') return r.template.endsWith('/predict')
    if (focus === 'v2') return r.template.endsWith('/infer')
    if (focus === 'admin') return r.admin
    return true
  })
  // Aimed at what a model does with a request: half the requests have a clean envelope.
  const aimed = focus === 'predict' || focus === 'v2' || focus === 'encodings'
  const odds = aimed ? fc.constantFrom<Odds>(Infinity, 12) : fc.constant<Odds>(6)
  const encode = encodings(t.maxBodyBytes)
  const served = t.models.map((m) => m.name)

  const payloadFor = (template: string, path: string, o: Odds): fc.Arbitrary<Payload> => {
    const named = /^\/(?:v2\/)?models\/([^/?#]+)/.exec(path)?.[1]
    const model =
      t.models.find((m) => encodeSegment(m.name) === named) ??
      t.models.find((m) => m.name === t.defaultModel)!
    const asText = (w: fc.Arbitrary<Wild>) =>
      w.map((v): Payload => ({ body: Buffer.from(toJsonText(v)), headers: {} }))
    let shaped: fc.Arbitrary<Payload>
    if (template.endsWith('/predict')) shaped = asText(predictBody(model, o))
    else if (template.endsWith('/infer'))
      shaped = v2Request(model, o).map(
        ({ body, headerLength }): Payload => ({
          body,
          headers:
            headerLength === undefined ? {} : { 'inference-header-content-length': headerLength },
        }),
      )
    else if (/rollback|promote|index/.test(template)) shaped = asText(adminBody(o))
    else shaped = fc.constant({ body: undefined, headers: {} })
    const anything = fc.oneof(
      asText(wildAny),
      fc
        .uint8Array({ maxLength: 300 })
        .map((b): Payload => ({ body: Buffer.from(b), headers: {} })),
      fc.constantFrom<Payload>(
        { body: undefined, headers: {} },
        { body: Buffer.alloc(0), headers: {} },
      ),
      fc
        .constantFrom(t.maxBodyBytes, t.maxBodyBytes + 1)
        .map((n): Payload => ({ body: Buffer.alloc(n, 0x20), headers: {} })),
    )
    return mostly(shaped, anything, focus === 'any' || focus === 'paths' ? 1 : o)
  }

  return fc
    .tuple(
      fc.constantFrom(...routes),
      fc.constantFrom('valid', 'valid', 'wrong', 'none') as fc.Arbitrary<
        'valid' | 'wrong' | 'none'
      >,
      odds,
    )
    .chain(([route, auth, o]) => {
      // With the right token, admin routes only ever touch the sacrificial model (or one that does not exist).
      const names = route.admin && auth === 'valid' ? [t.sacrificial] : served
      const filled = fc
        .tuple(nameSegment(t, names, o), versionSegment(o))
        .map(([n, v]) => route.template.replace('{name}', n).replace('{version}', v))
      const path = focus === 'paths' || focus === 'any' ? filled.chain(mutatedPath) : filled
      return fc.record({
        route: fc.constant(route.template),
        o: fc.constant(o),
        path,
        method: mostly(fc.constantFrom(...route.methods), fc.constantFrom(...METHODS), o),
        authorization: authorization(t.adminToken, auth),
        contentType: mostly(
          fc.constant<string | undefined>('application/json'),
          fc.constantFrom(...ODD_CONTENT_TYPES),
          o / 2,
        ),
        acceptEncoding: mostly(fc.constant(undefined), fc.constantFrom(...ACCEPT_ENCODINGS), 3),
        extra: mostly(fc.constant({}), fc.constantFrom(...EXTRA_HEADERS), o * 2),
        chunked: fc.boolean(),
        compress:
          focus === 'encodings' ? fc.boolean() : mostly(fc.constant(false), fc.constant(true), 8),
      })
    })
    .chain((r) =>
      payloadFor(r.route, r.path, r.o).chain((payload) => {
        const encoded: fc.Arbitrary<Encoded | undefined> =
          r.compress && payload.body !== undefined ? encode(payload.body) : fc.constant(undefined)
        return encoded.map((e): GeneratedRequest => {
          const headers: Record<string, string> = { ...r.extra, ...payload.headers }
          if (r.contentType !== undefined) headers['content-type'] = r.contentType
          if (r.acceptEncoding !== undefined) headers['accept-encoding'] = r.acceptEncoding
          if (r.authorization !== undefined) headers.authorization = r.authorization
          if (e) headers['content-encoding'] = e.encoding
          const body = e ? e.body : payload.body
          return {
            method: r.method,
            path: r.path,
            headers,
            body,
            chunked: body !== undefined && r.chunked,
            route: r.route,
          }
        })
      }),
    )
}
