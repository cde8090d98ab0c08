import { type JsonResponse, jsonResponse } from './api-client.js'
import type { TestServer } from './test-server.js'

/**
 * A test server's Hono app asked without a socket, for route and error answers a socket adds
 * nothing to. Not for predictions on the simple API (the listener serves those on its fast path,
 * app.request() reaches the Hono routes), nor for what the listener owns: body limits and
 * timeouts, connections, draining, admin answers that depend on the client's address.
 */
export function inProcess(
  t: TestServer,
): (path: string, init?: RequestInit) => Promise<JsonResponse> {
  return async function requestInProcess(path, init) {
    return jsonResponse(await t.server.app.request(path, init))
  }
}
