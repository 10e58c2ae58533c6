// createRuntime: loads capsules in the chosen isolation mode and wires each to its own HTTP service.
import { z } from 'zod'
import { CapsuleError } from '../errors.js'
import { TimerMs } from '../timers.js'
import { AuditLog } from '../audit.js'
import type { SafeFetch, SafeFetchSession } from '../safe-fetch.js'
import { Capsule, type CapsuleEngine } from './capsule.js'
import { CapsuleHttp } from './capsule-http.js'
import { createInlineEngine } from './inline-engine.js'
import { CapsulePool, defaultPoolSize } from './pool-engine.js'
import { DEFAULT_LOG_LEVEL, passes, type EngineLogs, type LogHandler, type LogLevel } from './logs.js'
import type { ExtismManifest } from './extism-manifest.js'
import { manifestFor, type Manifest } from './manifest.js'
import { ModuleCache, readWasm, type CompiledCapsule, type ModuleLease, type WasmSource } from './modules.js'
import { checkLoadOptions, checkRuntimeOptions } from './options.js'
import type { WasiGrants } from './wasi-grants.js'
import { createWorkerEngine } from './worker-engine.js'

export type Isolation = 'worker' | 'inline' | 'pool'

/** The worker threads of `isolation: 'pool'`. */
export interface PoolOptions {
  /** How many worker threads the pool runs its capsules on; default `os.availableParallelism()`. */
  size?: number
}

/** The limits of each call a capsule runs. */
export interface RuntimeLimits {
  /** Longest a single call may run; past it the capsule is stopped. */
  callTimeoutMs: number
  /** Largest linear memory a capsule may grow to (and, separately, Extism's kernel memory). */
  memoryBytes: number
  /** Largest output one call may return; a larger one fails with `output_too_large` and is never copied. */
  maxOutputBytes: number
}

export const DEFAULT_RUNTIME_LIMITS: Readonly<RuntimeLimits> = Object.freeze({
  callTimeoutMs: 30_000,
  memoryBytes: 256 * 1024 * 1024,
  maxOutputBytes: 16 * 1024 * 1024,
})

const RuntimeLimitsSchema = z.strictObject({
  callTimeoutMs: TimerMs,
  memoryBytes: z.int().min(64 * 1024),
  maxOutputBytes: z.int().positive(),
})

/** zod's report on one line: messages go to logs and terminals. */
const oneLine = (error: z.ZodError) => z.prettifyError(error).replace(/\n\s*/g, '; ')

/** createRuntime's options. An unknown name or a wrong shape is a TypeError, with a suggestion. */
export interface RuntimeOptions {
  /** The safe fetch every capsule's requests go through (`createSafeFetch(...)`). */
  fetch: SafeFetch
  /**
   * Default `worker`: each capsule on its own thread. `inline`: on the host's thread. `pool`: many
   * capsules on each of a fixed set of worker threads. `inline` and `pool` need JSPI (Node 25+).
   */
  isolation?: Isolation
  /** The pool of `isolation: 'pool'` (also for loads that ask for it); started with its first capsule. */
  pool?: PoolOptions
  /** Runtime-wide call limits (any subset; the rest keep DEFAULT_RUNTIME_LIMITS); a capsule can only lower them. */
  limits?: Partial<RuntimeLimits>
  /**
   * How many compiled modules no loaded capsule uses are kept, most recently released first, so
   * loading them again compiles nothing. Default 8; 0 keeps only the modules in use.
   */
  moduleCacheSize?: number
  /**
   * Receives every capsule's log lines: Extism's `log_*` at `logLevel` and above, and a WASI
   * module's stdout and stderr. Called synchronously as each line arrives; what it throws (or an
   * async handler rejects with) is swallowed and the line dropped, so it never fails a call.
   */
  onLog?: LogHandler
  /** The lowest Extism level passed to `onLog` (default `info`, as in Extism); stdout and stderr always pass. */
  logLevel?: LogLevel
}

/** runtime.load()'s options. A bad option fails the load with `load_failed`, naming it. */
export interface LoadOptions {
  /** A file path, a `file:`, `http:` or `https:` URL, or the module's bytes. Optional when the manifest names it. */
  wasm?: WasmSource
  /**
   * The capsule's manifest: a capsule.json or an Extism manifest, as a value or the path of a
   * JSON file (told apart by content: an Extism manifest's `wasm` is an array). Without one, a
   * capsule.json beside a module path is used when its "wasm" names that module or names none.
   * Its fields: docs/runtime.md, Manifests. A capsule with a
   * manifest reaches only what it declares (`capabilities.http`, `allowed_hosts`), under limits
   * that can only be lower.
   */
  manifest?: Manifest | ExtismManifest | string
  /**
   * Names the capsule in requests, decisions and errors. Must be unique. Default: `<manifest
   * name>-<n>`, or `capsule-<n>` without a manifest (n counts the loads in the process).
   */
  id?: string
  /** Extism config values the capsule can read. */
  config?: Record<string, string>
  /** Overrides the runtime's isolation for this capsule. */
  isolation?: Isolation
  /** Limits for this capsule; each can only be lower than the runtime's (a higher value is clamped). */
  limits?: Partial<RuntimeLimits>
  /** This capsule's log lines go here instead of the runtime's `onLog`. */
  onLog?: LogHandler
  /** Overrides the runtime's `logLevel` for this capsule. */
  logLevel?: LogLevel
  /**
   * What a WASI module is granted beyond the sandbox (arguments, environment variables); default
   * nothing. Per capsule only: a runtime-wide default would hand them to every capsule loaded later.
   */
  wasi?: WasiGrants
}

/** Loads capsules and runs their calls; owns their threads and their sessions in the safe fetch. */
export interface Runtime {
  /** Compiles (or reuses) the module, checks its imports and manifest, and starts the capsule; fails with `load_failed`. */
  load(options: LoadOptions): Promise<Capsule>
  /** Loaded capsules by id. */
  readonly capsules: ReadonlyMap<string, Capsule>
  /** How many modules were compiled (a second load of the same bytes compiles nothing). */
  readonly compilations: number
  /** How many compiled modules the cache holds now: those in use plus at most `moduleCacheSize` others. */
  readonly cachedModules: number
  /**
   * One event per request a capsule of this runtime makes, allowed or refused (from the safe
   * fetch's audit log). Its async iterators end when the runtime closes.
   */
  readonly audit: AuditLog
  /** Unloads every capsule and releases every connection. */
  close(): Promise<void>
}

/** A capsule's own limits: validated, and never above the runtime's. */
function capsuleLimits(runtime: RuntimeLimits, requested: Partial<RuntimeLimits> | undefined): RuntimeLimits {
  const parsed = RuntimeLimitsSchema.partial().safeParse(requested ?? {})
  if (!parsed.success) throw new CapsuleError('load_failed', `invalid capsule limits: ${oneLine(parsed.error)}`)
  const lower = (key: keyof RuntimeLimits) => Math.min(parsed.data[key] ?? runtime[key], runtime[key])
  return { callTimeoutMs: lower('callTimeoutMs'), memoryBytes: lower('memoryBytes'), maxOutputBytes: lower('maxOutputBytes') }
}

/** The runtime's limits lowered by the load's and then by the manifest's: the lowest wins. */
function loweredLimits(runtime: RuntimeLimits, load: Partial<RuntimeLimits> | undefined, asked: NonNullable<Manifest['limits']>): RuntimeLimits {
  return capsuleLimits(capsuleLimits(runtime, load), {
    ...(asked.callTimeoutMs ? { callTimeoutMs: asked.callTimeoutMs } : {}),
    ...(asked.memoryBytes ? { memoryBytes: asked.memoryBytes } : {}),
    ...(asked.maxOutputBytes ? { maxOutputBytes: asked.maxOutputBytes } : {}),
  })
}

/** A copy of the host's grants, so changing its object after the load changes nothing. */
function frozenGrants(grants: WasiGrants): WasiGrants {
  return Object.freeze({
    ...(grants.args ? { args: Object.freeze([...grants.args]) } : {}),
    ...(grants.env ? { env: Object.freeze({ ...grants.env }) } : {}),
  })
}

/**
 * The sink of one capsule's log lines: lines below `level` are dropped, and whatever the handler
 * throws or rejects with is swallowed (the line is lost; the capsule and the host go on).
 */
export function capsuleLogs(capsuleId: string, onLog: LogHandler | undefined, level: LogLevel): EngineLogs | undefined {
  if (onLog === undefined) return undefined
  return {
    level,
    write(lineLevel, message) {
      if (!passes(lineLevel, level)) return
      try {
        const result: unknown = onLog({ capsuleId, level: lineLevel, message })
        if (result instanceof Promise) result.catch(() => undefined)
      } catch {
        // A host's handler bug must not fail the capsule's call: documented in docs/runtime.md.
      }
    },
  }
}

/** Numbers default capsule ids across every runtime in the process, so two runtimes never collide. */
let capsuleCounter = 0

/** Everything one runtime holds. */
interface RuntimeState {
  readonly options: RuntimeOptions
  readonly isolation: Isolation
  readonly limits: RuntimeLimits
  readonly cache: ModuleCache
  readonly capsules: Map<string, Capsule>
  /** Ids of loaded capsules and of capsules being loaded. */
  readonly reserved: Set<string>
  /** Loads in progress, so close() can wait for them to see that the runtime closed. */
  readonly loading: Set<Promise<Capsule>>
  /** This runtime's view of the safe fetch's log: its own capsules' events, ended by close(). */
  readonly audit: AuditLog
  /** The pool's worker threads, started with the first pooled capsule. */
  pool: CapsulePool | undefined
  closed: boolean
}

function runtimeState(options: RuntimeOptions): RuntimeState {
  checkRuntimeOptions(options)
  const parsed = RuntimeLimitsSchema.safeParse({ ...DEFAULT_RUNTIME_LIMITS, ...options.limits })
  if (!parsed.success) throw new TypeError(`invalid runtime limits: ${oneLine(parsed.error)}`)
  return {
    options,
    isolation: options.isolation ?? 'worker',
    limits: parsed.data,
    cache: new ModuleCache(options.moduleCacheSize),
    capsules: new Map(),
    reserved: new Set(),
    loading: new Set(),
    audit: new AuditLog(),
    pool: undefined,
    closed: false,
  }
}

/** What every engine is given for one capsule. */
type EngineOptions = Parameters<typeof createWorkerEngine>[0]

/** Starts the capsule's engine in its isolation mode. */
function startEngine(state: RuntimeState, mode: Isolation, options: EngineOptions): Promise<CapsuleEngine> {
  if (mode === 'inline') return createInlineEngine(options)
  if (mode === 'worker') return createWorkerEngine(options)
  state.pool ??= new CapsulePool(state.options.pool?.size ?? defaultPoolSize())
  return state.pool.add(options)
}

/** The capsule's session in the safe fetch: under its manifest's capabilities and limits, if it has one. */
function registerSession(state: RuntimeState, id: string, manifest: Manifest | undefined): SafeFetchSession {
  const { callTimeoutMs: _c, memoryBytes: _m, maxOutputBytes: _o, ...fetchLimits } = manifest?.limits ?? {}
  try {
    const restriction = manifest ? { http: manifest.capabilities?.http ?? [], limits: fetchLimits, quotas: manifest.quotas, name: manifest.name } : undefined
    return state.options.fetch.registerCapsule(id, restriction)
  } catch (cause) {
    throw new CapsuleError('load_failed', `${manifest ? 'invalid manifest or id: ' : ''}${(cause as Error).message}`, { cause })
  }
}

/** The engine's options for one capsule, from the load's options and its manifest's. */
function engineOptionsFor(state: RuntimeState, load: LoadOptions, own: RuntimeLimits, compiled: CompiledCapsule, session: SafeFetchSession, config: Record<string, string> | undefined): EngineOptions {
  const { options } = state
  return {
    compiled,
    http: new CapsuleHttp(session, options.fetch.telemetry),
    // An Extism manifest's config is the capsule's default; the host's load config wins.
    config: { ...config, ...load.config },
    memoryBytes: own.memoryBytes,
    maxOutputBytes: own.maxOutputBytes,
    maxRequestBytes: session.limits.maxRequestBytes,
    loadTimeoutMs: own.callTimeoutMs,
    logs: capsuleLogs(session.capsuleId, load.onLog ?? options.onLog, load.logLevel ?? options.logLevel ?? DEFAULT_LOG_LEVEL),
    ...(load.wasi ? { wasi: frozenGrants(load.wasi) } : {}),
  }
}

/** Claims the capsule's id for the load, or refuses it when the runtime is closed or the id is taken. */
async function claimId(state: RuntimeState, load: LoadOptions) {
  if (state.closed) throw new CapsuleError('unloaded', 'the runtime is closed')
  checkLoadOptions(load)
  const found = await manifestFor(load.manifest, load.wasm)
  if (found.wasm === undefined) throw new CapsuleError('load_failed', 'give the module as "wasm", or a manifest that names it')
  const id = load.id ?? `${found.manifest?.name ?? 'capsule'}-${++capsuleCounter}`
  if (state.reserved.has(id)) throw new CapsuleError('load_failed', `a capsule with id "${id}" is already loaded; unload it or pick another id`)
  state.reserved.add(id)
  return { ...found, wasm: found.wasm as WasmSource, id }
}

async function loadCapsule(state: RuntimeState, load: LoadOptions): Promise<Capsule> {
  const { manifest, wasm, config, id } = await claimId(state, load)
  let session: SafeFetchSession | undefined
  let lease: ModuleLease | undefined
  try {
    const own = loweredLimits(state.limits, load.limits, manifest?.limits ?? {})
    lease = await state.cache.acquire(await readWasm(wasm), own.memoryBytes)
    session = registerSession(state, id, manifest)
    const options = engineOptionsFor(state, load, own, lease.compiled, session, config)
    const engine = await startEngine(state, load.isolation ?? state.isolation, options)
    if (state.closed) {
      // close() ran while this capsule was loading: nothing of it may survive.
      await engine.close()
      throw new CapsuleError('unloaded', 'the runtime was closed while the capsule was loading')
    }
    const { http } = options
    const held = { session, lease }
    const capsule = new Capsule(id, engine, lease.compiled.exports, own.callTimeoutMs, async () => {
      http.closeAll()
      try {
        await held.session.release()
      } finally {
        held.lease.release()
        state.capsules.delete(id)
        state.reserved.delete(id)
      }
    }, http)
    state.capsules.set(id, capsule)
    return capsule
  } catch (error) {
    state.reserved.delete(id)
    // Release only what this load claimed: the id may belong to a capsule of another runtime.
    lease?.release()
    if (session) await state.options.fetch.releaseCapsule(id)
    throw error
  }
}

async function closeRuntime(state: RuntimeState, stopAudit: () => void): Promise<void> {
  state.closed = true
  await Promise.all([...state.capsules.values()].map((capsule) => capsule.unload()))
  await Promise.allSettled(state.loading)
  await state.pool?.close()
  stopAudit()
  state.audit.close()
}

/** Creates a runtime on a safe fetch. Throws a TypeError for a bad option. */
export function createRuntime(options: RuntimeOptions): Runtime {
  const state = runtimeState(options)
  const stopAudit = options.fetch.audit.on('request', (event) => {
    if (state.reserved.has(event.capsuleId)) state.audit.record(event)
  })
  return {
    load(load: LoadOptions): Promise<Capsule> {
      const pending = loadCapsule(state, load)
      state.loading.add(pending)
      void pending.finally(() => state.loading.delete(pending)).catch(() => undefined)
      return pending
    },
    capsules: state.capsules,
    get compilations() {
      return state.cache.compilations
    },
    get cachedModules() {
      return state.cache.size
    },
    audit: state.audit,
    close: () => closeRuntime(state, stopAudit),
  }
}
