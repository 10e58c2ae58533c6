// The tables of createRuntime's and load()'s options and their checkers: unknown names and wrong shapes fail first.
import { CapsuleError } from '../errors.js'
import { checkOptions, closestName, describeValue, is, optionProblem, type OptionCheck } from '../options.js'
import { LOG_LEVELS } from './logs.js'
import type { LoadOptions, RuntimeOptions } from './runtime.js'

/** The isolation modes (RuntimeOptions.isolation, LoadOptions.isolation). */
const ISOLATIONS = ['worker', 'inline', 'pool'] as const

/** One of ISOLATIONS; a near miss (`"Worker"`, `"pol"`) gets a suggestion. */
const isolation: OptionCheck = (value, path) => {
  if ((ISOLATIONS as readonly unknown[]).includes(value)) return undefined
  const near = typeof value === 'string' ? closestName(value.toLowerCase(), ISOLATIONS) : undefined
  const hint = near === undefined ? '' : `; did you mean "${near}"?`
  return `${path} must be "worker", "inline" or "pool", not ${JSON.stringify(value) ?? describeValue(value)}${hint}`
}

/** How many worker threads the pool runs: a whole number from 1 to 1024. */
const poolSize: OptionCheck = (value, path) =>
  Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= 1024
    ? undefined
    : `${path} must be a whole number of worker threads from 1 to 1024, not ${JSON.stringify(value) ?? describeValue(value)}`

const POOL_OPTIONS = { size: poolSize } as const

/** A WasmSource: a path, a URL, or the module's bytes (shape only; reading it is the loader's job). */
const wasm: OptionCheck = (value, path) =>
  typeof value === 'string' || value instanceof URL || value instanceof Uint8Array || value instanceof ArrayBuffer
    ? undefined
    : `${path} must be a file path, a URL or the module's bytes, not ${describeValue(value)}`

/** A manifest value or the path of its JSON file (its content is validated when it is read). */
const manifest: OptionCheck = (value, path) =>
  typeof value === 'string' || (typeof value === 'object' && value !== null && !Array.isArray(value))
    ? undefined
    : `${path} must be a manifest object (a capsule.json or an Extism manifest) or the path of one, not ${describeValue(value)}`

/** A capsule id: a non-empty string (uniqueness is checked when the capsule registers). */
const id: OptionCheck = (value, path) => (typeof value === 'string' && value !== '' ? undefined : `${path} must be a non-empty string`)

/** Extism config: an object whose values are all strings. */
const config: OptionCheck = (value, path) =>
  is.object(value, path) === undefined && Object.values(value as object).every((v) => typeof v === 'string')
    ? undefined
    : `${path} must be an object of string values, such as { "region": "eu" }`

/** One of LOG_LEVELS; a near miss or a longer word that starts with a level (`"warning"`) gets a suggestion. */
const logLevel: OptionCheck = (value, path) => {
  if ((LOG_LEVELS as readonly unknown[]).includes(value)) return undefined
  const lower = typeof value === 'string' ? value.toLowerCase() : undefined
  // "warning" is Node's and syslog's word for "warn": a level that starts it is suggested too.
  const near = lower === undefined ? undefined : (closestName(lower, LOG_LEVELS) ?? LOG_LEVELS.find((level) => lower.startsWith(level)))
  const hint = near === undefined ? '' : `; did you mean "${near}"?`
  return `${path} must be one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}, not ${JSON.stringify(value) ?? describeValue(value)}${hint}`
}

/** A WASI string: a C string in the module's memory, so a NUL would cut it short. */
const hasNul = (text: string) => text.includes('\0')

const wasiArgs: OptionCheck = (value, path) => {
  if (!Array.isArray(value)) return `${path} must be an array of strings, such as ["--verbose"], not ${describeValue(value)}`
  const bad = value.findIndex((arg) => typeof arg !== 'string' || hasNul(arg))
  if (bad === -1) return undefined
  return typeof value[bad] === 'string' ? `${path}[${bad}] contains a NUL character, which WASI cannot pass` : `${path}[${bad}] must be a string, not ${describeValue(value[bad])}`
}

const wasiEnv: OptionCheck = (value, path) => {
  const problem = is.object(value, path)
  if (problem !== undefined) return `${path} must be an object of string values, such as { "TZ": "UTC" }, not ${describeValue(value)}`
  for (const [name, text] of Object.entries(value as object)) {
    if (name === '' || name.includes('=') || hasNul(name)) return `${path}: ${JSON.stringify(name)} is not a variable name (it must be non-empty, without "=" or NUL)`
    if (typeof text !== 'string') return `${path}.${name} must be a string, not ${describeValue(text)}`
    if (hasNul(text)) return `${path}.${name} contains a NUL character, which WASI cannot pass`
  }
  return undefined
}

/** What a WASI module is granted: arguments and environment variables only (never files or sockets). */
const WASI_OPTIONS = { args: wasiArgs, env: wasiEnv } as const

/** Every option of createRuntime. `fetch` is required and checked first; ModuleCache checks `moduleCacheSize`. */
const RUNTIME_OPTIONS: Readonly<Record<keyof RuntimeOptions, OptionCheck>> = {
  fetch: () => undefined,
  isolation,
  pool: is.nested(POOL_OPTIONS),
  limits: is.object,
  moduleCacheSize: () => undefined,
  onLog: is.function,
  logLevel,
}

/** Every option of runtime.load(). */
const LOAD_OPTIONS: Readonly<Record<keyof LoadOptions, OptionCheck>> = {
  wasm,
  manifest,
  id,
  config,
  isolation,
  limits: is.object,
  onLog: is.function,
  logLevel,
  wasi: is.nested(WASI_OPTIONS),
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
