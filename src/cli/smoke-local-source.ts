import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { persistedStateSchema, STATE_FILE } from '../lifecycle/state/state-store.js'
import { STATE_DIR_NAME } from '../repository/layout.js'
import type { ModelConfig } from '../repository/model-config.js'
import { readModelFile, VersionReadError } from '../repository/read-version.js'
import { scanModel, type VersionSource } from '../repository/scanner.js'
import { ServerError } from '../errors.js'
import { decodeFeeds } from '../runtime/feeds.js'
import { ModelLoadError, ModelSession } from '../runtime/session.js'
import { encodeTensor, type TypedTensorJson } from '../runtime/tensor-encode.js'
import { refused } from './exit.js'
import type { RecordedOutputs, RecordSource } from './smoke-source.js'

/**
 * Today's outputs without a server: the version's file run here with onnxruntime-node, with the
 * model's session options. Which version: `--version`, else the one state.json records as
 * active (what a server over this directory serves), else the highest version on disk.
 */
export async function localSource(o: {
  readonly modelsDir: string
  readonly model: string
  readonly modelDir: string
  readonly config: ModelConfig
  readonly version: number | undefined
  readonly stateDir: string | undefined
}): Promise<RecordSource> {
  const { versions } = await scanModel(o.modelsDir, o.model, o.modelDir, [])
  const recorded =
    o.version === undefined
      ? await activeInState(o.stateDir ?? join(o.modelsDir, STATE_DIR_NAME), o.model)
      : undefined
  const wanted = o.version ?? recorded ?? versions.at(-1)?.version
  const source = versions.find((v) => v.version === wanted)
  if (!source)
    throw refused(
      wanted === undefined
        ? `'${o.model}' has no version on disk in ${o.modelsDir}`
        : `version ${wanted} of '${o.model}' is not on disk`,
    )
  const why =
    o.version !== undefined
      ? '--version'
      : recorded !== undefined
        ? 'active in state.json'
        : 'the highest on disk: no state.json records an active version'
  const session = await open(source)
  const outputs = session.signature.outputs.map((s) => s.name)
  return {
    version: source.version,
    origin: `${source.file} (${why})`,
    async run(inputs: unknown): Promise<RecordedOutputs> {
      let fetched
      try {
        fetched = await session.run(decodeFeeds(inputs, session.signature), outputs)
      } catch (e) {
        throw refused(e instanceof ServerError ? `${e.code}: ${e.message}` : (e as Error).message)
      }
      return Object.fromEntries(
        Object.entries(fetched).map(([name, t]) => [
          name,
          encodeTensor(t, 'typed') as TypedTensorJson,
        ]),
      )
    },
    close: () => session.release(),
  }

  async function open(source: VersionSource): Promise<ModelSession> {
    try {
      const { bytes } = await readModelFile(undefined, source.file)
      return await ModelSession.create(bytes, o.config.session)
    } catch (e) {
      if (e instanceof ModelLoadError || e instanceof VersionReadError)
        throw refused(`${source.file}: ${e.message}`)
      throw e
    }
  }
}

/** The active version a server over this directory recorded; undefined when none did. */
async function activeInState(stateDir: string, model: string): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(join(stateDir, STATE_FILE), 'utf8')
  } catch {
    return undefined
  }
  let parsed
  try {
    parsed = persistedStateSchema.safeParse(JSON.parse(text))
  } catch {
    parsed = undefined
  }
  if (!parsed?.success)
    throw refused(
      `${join(stateDir, STATE_FILE)} is not a modelgate state file; name the version with --version`,
    )
  return parsed.data.models[model]?.active?.version
}
