import { refused } from './ship-exit.js'
import { errorText, requestJson } from './ship-http.js'
import { readModel } from './ship-wait.js'
import type { RecordedOutputs, RecordSource } from './smoke-source.js'

/**
 * Today's outputs from a running server: each case is a prediction sent to the version itself
 * (`/models/{name}/versions/{v}/predict`), so a canary's share of requests cannot answer it.
 */
export async function serverSource(
  url: string,
  model: string,
  version: number | undefined,
): Promise<RecordSource> {
  const detail = await readModel(url, model)
  if (!detail) throw refused(`the server at ${url} has no model '${model}'`)
  const chosen = version ?? detail.active
  if (chosen === null)
    throw refused(`'${model}' has no active version on ${url}; name one with --version`)
  const path = `${url}/models/${encodeURIComponent(model)}/versions/${chosen}/predict`
  return {
    version: chosen,
    origin: `${url}, ${version === undefined ? 'the active version' : '--version'}`,
    async run(inputs: unknown): Promise<RecordedOutputs> {
      const answer = await requestJson(path, { inputs, output_format: 'typed' })
      if (answer.status !== 200) throw refused(errorText(answer))
      return (answer.body as { outputs: RecordedOutputs }).outputs
    },
    close: async () => {},
  }
}
