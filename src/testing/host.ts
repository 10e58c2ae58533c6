// createTestHost: scripted upstreams plus a safe fetch and runtime wired to reach exactly those servers, and run() for one export call.
import { CapsuleError } from '../errors.js'
import type {
  AuditEvent,
  CallInput,
  Capsule,
  CapsuleErrorCode,
  ErrorCode,
  Isolation,
  Limits,
  LoadOptions,
  LogHandler,
  LogLevel,
  Middleware,
  MiddlewareOption,
  Resolver,
  Rule,
  Runtime,
  RuntimeLimits,
  SafeFetch,
  SecurityGate,
} from '../index.js'
import { checkOptions, type OptionCheck } from '../options.js'
import { createRuntime } from '../runtime/runtime.js'
import { createSafeFetch } from '../safe-fetch.js'
import { defaultPortOf, defaultPortRewrite } from './default-port.js'
import { upstreamGate } from './gate.js'
import { loadMocks, type MockDescription } from './mocks.js'
import { startUpstreams, UPSTREAM_ADDRESS, type Upstream, type Upstreams } from './upstreams.js'

/** createTestHost's options. Unknown names are a TypeError. */
export interface TestHostOptions {
  /** The scripted upstreams: a mock description, or the path of a JSON file holding one. Default: none (no upstreams). */
  mocks?: MockDescription | string
  /** How the runtime runs capsules. Default `worker` (works on every Node); `inline` and `pool` need JSPI (Node 25+). */
  isolation?: Isolation
  /**
   * More rules, before the kit's own (one per upstream: its name and scheme, on its own port and
   * the scheme's default port). A rule whose `host` is an upstream name and that gives no `port`
   * gets those two ports (and `httpsOnly: false` for an HTTP upstream) and replaces the kit's rule
   * for it: use it to restrict routes or add middleware (several for one name are kept, in order).
   * Whatever they allow, the kit's gate `test-upstreams` lets an upstream name through only with
   * its scheme on its server's port or that scheme's default port, and refuses IP-address hosts.
   * Default: none.
   */
  rules?: Rule | readonly Rule[]
  /** Global middleware of the safe fetch (one or a list). Default: none. */
  middleware?: MiddlewareOption
  /** Host gates of the safe fetch; every one must allow. Default: none. */
  gates?: readonly SecurityGate[]
  /** The safe fetch's limits (`createSafeFetch`'s `limits`). Default: `DEFAULT_LIMITS`. */
  limits?: Partial<Limits>
  /** The most redirects a request may ask to follow. Default 0. */
  maxRedirects?: number
  /** The runtime's limits (call time, memory, output size). Default: `DEFAULT_RUNTIME_LIMITS`. */
  runtimeLimits?: Partial<RuntimeLimits>
  /** Receives the capsules' log lines (createRuntime's `onLog`). Default: none (lines are dropped). */
  onLog?: LogHandler
  /** The lowest Extism log level passed to `onLog`. Default `info`. */
  logLevel?: LogLevel
}

/** A module for run(): a file path, a `file:`, `http:` or `https:` URL, or the module's bytes (as `LoadOptions.wasm`). */
export type WasmSource = NonNullable<LoadOptions['wasm']>

/** What run() loads a module with (LoadOptions without `wasm`); the same module and options share one loaded capsule. */
export type RunLoadOptions = Omit<LoadOptions, 'wasm' | 'onLog'>

/** The outcome of one export call made by run(). */
export interface RunResult {
  /** `ok` when the export returned; `failed` when the load or the call failed (`error` says how). */
  readonly status: 'ok' | 'failed'
  /** The output as text (UTF-8); empty when the call failed. */
  readonly output: string
  /** The output's bytes; empty when the call failed. */
  readonly bytes: Uint8Array
  /** Why the load or the call failed: the CapsuleError's code, the host function's wire code, its message. */
  readonly error?: { readonly code: CapsuleErrorCode; readonly hostCode?: ErrorCode; readonly message: string }
  /** The audit events of the requests this call made, in the order they ended. */
  readonly audit: readonly AuditEvent[]
}

/** A running test host. Close it when done (or `await using`). */
export interface TestHost {
  /** The safe fetch, wired to the upstreams (call `request`, `stream` or `explain` on it directly). */
  readonly fetch: SafeFetch
  /** The runtime, on `fetch`. */
  readonly runtime: Runtime
  /** Every audit event since the host started, oldest first (a live list). */
  readonly audit: readonly AuditEvent[]
  /** The started upstreams (names, the CA, each server). */
  readonly upstreams: Upstreams
  /** The upstream called `name` (its `received` list, port, origin); a TypeError for an unknown name. */
  upstream(name: string): Upstream
  /** `http://<name>:<port><path>`, https for a TLS upstream. */
  url(name: string, path?: string): string
  /**
   * Loads the module (once per module and `load` options) and calls `exportName` with `input`.
   * A failed load or call is a `failed` result, not a rejection.
   */
  run(wasm: WasmSource, exportName: string, input?: CallInput, load?: RunLoadOptions): Promise<RunResult>
  /** Closes the runtime, the safe fetch and the upstreams (all of them, even when one fails; then rejects with the first failure); idempotent. */
  close(): Promise<void>
  /** The same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
}

const passedOn: OptionCheck = () => undefined
const TEST_HOST_OPTIONS: Readonly<Record<keyof TestHostOptions, OptionCheck>> = {
  mocks: passedOn,
  isolation: passedOn,
  rules: passedOn,
  middleware: passedOn,
  gates: passedOn,
  limits: passedOn,
  maxRedirects: passedOn,
  runtimeLimits: passedOn,
  onLog: passedOn,
  logLevel: passedOn,
}

/** Exactly the upstream names, to the loopback address; any other name fails as a DNS error would. */
function upstreamResolver(names: readonly string[]): Resolver {
  const known = new Set(names)
  return async (hostname) => {
    if (known.has(hostname)) return [UPSTREAM_ADDRESS]
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (the test host resolves only its upstreams)`), { code: 'ENOTFOUND' })
  }
}

/** A rule's middleware option as a list. */
const middlewareOf = (rule: Rule): Middleware[] => (rule.middleware === undefined ? [] : Array.isArray(rule.middleware) ? [...rule.middleware] : [rule.middleware as Middleware])

/**
 * `<base>@default-port` for each rule, counted per base (`api.test@default-port#2` for a second
 * host rule for api.test without an id), so two rules never share an id.
 */
function defaultPortIds(bases: readonly Rule[]): string[] {
  const seen = new Map<string, number>()
  return bases.map((rule) => {
    const base = `${rule.id ?? rule.host}@default-port`
    const n = (seen.get(base) ?? 0) + 1
    seen.set(base, n)
    return n === 1 ? base : `${base}#${n}`
  })
}

/**
 * Whether a host rule may allow an upstream name on a default port (it names one, or a wildcard,
 * with no port or with 80 or 443): such a rule needs the rewrite too, or it would dial that port.
 */
function mayMeetDefaultPort(rule: Rule, names: readonly string[]): boolean {
  if (rule === null || typeof rule !== 'object' || typeof rule.host !== 'string') return false
  const ports = rule.port === undefined ? undefined : [rule.port].flat()
  const onDefault = ports === undefined || ports.includes(80) || ports.includes(443)
  return onDefault && (names.includes(rule.host) || rule.host.includes('*'))
}

/**
 * The kit's rules: per upstream, its name on its own port, and on its scheme's default port.
 * A host rule for an upstream name without a port takes the place of the kit's for it (an id only
 * when the host gave one). The default-port rules, and host rules that may allow an upstream name
 * on a default port, get `defaultPortRewrite` as origin middleware, so such a request goes on to
 * the server's port whichever rule allowed it (and only those requests pass through a middleware
 * chain).
 */
function upstreamRules(upstreams: Upstreams, extra: Rule | readonly Rule[] | undefined): Rule[] {
  const given: readonly Rule[] = extra === undefined ? [] : Array.isArray(extra) ? extra : [extra as Rule]
  const isUpstream = (rule: Rule) => typeof rule?.host === 'string' && upstreams.names.includes(rule.host) && rule.port === undefined
  const rewrite = defaultPortRewrite(upstreams)
  const withRewrite = (rule: Rule): Rule => ({ ...rule, middleware: [...middlewareOf(rule), rewrite] })
  const ownPort = (rule: Rule): Rule => {
    const { port, tls } = upstreams.upstream(rule.host)
    return { httpsOnly: tls, ...rule, port }
  }
  const replaced = new Set(given.filter(isUpstream).map((rule) => rule.host))
  const kits: Rule[] = upstreams.names.filter((name) => !replaced.has(name)).map((name) => ({ host: name }))
  // The host's rules first, in their order, so an error in one names its own index (`rules[0]`).
  const upstreamBases = [...given.filter(isUpstream), ...kits]
  const ids = defaultPortIds(upstreamBases)
  const defaultPort = (rule: Rule, i: number): Rule => withRewrite({ ...ownPort(rule), id: ids[i]!, port: defaultPortOf(upstreams.upstream(rule.host).tls) })
  const hostRule = (rule: Rule): Rule => (isUpstream(rule) ? ownPort(rule) : mayMeetDefaultPort(rule, upstreams.names) ? withRewrite(rule) : rule)
  return [...given.map(hostRule), ...kits.map(ownPort), ...upstreamBases.map(defaultPort)]
}

/** With upstreams: the exemption of their address, and the gate that keeps it to their names, schemes and ports. */
function upstreamScope(upstreams: Upstreams, gates: readonly SecurityGate[] | undefined) {
  if (upstreams.names.length === 0) return gates ? { gates } : {}
  return { addressPolicy: { unsafeAllow: [`${UPSTREAM_ADDRESS}/32`] }, gates: [upstreamGate(upstreams), ...(gates ?? [])] }
}

function wiredFetch(upstreams: Upstreams, options: TestHostOptions): SafeFetch {
  return createSafeFetch({
    rules: upstreamRules(upstreams, options.rules),
    resolver: upstreamResolver(upstreams.names),
    ...upstreamScope(upstreams, options.gates),
    ...(upstreams.ca ? { tls: { ca: upstreams.ca } } : {}),
    ...(options.middleware ? { middleware: options.middleware } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.maxRedirects !== undefined ? { maxRedirects: options.maxRedirects } : {}),
  })
}

/** Runs every step in turn, even after one fails, then throws the first failure. */
async function closeInTurn(steps: ReadonlyArray<() => Promise<void>>): Promise<void> {
  const failures: unknown[] = []
  for (const step of steps) await step().catch((error: unknown) => void failures.push(error))
  if (failures.length > 0) throw failures[0]
}

/** What a failed load or call becomes in a RunResult. */
const failure = (error: CapsuleError, audit: readonly AuditEvent[]): RunResult => ({
  status: 'failed',
  output: '',
  bytes: new Uint8Array(0),
  error: { code: error.code, ...(error.hostCode ? { hostCode: error.hostCode } : {}), message: error.message },
  audit,
})

/** One loaded capsule of run(), with the calls made on it chained so each call's events are its own. */
interface Loaded {
  readonly capsule: Promise<Capsule>
  queue: Promise<unknown>
}

/** run(): loads once per (module, options), calls in turn, and gathers each call's events by capsule id. */
function runner(fetch: SafeFetch, runtime: Runtime): TestHost['run'] {
  // By path (or URL) text, or by the bytes object itself; then by the load options.
  const modules = new Map<unknown, Map<string, Loaded>>()
  const loadedFor = (wasm: WasmSource, load: RunLoadOptions | undefined): Loaded => {
    const id = wasm instanceof URL ? wasm.href : wasm
    const key = JSON.stringify(load ?? {})
    let entries = modules.get(id)
    if (!entries) modules.set(id, (entries = new Map()))
    let loaded = entries.get(key)
    if (!loaded) {
      const capsule = runtime.load({ ...load, wasm })
      capsule.catch(() => entries.delete(key))
      entries.set(key, (loaded = { capsule, queue: Promise.resolve() }))
    }
    return loaded
  }
  const callOnce = async (loaded: Loaded, exportName: string, input: CallInput): Promise<RunResult> => {
    let capsule: Capsule
    try {
      capsule = await loaded.capsule
    } catch (error) {
      if (error instanceof CapsuleError) return failure(error, [])
      throw error
    }
    const audit: AuditEvent[] = []
    const stop = fetch.audit.on('request', (event) => {
      if (event.capsuleId === capsule.id) audit.push(event)
    })
    try {
      const output = await capsule.call(exportName, input)
      return { status: 'ok', output: output.text(), bytes: output.bytes(), audit }
    } catch (error) {
      if (error instanceof CapsuleError) return failure(error, audit)
      throw error
    } finally {
      stop()
    }
  }
  return (wasm, exportName, input, load) => {
    const loaded = loadedFor(wasm, load)
    const result = loaded.queue.then(() => callOnce(loaded, exportName, input))
    loaded.queue = result.catch(() => undefined)
    return result
  }
}

/**
 * Starts the mocks' upstreams and a safe fetch and runtime that reach exactly them: their names
 * resolve to 127.0.0.1 (every other name fails with `dns_failed`), only 127.0.0.1/32 is exempted
 * from the address blocklist (nothing without upstreams), the rules allow each upstream's name on
 * its own port and on its scheme's default port, which `defaultPortRewrite` sends on to its own
 * port, and the gate `test-upstreams` (first of the gates) keeps any other rule to those servers.
 */
export async function createTestHost(options: TestHostOptions = {}): Promise<TestHost> {
  checkOptions('createTestHost', options, TEST_HOST_OPTIONS)
  const mocks = typeof options.mocks === 'string' ? await loadMocks(options.mocks) : (options.mocks ?? { upstreams: {} })
  const upstreams = await startUpstreams(mocks)
  let fetch: SafeFetch | undefined
  let runtime: Runtime
  try {
    fetch = wiredFetch(upstreams, options)
    runtime = createRuntime({
      fetch,
      isolation: options.isolation ?? 'worker',
      ...(options.runtimeLimits ? { limits: options.runtimeLimits } : {}),
      ...(options.onLog ? { onLog: options.onLog } : {}),
      ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    })
  } catch (error) {
    await fetch?.close()
    await upstreams.close()
    throw error
  }
  const audit: AuditEvent[] = []
  fetch.audit.on('request', (event) => void audit.push(event))
  let closing: Promise<void> | undefined
  const close = () => (closing ??= closeInTurn([() => runtime.close(), () => fetch.close(), () => upstreams.close()]))
  return {
    fetch,
    runtime,
    audit,
    upstreams,
    upstream: (name) => upstreams.upstream(name),
    url: (name, path) => upstreams.url(name, path),
    run: runner(fetch, runtime),
    close,
    [Symbol.asyncDispose]: close,
  }
}
