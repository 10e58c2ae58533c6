// The tables of createRuntime's and load()'s options and their checkers: unknown names and wrong shapes fail first.
import { CapsuleError } from '../errors.js'
import { checkOptions, describeValue, is, optionProblem, type OptionCheck } from '../options.js'
import type { LoadOptions, RuntimeOptions } from './runtime.js'

const isolation: OptionCheck = (value, path) =>
  value === 'worker' || value === 'inline' ? undefined : `${path} must be "worker" or "inline", not ${JSON.stringify(value) ?? describeValue(value)}`

const wasm: OptionCheck = (value, path) =>
  typeof value === 'string' || value instanceof URL || value instanceof Uint8Array || value instanceof ArrayBuffer
    ? undefined
    : `${path} must be a file path, a URL or the module's bytes, not ${describeValue(value)}`

const manifest: OptionCheck = (value, path) =>
  typeof value === 'string' || (typeof value === 'object' && value !== null && !Array.isArray(value))
    ? undefined
    : `${path} must be a manifest object or the path of a capsule.json, not ${describeValue(value)}`

const id: OptionCheck = (value, path) => (typeof value === 'string' && value !== '' ? undefined : `${path} must be a non-empty string`)

const config: OptionCheck = (value, path) =>
  is.object(value, path) === undefined && Object.values(value as object).every((v) => typeof v === 'string')
    ? undefined
    : `${path} must be an object of string values, such as { "region": "eu" }`

/** Every option of createRuntime. `fetch` is required and checked first; ModuleCache checks `moduleCacheSize`. */
const RUNTIME_OPTIONS: Readonly<Record<keyof RuntimeOptions, OptionCheck>> = {
  fetch: () => undefined,
  isolation,
  limits: is.object,
  moduleCacheSize: () => undefined,
}

/** Every option of runtime.load(). */
const LOAD_OPTIONS: Readonly<Record<keyof LoadOptions, OptionCheck>> = {
  wasm,
  manifest,
  id,
  config,
  isolation,
  limits: is.object,
}

/** Throws a TypeError (`createRuntime: unknown option "limit"; did you mean "limits"?`) for the first problem. */
export function checkRuntimeOptions(options: unknown): void {
  const fetch = (options as { fetch?: { request?: unknown } } | null | undefined)?.fetch
  if (typeof fetch?.request !== 'function') throw new TypeError('createRuntime: "fetch" must be a safe fetch from createSafeFetch(...)')
  checkOptions('createRuntime', options, RUNTIME_OPTIONS)
}

/** Throws a CapsuleError load_failed (`load: unknown option "wasmPath"; did you mean "wasm"?`) for the first problem. */
export function checkLoadOptions(options: unknown): void {
  const problem = options === undefined ? 'options must be an object, such as { wasm: "capsule.wasm" }' : optionProblem(options, LOAD_OPTIONS)
  if (problem !== undefined) throw new CapsuleError('load_failed', `load: ${problem}`)
}
