import { join } from 'node:path'
import {
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type GrpcObject,
  type handleUnaryCall,
  type Metadata,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { bearerRefusal, isLoopbackAddress, loopbackOnlyRefusal } from '../admin-token.js'
import { ModelNotReadyError, RequestCancelledError, type ServerError } from '../errors.js'
import type { Predictor } from '../dataplane/predictor.js'
import { clientPredictionId } from '../dataplane/prediction-id.js'
import { parseVersion } from '../dataplane/version-number.js'
import { v2ModelMetadata, v2ModelReady, v2RepositoryIndex } from '../dataplane/v2-views.js'
import type { Lifecycle, Readiness } from '../lifecycle/lifecycle.js'
import type { ModelRegistry } from '../lifecycle/versions/model-registry.js'
import type { Logger } from '../log.js'
import { v2Feeds, v2OutputNames } from '../v2/inference.js'
import { GRPC_OUTPUT_PLAN, grpcInferRequest, grpcInferResponse } from './infer-codec.js'
import type {
  ModelInferRequest,
  ModelRequest,
  RepositoryIndexRequest,
  RepositoryModelRequest,
} from './messages.js'
import { grpcStatusOf } from './status-codes.js'

/** The protocol's file, vendored with its licence; `npm run build` copies it beside the code. */
const PROTO = join(import.meta.dirname, 'proto', 'grpc_predict_v2.proto')

/** Extensions this listener implements, as ServerMetadata lists them. */
const GRPC_EXTENSIONS = ['model_repository'] as const

export interface GrpcServerOptions {
  readonly host: string
  readonly port: number
  /** The largest message received; a larger one is refused with RESOURCE_EXHAUSTED before it is read. */
  readonly maxMessageBytes: number
  readonly predictor: Predictor
  readonly registry: ModelRegistry
  readonly lifecycle: Lifecycle
  readonly readiness: () => Readiness
  readonly adminToken: string | undefined
  readonly serverVersion: string
  readonly logger: Logger
}

export interface GrpcListener {
  readonly port: number
  /** Stops taking calls, lets those in flight finish for at most `timeoutMs`, then ends the rest. */
  close(timeoutMs: number): Promise<void>
}

function inferenceService(): ServiceDefinition {
  const definition = loadSync(PROTO, {
    keepCase: true,
    longs: String, // int64 and uint64 arrive as decimal strings: exact beyond 2^53
    enums: String,
    defaults: true,
    arrays: true,
    oneofs: true,
  })
  const inference = loadPackageDefinition(definition).inference as GrpcObject
  return (inference.GRPCInferenceService as unknown as { service: ServiceDefinition }).service
}

/**
 * inference.GRPCInferenceService, the Open Inference Protocol over gRPC, beside the HTTP listener:
 * the same data plane (`Predictor.infer`: leases, batching, errors), the same V2 views and codecs.
 */
export async function startGrpcServer(o: GrpcServerOptions): Promise<GrpcListener> {
  const server = new Server({
    'grpc.max_receive_message_length': o.maxMessageBytes,
    // Answers are bounded by --max-output-size, checked before they are encoded.
    'grpc.max_send_message_length': -1,
  })
  server.addService(inferenceService(), handlers(o))
  const host = o.host.includes(':') ? `[${o.host}]` : o.host
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${o.port}`, ServerCredentials.createInsecure(), (e, bound) =>
      e ? reject(e) : resolve(bound),
    ),
  )
  return {
    port,
    async close(timeoutMs) {
      let timer: NodeJS.Timeout | undefined
      const drained = new Promise<boolean>((resolve) => server.tryShutdown(() => resolve(true)))
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs)
      })
      if (!(await Promise.race([drained, late]))) {
        o.logger.warn('grpc_shutdown_timeout', { timeoutMs })
        server.forceShutdown()
      }
      clearTimeout(timer)
    },
  }
}

/** A unary handler: its answer, or the status of the ServerError it threw. */
function unary<Req, Res>(
  method: string,
  logger: Logger,
  answer: (request: Req, call: Parameters<handleUnaryCall<Req, Res>>[0]) => Res | Promise<Res>,
): handleUnaryCall<Req, Res> {
  return function handleUnary(call, callback) {
    Promise.resolve()
      .then(() => answer(call.request, call))
      .then(
        (response) => callback(null, response),
        (e: unknown) => callback(grpcStatusOf(e, logger, method)),
      )
  }
}

function handlers(o: GrpcServerOptions): UntypedServiceImplementation {
  const { registry, lifecycle, logger } = o
  const admin = adminCheck(o.adminToken)
  const version = (model: string, raw: string) =>
    raw === '' ? undefined : parseVersion(model, raw)
  return {
    ServerLive: unary('ServerLive', logger, () => ({ live: true })),
    ServerReady: unary('ServerReady', logger, () => ({ ready: o.readiness().ready })),
    ModelReady: unary('ModelReady', logger, (r: ModelRequest) => {
      const model = registry.require(r.name)
      return { ready: v2ModelReady(model, version(model.name, r.version)).ready }
    }),
    ServerMetadata: unary('ServerMetadata', logger, () => ({
      name: 'modelgate',
      version: o.serverVersion,
      extensions: GRPC_EXTENSIONS,
    })),
    ModelMetadata: unary('ModelMetadata', logger, (r: ModelRequest) => {
      const model = registry.require(r.name)
      return v2ModelMetadata(model, version(model.name, r.version))
    }),
    ModelInfer: unary('ModelInfer', logger, async (r: ModelInferRequest, call) => {
      // A call cancelled or past its deadline before it was read is not run: grpc-js has answered it.
      if (call.cancelled) throw new RequestCancelledError()
      const { request, binary, raw } = grpcInferRequest(r)
      const result = await o.predictor.infer(
        {
          model: r.model_name,
          version: version(r.model_name, r.model_version),
          clientGone: () => call.cancelled,
          id: clientPredictionId(r.id, '"id"'),
          header: (name) => metadataText(call.metadata, name),
        },
        (signature) => v2Feeds(request, binary, signature),
        (v) => v2OutputNames(request, v.signature, v.outputNames),
        GRPC_OUTPUT_PLAN,
      )
      return grpcInferResponse(
        raw,
        result.version.model,
        result.version.version,
        result.fetched,
        result.outputNames,
        result.id,
      )
    }),
    // Model repository extension: it changes what serves, so it is admin, as over REST.
    RepositoryIndex: unary('RepositoryIndex', logger, (r: RepositoryIndexRequest, call) => {
      admin(call.metadata, call.getPeer())
      return { models: v2RepositoryIndex(registry, { ready: r.ready }) }
    }),
    RepositoryModelLoad: unary(
      'RepositoryModelLoad',
      logger,
      async (r: RepositoryModelRequest, call) => {
        admin(call.metadata, call.getPeer())
        if (!(await lifecycle.load(r.model_name))) throw new ModelNotReadyError(r.model_name)
        return {}
      },
    ),
    RepositoryModelUnload: unary(
      'RepositoryModelUnload',
      logger,
      async (r: RepositoryModelRequest, call) => {
        admin(call.metadata, call.getPeer())
        await lifecycle.unload(r.model_name)
        return {}
      },
    ),
  }
}

/** A metadata value as text (what a canary's sticky header reads), or undefined. */
function metadataText(metadata: Metadata, name: string): string | undefined {
  const value = metadata.get(name.toLowerCase())[0]
  return typeof value === 'string' ? value : undefined
}

/**
 * The admin rule of the REST routes, over metadata: `authorization: Bearer <token>` when a token is
 * configured, else loopback peers only. Throws the refusal.
 */
function adminCheck(token: string | undefined): (metadata: Metadata, peer: string) => void {
  const bearer = token === undefined ? undefined : bearerRefusal(token)
  return function requireAdmin(metadata, peer) {
    const refused: ServerError | undefined = bearer
      ? bearer(metadataText(metadata, 'authorization'))
      : isLoopbackAddress(peerAddress(peer))
        ? undefined
        : loopbackOnlyRefusal()
    if (refused) throw refused
  }
}

/** grpc-js names a peer `<address>:<port>` (an IPv6 address unbracketed, or in brackets). */
function peerAddress(peer: string): string {
  const colon = peer.lastIndexOf(':')
  const address = colon === -1 ? peer : peer.slice(0, colon)
  return address.replace(/^\[(.*)\]$/, '$1')
}
