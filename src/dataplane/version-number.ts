import { VersionNotFoundError } from '../errors.js'

/** A version number a request names: by the simple API, the fast path, the V2 routes and gRPC alike. */
export function parseVersion(model: string, raw: string): number {
  const version = /^[1-9][0-9]{0,14}$/.test(raw) ? Number(raw) : NaN
  if (Number.isNaN(version))
    throw new VersionNotFoundError(
      `model '${model}' has no version '${raw}' (versions are positive integers)`,
    )
  return version
}
