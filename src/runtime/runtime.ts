// createRuntime: loads capsules in the chosen isolation mode and wires each to its own HTTP service.
import { z } from 'zod'
import { CapsuleError } from '../errors.js'
import { TimerMs } from '../timers.js'
import { AuditLog } from '../audit.js'
import type { SafeFetch, SafeFetchSession } from '../safe-fetch.js'
import { Capsule, type CapsuleEngine } from './capsule.js'
import { CapsuleHttp } from './capsule-http.js'
import { createInlineEngine } from './inline-engine.js'
import { DEFAULT_LOG_LEVEL, passes, type EngineLogs, type LogHandler, type LogLevel } from './logs.js'
import type { ExtismManifest } from './extism-manifest.js'
import { manifestFor, type Manifest } from './manifest.js'
import { ModuleCache, readWasm, type ModuleLease, type WasmSource } from './modules.js'
import { checkLoadOptions, checkRuntimeOptions } from './options.js'
import type { WasiGrants } from './wasi-grants.js'
import { createWorkerEngine } from './worker-engine.js'

export type Isolation = 'worker' | 'inline'

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

export interface RuntimeOptions {
  /** The safe fetch every capsule's requests go through (`createSafeFetch(...)`). */
  fetch: SafeFetch
  /** Default `worker`: each capsule on its own thread. `inline` needs JSPI (Node 25+). */
  isolation?: Isolation
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

export interface LoadOptions {
  /** A file path, a `file:`, `http:` or `https:` URL, or the module's bytes. Optional when the manifest names it. */
  wasm?: WasmSource
  /**
   * The capsule's manifest: a capsule.json or an Extism manifest, as a value or the path of a
   * JSON file (told apart by content: an Extism manifest's `wasm` is an array). Without one, a
   * capsule.json beside a module path is used when its "wasm" names that module. A capsule with a
   * manifest reaches only what it declares (`capabilities.http`, `allowed_hosts`), under limits
   * that can only be lower.
   */
  manifest?: Manifest | ExtismManifest | string
  /** Names the capsule in requests, decisions and errors. Default: `capsule-<n>`. Must be unique. */
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

export interface Runtime {
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

export function createRuntime(options: RuntimeOptions): Runtime {
  checkRuntimeOptions(options)
  const isolation = options.isolation ?? 'worker'
  const parsed = RuntimeLimitsSchema.safeParse({ ...DEFAULT_RUNTIME_LIMITS, ...options.limits })
  if (!parsed.success) throw new TypeError(`invalid runtime limits: ${oneLine(parsed.error)}`)
  const limits = parsed.data
  const { fetch } = options
  const cache = new ModuleCache(options.moduleCacheSize)
  const capsules = new Map<string, Capsule>()
  const reserved = new Set<string>()
  let closed = false
  // This runtime's view of the safe fetch's log: its own capsules' events, ended by close().
  const audit = new AuditLog()
  const stopAudit = fetch.audit.on('request', (event) => {
    if (reserved.has(event.capsuleId)) audit.record(event)
  })

  /** Loads in progress, so close() can wait for them to see that the runtime closed. */
  const loading = new Set<Promise<Capsule>>()

  function load(options: LoadOptions): Promise<Capsule> {
    const pending = loadCapsule(options)
    loading.add(pending)
    void pending.finally(() => loading.delete(pending)).catch(() => undefined)
    return pending
  }

  async function loadCapsule(load: LoadOptions): Promise<Capsule> {
    if (closed) throw new CapsuleError('unloaded', 'the runtime is closed')
    checkLoadOptions(load)
    const { manifest, wasm, config } = await manifestFor(load.manifest, load.wasm)
    if (wasm === undefined) throw new CapsuleError('load_failed', 'give the module as "wasm", or a manifest that names it')
    const id = load.id ?? `${manifest?.name ?? 'capsule'}-${++capsuleCounter}`
    if (reserved.has(id)) throw new CapsuleError('load_failed', `a capsule with id "${id}" is already loaded; unload it or pick another id`)
    reserved.add(id)
    let claimed = false
    let lease: ModuleLease | undefined
    try {
      const asked = manifest?.limits ?? {}
      const own = loweredLimits(limits, load.limits, asked)
      lease = await cache.acquire(await readWasm(wasm as WasmSource), own.memoryBytes)
      const { compiled } = lease
      const { callTimeoutMs: _c, memoryBytes: _m, maxOutputBytes: _o, ...fetchLimits } = asked
      let session: SafeFetchSession
      try {
        session = fetch.registerCapsule(id, manifest ? { http: manifest.capabilities?.http ?? [], limits: fetchLimits } : undefined)
        claimed = true
      } catch (cause) {
        throw new CapsuleError('load_failed', `${manifest ? 'invalid manifest or id: ' : ''}${(cause as Error).message}`, { cause })
      }
      const http = new CapsuleHttp(session)
      const engineOptions = {
        compiled,
        http,
        // An Extism manifest's config is the capsule's default; the host's load config wins.
        config: { ...config, ...load.config },
        memoryBytes: own.memoryBytes,
        maxOutputBytes: own.maxOutputBytes,
        maxRequestBytes: session.limits.maxRequestBytes,
        loadTimeoutMs: own.callTimeoutMs,
        logs: capsuleLogs(id, load.onLog ?? options.onLog, load.logLevel ?? options.logLevel ?? DEFAULT_LOG_LEVEL),
        ...(load.wasi ? { wasi: frozenGrants(load.wasi) } : {}),
      }
      const mode = load.isolation ?? isolation
      const engine: CapsuleEngine = mode === 'inline' ? await createInlineEngine(engineOptions) : await createWorkerEngine(engineOptions)
      if (closed) {
        // close() ran while this capsule was loading: nothing of it may survive.
        await engine.close()
        throw new CapsuleError('unloaded', 'the runtime was closed while the capsule was loading')
      }
      const capsule = new Capsule(id, engine, compiled.exports, own.callTimeoutMs, async () => {
        http.closeAll()
        try {
          await session.release()
        } finally {
          lease?.release()
          capsules.delete(id)
          reserved.delete(id)
        }
      })
      capsules.set(id, capsule)
      return capsule
    } catch (error) {
      reserved.delete(id)
      // Release only what this load claimed: the id may belong to a capsule of another runtime.
      lease?.release()
      if (claimed) await fetch.releaseCapsule(id)
      throw error
    }
  }

  return {
    load,
    capsules,
    get compilations() {
      return cache.compilations
    },
    get cachedModules() {
      return cache.size
    },
    audit,
    async close() {
      closed = true
      await Promise.all([...capsules.values()].map((capsule) => capsule.unload()))
      await Promise.allSettled(loading)
      stopAudit()
      audit.close()
    },
  }
}
