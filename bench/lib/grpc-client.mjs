// A Node client of inference.GRPCInferenceService, built from the .proto the package ships
// (dist/grpc/proto), as a user builds one; for the load worker and the scenarios' checks.
import { credentials, loadPackageDefinition } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { fileURLToPath } from 'node:url'

const PROTO = fileURLToPath(new URL('../../dist/grpc/proto/grpc_predict_v2.proto', import.meta.url))

const Service = loadPackageDefinition(
  loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, arrays: true }),
).inference.GRPCInferenceService

/**
 * One channel, one HTTP/2 connection: grpc-js shares a connection among clients of the same target
 * and options (its global subchannel pool) unless each client keeps a pool of its own.
 */
export function grpcChannel(target) {
  return new Service(target, credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  })
}

/** Resolves once the channel is connected; rejects when it cannot connect by `deadline`. */
export function untilConnected(client, deadline) {
  return new Promise((resolve, reject) =>
    client.waitForReady(deadline, (e) => (e ? reject(e) : resolve())),
  )
}

/** ModelInfer as a promise: the answer, or the ServiceError (`code`, `details`). */
export function modelInfer(client, request, options = {}) {
  return new Promise((resolve, reject) =>
    client.ModelInfer(request, options, (e, r) => (e ? reject(e) : resolve(r))),
  )
}
