import { join } from 'node:path'
import {
  type CallOptions,
  type Client,
  credentials,
  type GrpcObject,
  loadPackageDefinition,
  Metadata,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'

/** A Node client of inference.GRPCInferenceService, built from the vendored .proto, as a user would. */

export const PROTO = join(
  import.meta.dirname,
  '..',
  '..',
  'src',
  'grpc',
  'proto',
  'grpc_predict_v2.proto',
)

const definition = loadSync(PROTO, {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
})
const Service = (loadPackageDefinition(definition).inference as GrpcObject)
  .GRPCInferenceService as ServiceClientConstructor

export interface GrpcCallOptions {
  readonly metadata?: Readonly<Record<string, string>>
  readonly deadline?: Date
  /** Called with the call once it is sent, to cancel it. */
  readonly onCall?: (call: { cancel(): void }) => void
}

export interface InferenceClient {
  call(method: string, request: object, options?: GrpcCallOptions): Promise<any>
  close(): void
}

export function inferenceClient(
  port: number,
  options: Record<string, number> = {},
): InferenceClient {
  const client: Client = new Service(`127.0.0.1:${port}`, credentials.createInsecure(), options)
  return {
    call(method, request, o = {}) {
      const metadata = new Metadata()
      for (const [k, v] of Object.entries(o.metadata ?? {})) metadata.set(k, v)
      const callOptions: CallOptions = o.deadline ? { deadline: o.deadline } : {}
      return new Promise((resolve, reject) => {
        const fn = (client as any)[method].bind(client)
        const call = fn(request, metadata, callOptions, (e: ServiceError | null, r: unknown) =>
          e ? reject(e) : resolve(r),
        )
        o.onCall?.(call)
      })
    },
    close: () => client.close(),
  }
}

/** The error a call failed with, for assertions on its code and details. */
export async function grpcFailure(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p
  } catch (e) {
    return e as ServiceError
  }
  throw new Error('the call succeeded; a failure was expected')
}
