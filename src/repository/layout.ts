import { sep } from 'node:path'

/**
 * The rules of the models directory (Triton / TF Serving convention): pure functions, no I/O.
 *
 *   models/<model>/<version>/model.onnx     a version folder
 *   models/<model>/<version>.onnx           a flat version file
 *   models/<model>/model.json, smoke.json   per-model config and smoke tests
 *   models/<model>/reference.json           the inputs drift is measured against
 */

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
/** Positive integers without leading zeros, so `3` and `03` cannot both claim version 3. */
const VERSION = /^[1-9][0-9]{0,14}$/
const FLAT_VERSION = /^([1-9][0-9]{0,14})\.onnx$/

export const MODEL_FILE = 'model.onnx'
export const CHECKSUM_SIDECAR = 'model.onnx.sha256'
export const MODEL_CONFIG_FILE = 'model.json'
export const SMOKE_FILE = 'smoke.json'
export const REFERENCE_FILE = 'reference.json'
export const STATE_DIR_NAME = '.modelgate'

export function isModelName(name: string): boolean {
  return MODEL_NAME.test(name) && name !== '.' && name !== '..'
}

/** Version number of a version folder name, or undefined if the name is not one. */
export function versionFolder(name: string): number | undefined {
  return VERSION.test(name) ? Number(name) : undefined
}

/** Version number of a flat `<version>.onnx` file name, or undefined. */
export function versionFile(name: string): number | undefined {
  const m = FLAT_VERSION.exec(name)
  return m ? Number(m[1]) : undefined
}

/**
 * Names nobody means as a model or version: hidden files, editor and download temp files.
 * They are skipped without a complaint above debug level.
 */
export function isJunk(name: string): boolean {
  return (
    name.startsWith('.') ||
    name.startsWith('~') ||
    name.startsWith('#') ||
    name.endsWith('~') ||
    /\.(tmp|temp|partial|part|crdownload|swp|swx|bak|orig)$/i.test(name)
  )
}

/** True when `child` is `parent` or inside it (both absolute, normalized, symlinks resolved). */
export function isInside(parent: string, child: string): boolean {
  if (child === parent) return true
  const prefix = parent.endsWith(sep) ? parent : `${parent}${sep}`
  return child.startsWith(prefix)
}
