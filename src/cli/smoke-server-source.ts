import { type ModelgateClient, ServerRefusal } from './client.js'
import { refused } from './exit.js'
import { readModel } from './ship-wait.js'
import type { RecordedOutputs, RecordSource } from './smoke-source.js'

/**
 * Today's outputs from a running server: each case is a prediction sent to the version itself
 * (`/models/{name}/versions/{v}/predict`), so a canary's share of requests cannot answer it.
 */
export async function serverSource(
  client: ModelgateClient,
  model: string,
  version: number | undefined,
): Promise<RecordSource> {
  const url = client.url
  const detail = await readModel(client, model)
  if (!detail) throw refused(`the server at ${url} has no model '${model}'`)
  const chosen = version ?? detail.active
  if (chosen === null)
    throw refused(`'${model}' has no active version on ${url}; name one with --version`)
  const path = `/models/${encodeURIComponent(model)}/versions/${chosen}/predict`
  return {
    version: chosen,
    origin: `${url}, ${version === undefined ? 'the active version' : '--version'}`,
    async run(inputs: unknown): Promise<RecordedOutputs> {
      try {
        const answer = await client.post(path, { inputs, output_format: 'typed' })
        return (answer as { outputs: RecordedOutputs }).outputs
      } catch (e) {
        if (e instanceof ServerRefusal) throw refused(`${e.code}: ${e.message}`)
        throw e
      }
    },
    close: async () => {},
  }
}
