import type { Context, Hono } from 'hono'
import { z } from 'zod'
import { InvalidRequestError } from '../../errors.js'
import { KEEP_PER_MODEL } from '../../lifecycle/state/history.js'
import type { Lifecycle } from '../../lifecycle/lifecycle.js'
import type { ModelRegistry } from '../../lifecycle/versions/model-registry.js'
import { adminAuth } from '../admin-auth.js'
import { readJsonAs, readOptionalJsonAs } from '../json-body.js'
import { pathParam, route } from '../method-routes.js'

/** Admin bodies are a few fields: anything bigger is not one. */
const ADMIN_BODY_LIMIT = 64 * 1024

const version = z.number().int().positive()
export const rollbackBodySchema = z
  .object({ version: version.optional(), reason: z.string().max(500).optional() })
  .strict()
export const abortBodySchema = z.object({ reason: z.string().max(500).optional() }).strict()
export const promoteBodySchema = z
  .object({ version, force: z.boolean().optional(), skipProbation: z.boolean().optional() })
  .strict()

export interface AdminRoutesOptions {
  readonly lifecycle: Lifecycle
  readonly registry: ModelRegistry
  readonly adminToken: string | undefined
}

/** Rollback, promote and history: the admin API (a token, or loopback clients when none is set). */
export function registerAdminRoutes(
  app: Hono,
  { lifecycle, registry, adminToken }: AdminRoutesOptions,
): void {
  const auth = adminAuth(adminToken)
  for (const path of [
    '/rollback',
    '/models/:name/rollback',
    '/models/:name/promote',
    '/models/:name/rollout/abort',
    '/models/:name/history',
  ])
    app.use(path, auth)

  const rollback = async (c: Context, name: string) => {
    const body = await readOptionalJsonAs(c, rollbackBodySchema, ADMIN_BODY_LIMIT)
    return c.json(await lifecycle.rollback(name, body))
  }
  route(app, '/rollback', { POST: (c) => rollback(c, registry.defaultModel()) })
  route(app, '/models/:name/rollback', { POST: (c) => rollback(c, pathParam(c, 'name')) })
  route(app, '/models/:name/promote', {
    POST: async (c) =>
      c.json(
        await lifecycle.promote(
          pathParam(c, 'name'),
          await readJsonAs(c, promoteBodySchema, ADMIN_BODY_LIMIT),
        ),
      ),
  })
  route(app, '/models/:name/rollout/abort', {
    POST: async (c) =>
      c.json(
        await lifecycle.abortRollout(
          pathParam(c, 'name'),
          (await readOptionalJsonAs(c, abortBodySchema, ADMIN_BODY_LIMIT)) ?? {},
        ),
      ),
  })
  route(app, '/models/:name/history', {
    GET: (c) => {
      const raw = c.req.query('limit') ?? '100'
      const limit = Number(raw)
      if (!Number.isInteger(limit) || limit < 1 || limit > KEEP_PER_MODEL) {
        throw new InvalidRequestError(
          `limit must be an integer in [1, ${KEEP_PER_MODEL}], got '${raw}' (history.jsonl keeps every entry)`,
        )
      }
      const name = pathParam(c, 'name')
      return c.json({ model: name, entries: lifecycle.historyOf(name, limit) })
    },
  })
}
