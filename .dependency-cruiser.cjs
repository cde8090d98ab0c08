// The layers of src/ (docs/architecture.md), lowest first. A layer imports only the ones below it;
// tests, bench and scripts may import anything.
//   onnx, metrics            protobuf reading; the server's own prom-client registry
//   events                   lifecycle events published (bus) and sent to webhooks; lifecycle
//                            publishes, http streams them (GET /events)
//   runtime                  onnxruntime-node: sessions, tensor codecs, batcher, worker pool
//   repository               what is on disk
//   lifecycle                versions, their states, the gate, the swap
//   dataplane, v2            serving requests without knowing about HTTP; v2 holds the KServe V2
//                            protocol's codecs, which the data plane's views and the routes use
//   http, grpc               the protocols: Hono app and routes; the Open Inference Protocol over
//                            gRPC. Neither imports the other
//   server.ts, cli.ts, cli/  the composition root, the entry point and its commands (cli/:
//                            remote commands that talk to a running server, ship, smoke record,
//                            import sklearn)
//   cluster                  serve --workers N: the primary process and a worker's link to it;
//                            cli.ts alone starts either
// Beside them, sklearn/ (scikit-learn estimators as ONNX models, for `modelgate import sklearn`)
// takes the ONNX writer and the runtime, and only cli/ imports it: the server never unpickles.
const layer = (folder) => `^src/${folder}/`

const PROTOCOLS = ['http', 'grpc']
const TOP = [...PROTOCOLS, 'cluster']
const ABOVE_LIFECYCLE = ['dataplane', 'v2', ...TOP]
const ABOVE_REPOSITORY = ['lifecycle', ...ABOVE_LIFECYCLE]
const ABOVE_RUNTIME = ['repository', ...ABOVE_REPOSITORY]
const ABOVE_BOTTOM = ['runtime', ...ABOVE_RUNTIME]

/** `from` must not import any of `above`: an import up the layers. */
const noUpwardImport = (from, above) => ({
  name: `${from}-imports-only-below`,
  comment: `src/${from} sits below ${above.map((a) => `src/${a}`).join(', ')} and must not import them`,
  severity: 'error',
  from: { path: layer(from) },
  to: { path: above.map(layer) },
})

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle: the modules cannot be read, tested or moved one at a time',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    noUpwardImport('onnx', ABOVE_BOTTOM),
    noUpwardImport('metrics', ABOVE_BOTTOM),
    noUpwardImport('events', ABOVE_BOTTOM),
    noUpwardImport('runtime', ABOVE_RUNTIME),
    noUpwardImport('repository', ABOVE_REPOSITORY),
    noUpwardImport('lifecycle', ABOVE_LIFECYCLE),
    noUpwardImport('dataplane', TOP),
    noUpwardImport('v2', TOP),
    {
      name: 'protocols-apart',
      comment:
        'src/http and src/grpc are two protocols over the same core: what they share lives below them',
      severity: 'error',
      from: { path: '^src/(http|grpc)/' },
      to: { path: '^src/(http|grpc)/', pathNot: '^src/$1/' },
    },
    {
      name: 'not-to-entry-points',
      comment:
        'server.ts wires the pieces together, cli.ts starts it and src/cli/ holds its other commands: nothing below imports them',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli([.]ts$|/)' },
      to: { path: '^src/((server|cli)[.]ts$|cli/)' },
    },
    {
      name: 'cluster-only-from-cli',
      comment:
        'src/cluster is how cli.ts runs serve --workers N; server.ts is handed what it needs (a /metrics source), http/ and grpc/ know nothing of it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli[.]ts$|cluster/)' },
      to: { path: '^src/cluster/' },
    },
    {
      name: 'sklearn-imports-only-onnx-and-runtime',
      comment:
        'src/sklearn builds ONNX models from scikit-learn dumps and runs them: the ONNX writer and the runtime are all it needs',
      severity: 'error',
      from: { path: '^src/sklearn/' },
      to: { path: '^src/', pathNot: '^src/(sklearn|onnx|runtime)/' },
    },
    {
      name: 'sklearn-only-from-cli',
      comment:
        'Importing a pickle runs Python code: only the import command (src/cli/) uses src/sklearn, never the server',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|sklearn)/' },
      to: { path: '^src/sklearn/' },
    },
    {
      name: 'hono-only-in-http',
      comment: 'The core never imports hono: http/ parses, calls the core and maps errors',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/http/', '^src/server[.]ts$'] },
      to: { path: '^node_modules/(hono|@hono/)' },
    },
    {
      name: 'grpc-js-only-in-grpc',
      comment: 'The core never imports @grpc/grpc-js: grpc/ parses, calls the core and maps errors',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/grpc/' },
      to: { path: '^node_modules/@grpc/' },
    },
    {
      name: 'src-not-to-tests-or-tools',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(tests|bench|scripts)/' },
    },
    {
      name: 'src-not-to-dev-dependencies',
      comment: 'The package ships without its devDependencies',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unlisted-packages',
      comment: 'A package imported but not in package.json works only by accident of the install',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-unresolvable',
      comment:
        'dist/ is the build output some tests and scripts run: it exists only after npm run build',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, pathNot: '(^|/)dist/' },
    },
  ],
  options: {
    // typescript 7 has no JavaScript compiler API for the default 'tsc' parser; swc reads the TS.
    parser: 'swc',
    doNotFollow: { path: ['node_modules'] },
    // The swc parser dependency-cruiser uses reads TypeScript without JSX: the dashboard's
    // components (src/http/ui/*.tsx, which import types only) are left out; their routes are in.
    exclude: { path: ['^dist/', '^tests/fixtures/', '^bench/results/', '[.]tsx$'] },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
}
