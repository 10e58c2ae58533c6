// createSafeFetch: a thin facade over the four parts of the request path (guard, transport, pipeline, session).
import { AuditLog, type Abi, type AuditEvent, type AuditListener, type AuditSink } from './audit.js'
import { CapsuleHostError, type ErrorCode, type TimeoutPhase, type WireError } from './errors.js'
import { admit, type Admission } from './fetch/admit.js'
import { exchange, hostBudget } from './fetch/exchange.js'
import { cancelledBy } from './fetch/host-deadline.js'
import { prepareRequest, type Mode, type PreparedRequest } from './fetch/prepare.js'
import { bufferedReply, bytesReply, scrubbedWireError, streamedAnswer, wireReply, type BytesResponse, type ReplyArguments, type WireReply } from './fetch/reply.js'
import { RequestControl } from './fetch/request-control.js'
import { RequestSecrets } from './fetch/secrets.js'
import { CapsuleSession } from './fetch/session.js'
import { RequestTrace, type ErrorHook } from './fetch/trace.js'
import type { RequestObservation, RequestObserver } from './fetch/observer.js'
import { QuotaGuard, type QuotaHold } from './quota/guard.js'
import { memoryQuotaStore } from './quota/memory-store.js'
import { compileQuotas, manifestQuotaProblem, quotaRequest, withManifestQuota, type CompiledQuota, type ManifestQuota } from './quota/quotas.js'
import type { QuotaRule, QuotaStore } from './quota/types.js'
import { createTelemetry, type Telemetry, type TelemetryOptions } from './telemetry/index.js'
import { compileCapabilities } from './gate/capabilities.js'
import type { Policy } from './gate/decide.js'
import { compileRules, type Rule } from './gate/rules.js'
import type { Decider, DenyReason, SecurityGate } from './gate/types.js'
import { resolveLimits, type Limits } from './limits.js'
import { middlewareList } from './middleware/compose.js'
import type { MiddlewareOption } from './middleware/types.js'
import { createAddressPolicy, type AddressPolicyOptions } from './net/address-policy.js'
import type { AddressClass } from './net/address-table.js'
import { readBodyInto, type BodyReader } from './net/dispatch-hop.js'
import { headerObject, type HeaderList } from './net/headers.js'
import { safeFetchResolver, type ResolutionCacheOptions } from './net/resolution-cache.js'
import type { Resolver } from './net/resolve.js'
import { checkSafeFetchOptions } from './safe-fetch-options.js'
import { redactedUrl, type NormalisedUrl } from './url/normalise.js'
import { parseRequest } from './wire/parse.js'
import type { BufferedResponse, HeaderForm } from './wire/schemas.js'
import { rootCertificates } from 'node:tls'

/** createSafeFetch's options. An unknown name or a wrong shape is a TypeError at creation, with a suggestion. */
export interface SafeFetchOptions {
  /**
   * Origin rules (one or a list). A request must match one, or be allowed by `policy`. With no
   * rules, no policy and no gates, every request is denied.
   */
  rules?: Rule | readonly Rule[]
  /** Decides requests that no origin rule matched (never asked when an origin matched but no route did). */
  policy?: Policy
  /** Host gates, run in order after the rules or policy; every one must allow. */
  gates?: readonly SecurityGate[]
  /**
   * Name to addresses, or `{ addresses, ttlMs }` (how long the answer may be kept). Default: the
   * system resolver (getaddrinfo, every address) behind this safe fetch's resolution cache. A
   * resolver given here is not cached unless `dnsCache` is an object.
   * @defaultValue the system resolver (getaddrinfo), cached
   */
  resolver?: Resolver
  /**
   * This safe fetch's own resolution cache, shared with no other: `{ maxEntries: 1000, minTtlMs:
   * 1000, maxTtlMs: 300000, defaultTtlMs: 10000 }` by default, `false` for none. It keeps address
   * strings only: every use is classified and checked against `addressPolicy` again.
   * @defaultValue `{ maxEntries: 1000, minTtlMs: 1000, maxTtlMs: 300000, defaultTtlMs: 10000 }` for the system resolver; none for a `resolver` you give
   */
  dnsCache?: ResolutionCacheOptions | false
  /**
   * `unsafeAllow`: CIDRs exempted from the address blocklist (`allow` is its deprecated alias).
   * @defaultValue `{}`: every address must be global unicast
   */
  addressPolicy?: AddressPolicyOptions
  /**
   * TLS to upstreams. `ca`: certificates (PEM, one or a list) trusted in addition to Node's
   * bundled roots, for a private or test CA; with it, NODE_EXTRA_CA_CERTS and the system store
   * are not consulted.
   * @defaultValue Node's default CA store: its bundled roots, plus NODE_EXTRA_CA_CERTS (or the system store with --use-system-ca)
   */
  tls?: { ca?: string | Buffer | ReadonlyArray<string | Buffer> }
  /** Host ceilings (body sizes, streams, timeouts); any subset, the rest keep DEFAULT_LIMITS. */
  limits?: Partial<Limits>
  /** The most redirects a request may ask to follow. Default 0: a 3xx goes back to the capsule. */
  maxRedirects?: number
  /** Called once per request or stream (at its end), allowed or refused. Same as `audit.on('request', ...)`. */
  onRequest?: AuditListener
  /**
   * Called with what was thrown when a request fails with `internal` (a bug in a middleware, a
   * gate or capsule-host), and the request's event. The capsule is told nothing more than `internal`.
   */
  onError?: ErrorHook
  /** Also write every audit event as one JSON line to this stream (for example process.stderr). */
  auditStream?: AuditSink
  /** Global middleware (one or a list), run before origin and route middleware on every hop. */
  middleware?: MiddlewareOption
  /**
   * Quotas (docs/fleet.md): per capsule or per key you choose, requests and response bytes per
   * window and requests at once, optionally per origin. A request over one is refused with
   * `rate_limited` once the rules and gates allowed the hop and before any DNS or connection. At most 64.
   * @defaultValue none
   */
  quotas?: readonly QuotaRule[]
  /**
   * Where quota counters live: `memoryQuotaStore()` (this process) or `redisQuotaStore()` (shared
   * by every host on one Redis).
   * @defaultValue `memoryQuotaStore()`
   */
  quotaStore?: QuotaStore
  /**
   * OpenTelemetry (docs/fleet.md): with @opentelemetry/api installed, a client span per request
   * and stream and the request metrics, through the global providers; `false` for none.
   * @defaultValue `{}`: on when @opentelemetry/api is installed, trace context not propagated
   */
  telemetry?: TelemetryOptions | false
}

/** One request's outcome (the audit event). */
export type RequestEvent = AuditEvent

export interface RequestContext {
  capsuleId: string
  signal?: AbortSignal
}

export type ErrorReply = { error: WireError }

export type { Abi, BytesResponse, HeaderForm, WireReply }

/** How a capsule's request reached the safe fetch; set by the runtime's host functions, never by the capsule. */
export interface RequestVia {
  /** The host ABI that served it (on the audit event). Default `capsule-host`. */
  readonly abi?: Abi
  /**
   * A request that does not choose follows redirects, up to the host's `maxRedirects` (each hop
   * re-checked), as Extism's HTTP does; with `maxRedirects` 0 the 3xx still comes back.
   */
  readonly followRedirects?: boolean
  /** The telemetry context of the capsule call that made the request (its span is the parent). */
  readonly parent?: unknown
}

/** An open streamed response. `read()` returns the next chunk, or `null` at the end. */
export interface StreamedResponse {
  /** The stream's handle in its capsule's stream table (what `http_stream_read` names). */
  readonly handle: string
  readonly status: number
  /** One entry per name, repeats joined with `", "` (made on first use). */
  readonly headers: Record<string, string>
  readonly rawHeaders: HeaderList
  /** The header form the request asked for: what a capsule's `http_stream_start` reply carries. */
  readonly responseHeaders: HeaderForm
  readonly finalUrl: string
  /**
   * The next chunk; with `maxBytes`, everything already received up to that many bytes at once.
   * Throws a CapsuleHostError (timeout, too_large, network, cancelled) when the body fails.
   */
  read(maxBytes?: number): Promise<Uint8Array | null>
  /**
   * Reads the next piece into `target` (at most its length; what `read(target.byteLength)` would
   * return), without a buffer in between: the byte count, 0 at the end. Same errors as `read`.
   */
  readInto(target: Uint8Array): Promise<number>
  /** Stops the body, releases the socket and frees the stream's slot; idempotent. */
  close(): void
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>
}

export interface Explanation {
  allowed: boolean
  code?: ErrorCode
  /** For `timeout`: `host` when a gate or the policy did not answer within `limits.hostTimeoutMs`. */
  phase?: TimeoutPhase
  /** Who decided, as in the audit log: a stage, `rule:<id>` or `gate:<name>`. */
  decidedBy: Decider
  /** The route pattern of the rule that allowed, when the rule has routes. */
  route?: string
  /** For refusals: the stable phrase (DENY_REASONS). */
  reason?: DenyReason
  /** What was refused or failed, host-side. */
  detail?: string
  addresses?: Array<{ address: string; class: AddressClass; embedded?: Array<{ address: string; class: AddressClass; form: string }> }>
}

/** One capsule's side of the safe fetch: what a runtime uses for a loaded capsule. */
export interface SafeFetchSession {
  readonly capsuleId: string
  /** The capsule's limits: the host's, lowered by its manifest. */
  readonly limits: Readonly<Limits>
  /** Streams open or starting (at most `limits.maxOpenStreams`). */
  readonly openStreams: number
  request(request: unknown, signal?: AbortSignal, via?: RequestVia): Promise<BufferedResponse | ErrorReply>
  /**
   * The same request and checks as `request()`, with the body kept as bytes (no text or base64
   * step): what Extism's kernel `http_request` hands the capsule.
   */
  requestBytes(request: unknown, signal?: AbortSignal, via?: RequestVia): Promise<BytesResponse | ErrorReply>
  /**
   * The same request and checks as `request()`, with the reply encoded once as the capsule's
   * `http_request` gets it (JSON bytes, the header form it asked for).
   */
  requestWire(request: unknown, signal?: AbortSignal, via?: RequestVia): Promise<WireReply | ErrorReply>
  /** Opens a stream in the capsule's stream table; `stream_limit` when every slot is taken. */
  stream(request: unknown, signal?: AbortSignal, via?: RequestVia): Promise<StreamedResponse | ErrorReply>
  /** The open stream with this handle, if any. */
  openStream(handle: string): StreamedResponse | undefined
  /** Records a request the capsule's worker refused in validation (it never reached the safe fetch). */
  recordInvalid(kind: AuditEvent['kind'], error: WireError, via?: RequestVia): void
  /** Aborts everything the capsule has in flight, records its open streams as cancelled, closes its connections. */
  release(): Promise<void>
}

/** What a capsule's manifest restricts: the hosts it reaches, its limits and quotas (lower only), its name. */
export interface CapsuleRestriction {
  readonly http: readonly string[]
  readonly limits?: Partial<Limits>
  /** A quota on the capsule's own id, checked beside the host's quotas, so it can only lower them. */
  readonly quotas?: ManifestQuota
  /** The manifest's name, which quota key functions see as `manifestName`. */
  readonly name?: string
}

export interface SafeFetch {
  /** The host limits in force (defaults merged with the options). */
  readonly limits: Readonly<Limits>
  /** The OpenTelemetry exporter in use, or undefined (off, or @opentelemetry/api not installed); the runtime's call spans use it. */
  readonly telemetry: Telemetry | undefined
  /** One event per request or stream: `audit.on('request', fn)`, or `for await (const e of audit)` (ends at close()). */
  readonly audit: AuditLog
  /**
   * Sends a request and buffers the response. Never throws for anything a capsule can cause. The
   * request may be JSON bytes or text, a value, or (from a capsule's worker) a `CheckedRequest`.
   */
  request(request: unknown, context: RequestContext): Promise<BufferedResponse | ErrorReply>
  /** Sends a request and returns the head with a chunk reader, or the error. Counts against `limits.maxOpenStreams`. */
  stream(request: unknown, context: RequestContext): Promise<StreamedResponse | ErrorReply>
  /** The admission of a request, with its addresses, without opening any connection: the same step `request()` runs. */
  explain(request: unknown, context: RequestContext): Promise<Explanation>
  /**
   * Claims a capsule id for one loaded capsule until its session is released (a runtime does this
   * at load; two runtimes sharing this safe fetch can never share an id). With a restriction, from
   * the capsule's manifest, it reaches only the hosts or origins in `http` (still subject to the
   * rules), under `limits` that can only be lower than the host's. Throws a TypeError for an id
   * already claimed or a bad entry.
   */
  registerCapsule(capsuleId: string, restriction?: CapsuleRestriction): SafeFetchSession
  /** Releases a capsule's session (the same as its `release()`). */
  releaseCapsule(capsuleId: string): Promise<void>
  /** Releases every session and ends the audit log's iterators. */
  close(): Promise<void>
}

/** The limits a manifest asked for, each never above the host's. */
function loweredLimits(limits: Readonly<Limits>, asked: Partial<Limits> | undefined): Readonly<Limits> {
  const lowered: Partial<Limits> = {}
  for (const [key, value] of Object.entries(asked ?? {}) as Array<[keyof Limits, number]>) {
    if (!(key in limits)) throw new TypeError(`limits.${key} is not a limit; the limits are ${Object.keys(limits).join(', ')}`)
    lowered[key] = Math.min(value, limits[key])
  }
  return resolveLimits({ ...limits, ...lowered })
}

/** The state of one safe fetch that its request functions share. */
interface SafeFetchState {
  readonly limits: Readonly<Limits>
  readonly maxRedirects: number
  readonly admission: Admission
  readonly audit: AuditLog
  readonly onError: ErrorHook | undefined
  readonly sessions: Map<string, CapsuleSession<StreamedResponse>>
  readonly ca: ReadonlyArray<string | Buffer> | undefined
  requests: number
  /** Ad hoc session ids, oldest first. */
  readonly adHoc: Set<string>
  /** Ids of released registered sessions kept as tombstones, oldest first. */
  readonly tombstones: Set<string>
  /** The host's quotas; a session adds its manifest's. */
  readonly quotas: readonly CompiledQuota[]
  /** Made with the first session that has a quota. */
  guard: QuotaGuard | undefined
  readonly quotaStore: QuotaStore | undefined
  readonly observer: RequestObserver | undefined
}



/** One request in flight: its session, control (abort and deadline), trace and secrets. */
interface InFlight {
  readonly session: CapsuleSession<StreamedResponse>
  /** What the request's steps watch (a StopSignal: no AbortSignal is made for them). */
  readonly control: RequestControl
  readonly trace: RequestTrace
  readonly secrets: RequestSecrets
  readonly via: RequestVia | undefined
  readonly observation: RequestObservation | undefined
  /**
   * The quotas it took (its first hop's, then any a redirect hop added), given back when it ends,
   * and the check keys they hold, so a redirect hop takes only the keys it changes. Made with its
   * first quota: a request without quotas allocates nothing for them.
   */
  quotas: { readonly holds: QuotaHold[]; readonly keys: Set<string> } | undefined
}

function startRequest(state: SafeFetchState, session: CapsuleSession<StreamedResponse>, kind: AuditEvent['kind'], signal?: AbortSignal, via?: RequestVia): InFlight {
  const requestId = `${session.capsuleId}#${++state.requests}`
  const trace = new RequestTrace(session.capsuleId, requestId, kind, via?.abi ?? 'capsule-host')
  // One control for the caller's abort, the capsule's release and the deadline.
  const control = new RequestControl(signal, session.controls)
  if (session.signal.aborted) control.abort(cancelledBy(session.signal))
  const observation = state.observer?.start({ capsuleId: session.capsuleId, requestId, kind, abi: via?.abi ?? 'capsule-host', parent: via?.parent })
  return { session, control, trace, secrets: new RequestSecrets(), via, observation, quotas: undefined }
}

/** Validates the request; a refusal is recorded here, where it is decided. */
function prepare(state: SafeFetchState, input: unknown, mode: Mode, limits: Readonly<Limits>, trace: RequestTrace, via?: RequestVia): PreparedRequest {
  let prepared: PreparedRequest
  const redirectDefault = via?.followRedirects && state.maxRedirects > 0 ? 'follow' : 'manual'
  try {
    prepared = prepareRequest(parseRequest(input, limits.maxRequestBytes), limits, state.maxRedirects, mode, redirectDefault)
  } catch (error) {
    trace.refusedBy('validation', 'invalid request', (error as Error).message)
    throw error
  }
  trace.prepared(prepared.method, redactedUrl(prepared.url), prepared.body?.byteLength ?? 0)
  return prepared
}

/** The prepared request with the telemetry's trace context headers, when it adds any. */
function withUpstreamHeaders(prepared: PreparedRequest, flight: InFlight): PreparedRequest {
  const headers = flight.observation?.upstreamHeaders()
  return headers && headers.length > 0 ? { ...prepared, headers: [...prepared.headers, ...headers] } : prepared
}

/**
 * Takes the request's quotas on a hop once the hop is allowed and before its name is resolved, or
 * throws `rate_limited`: on the first hop all of them (all or nothing), on a redirect hop those whose
 * key the new URL changes (a perOrigin quota, a key function of the origin, host or path).
 */
async function takeQuotas(state: SafeFetchState, flight: InFlight, prepared: PreparedRequest, url: NormalisedUrl): Promise<void> {
  const { session } = flight
  const { quotas } = session.quotas
  const request = quotaRequest(session.capsuleId, session.quotas.manifestName, prepared.mode === 'buffered' ? 'request' : 'stream', prepared.method, url)
  state.guard ??= new QuotaGuard(state.quotaStore ?? memoryQuotaStore())
  flight.quotas ??= { holds: [], keys: new Set() }
  const hold = await state.guard.take(quotas, request, prepared.limits.totalTimeoutMs, flight.control.signal, flight.trace, flight.quotas.keys)
  if (hold) flight.quotas.holds.push(hold)
}

/** Gives back the quotas the request holds (once), charging the bytes received so far. */
function releaseQuotas(flight: InFlight): void {
  if (!flight.quotas) return
  for (const hold of flight.quotas.holds.splice(0)) hold.release(flight.trace.bytesIn)
}

function finish(state: SafeFetchState, flight: InFlight, status?: number): void {
  flight.control.end()
  const event = flight.trace.finish(status, flight.secrets, state.onError)
  releaseQuotas(flight)
  state.audit.record(event)
  flight.observation?.end(event)
}

function failed(state: SafeFetchState, flight: InFlight, error: unknown): ErrorReply {
  // Scrubbed first, so the event counts the replacements in the capsule's message too.
  const wire = scrubbedWireError(error, flight.secrets)
  flight.trace.failed(error)
  finish(state, flight)
  return { error: wire }
}

function exchangeOf(state: SafeFetchState, prepared: PreparedRequest, flight: InFlight, deadline: number) {
  return exchange({
    prepared,
    capsuleId: flight.session.capsuleId,
    capabilities: flight.session.capabilities,
    dispatcher: flight.session.agent,
    admission: state.admission,
    signal: flight.control,
    deadline,
    trace: flight.trace,
    secrets: flight.secrets,
    onAllowed: flight.session.quotas.quotas.length > 0 ? (url) => takeQuotas(state, flight, prepared, url) : undefined,
  })
}

/** What a buffered request's answer becomes: the host API's reply, the wire reply, or the bytes reply; at once when the body is in. */
type ReplyShape<R> = (...args: ReplyArguments) => R | Promise<R>

async function bufferedRequest<R extends { status: number }>(state: SafeFetchState, input: unknown, flight: InFlight, shape: ReplyShape<R>): Promise<R | ErrorReply> {
  const started = performance.now()
  try {
    const prepared = withUpstreamHeaders(prepare(state, input, 'buffered', flight.session.limits, flight.trace, flight.via), flight)
    // The total time limit starts now, so time spent waiting for a concurrency slot counts.
    const deadline = started + prepared.limits.totalTimeoutMs
    flight.control.startDeadline(deadline, prepared.limits.totalTimeoutMs)
    const work = () => {
      const reply = exchangeOf(state, prepared, flight, deadline).then((done) => shape(done, prepared, flight.secrets, flight.trace, () => Math.round(performance.now() - started)))
      // Its quotas are given back before its slot: the request queued behind it takes both at once.
      return flight.session.quotas.quotas.length === 0 ? reply : reply.finally(() => releaseQuotas(flight))
    }
    // A free slot runs the exchange at once; a queued one stops waiting when the control aborts.
    const reply = await flight.session.slots.run(work, flight.control)
    finish(state, flight, reply.status)
    return reply
  } catch (error) {
    return failed(state, flight, error)
  }
}

/** A stream's settled head: status, scrubbed headers, the header form asked for, and the body reader. */
interface StreamHead {
  readonly status: number
  readonly rawHeaders: HeaderList
  readonly responseHeaders: HeaderForm
  readonly body: BodyReader
}

/** The capsule-facing stream over a settled answer; its event is recorded once, at its end. */
function openedStream(state: SafeFetchState, flight: InFlight, handle: string, head: StreamHead, finalUrl: string): StreamedResponse {
  const { session } = flight
  let ended: ErrorReply | undefined | false = false
  /** Records the stream's event once; a failure's wire error is scrubbed like any other. */
  const end = (error?: unknown): ErrorReply | undefined => {
    if (ended !== false) return ended
    session.freeStream(handle)
    flight.trace.received(head.body.bytesRead)
    if (error === undefined) finish(state, flight, head.status)
    ended = error === undefined ? undefined : failed(state, flight, error)
    return ended
  }
  let reading = false
  /** One read at a time; the end or a failure of the body ends the stream (a misuse of the API does not). */
  const pull = async <T>(misuse: Error | undefined, take: () => Promise<T>, atEnd: (value: T) => boolean): Promise<T> => {
    if (reading) throw new TypeError('a read of this body is already pending; wait for it before reading again')
    if (misuse) throw misuse
    reading = true
    try {
      const value = await take()
      if (atEnd(value)) end()
      return value
    } catch (error) {
      const reply = end(error)
      throw reply ? CapsuleHostError.fromWire(reply.error) : error
    } finally {
      reading = false
    }
  }
  const tooSmall = (size: number | undefined, what: string) => (size !== undefined && !(size >= 1) ? new RangeError(`${what} must be at least 1, not ${size}`) : undefined)
  const read = (maxBytes?: number) => pull(tooSmall(maxBytes, 'maxBytes'), () => head.body.read(maxBytes), (chunk) => chunk === null)
  const readInto = (target: Uint8Array) =>
    pull(target instanceof Uint8Array ? tooSmall(target.byteLength, 'the target\'s byteLength') : new TypeError('readInto needs a Uint8Array to read into'), () => readBodyInto(head.body, target), (count) => count === 0)
  const close = () => {
    head.body.cancel()
    end()
  }
  let headers: Record<string, string> | undefined
  const response: StreamedResponse = {
    handle,
    status: head.status,
    get headers() {
      return (headers ??= headerObject(head.rawHeaders))
    },
    rawHeaders: head.rawHeaders,
    responseHeaders: head.responseHeaders,
    finalUrl,
    read,
    readInto,
    close,
    async *[Symbol.asyncIterator]() {
      try {
        for (let chunk = await read(); chunk !== null; chunk = await read()) yield chunk
      } finally {
        close()
      }
    },
  }
  session.attachStream(handle, { response, cancel: () => { head.body.cancel(); end(new CapsuleHostError('cancelled', 'the capsule was released')) } })
  flight.observation?.streamOpened()
  return response
}

async function streamRequest(state: SafeFetchState, input: unknown, flight: InFlight): Promise<StreamedResponse | ErrorReply> {
  let handle: string | undefined
  try {
    const prepared = withUpstreamHeaders(prepare(state, input, 'stream', flight.session.limits, flight.trace, flight.via), flight)
    if (flight.control.aborted) throw cancelledBy(flight.control)
    handle = flight.session.reserveStream()
    if (handle === undefined) {
      const message = `this capsule already has ${flight.session.limits.maxOpenStreams} open streams; close one first`
      flight.trace.refusedBy('stream-table', 'too many open streams', message)
      throw new CapsuleHostError('stream_limit', message)
    }
    const deadline = performance.now() + prepared.limits.totalTimeoutMs
    flight.control.startDeadline(deadline, prepared.limits.totalTimeoutMs)
    const result = await exchangeOf(state, prepared, flight, deadline)
    const head = { status: result.answer.status, responseHeaders: prepared.responseHeaders, ...streamedAnswer(result.answer, flight.secrets) }
    if (flight.control.aborted) {
      head.body.cancel()
      throw cancelledBy(flight.control)
    }
    return openedStream(state, flight, handle, head, flight.secrets.scrubText(result.finalUrl.href))
  } catch (error) {
    if (handle !== undefined) flight.session.freeStream(handle)
    return failed(state, flight, error)
  }
}

/** explain(): validation and admission, recorded on a trace exactly as request() records them, without the send. */
async function explainRequest(state: SafeFetchState, input: unknown, context: RequestContext): Promise<Explanation> {
  // No session is made for an id that has none: explain() opens nothing.
  const session = state.sessions.get(context.capsuleId)
  const own = session?.limits ?? state.limits
  const trace = new RequestTrace(context.capsuleId, 'explain', 'request')
  let addresses: Explanation['addresses']
  // Its own control (not the session's: explain() is never in flight), for the caller's abort and the deadline.
  const control = new RequestControl(context.signal, new Set())
  try {
    const { url, method, limits } = prepare(state, input, 'buffered', own, trace)
    const deadline = performance.now() + limits.totalTimeoutMs
    control.startDeadline(deadline, limits.totalTimeoutMs)
    const budget = hostBudget(limits, deadline)
    const hop = { capsuleId: context.capsuleId, capabilities: session?.capabilities, hop: 0, signal: control, resolveTimeoutMs: limits.connectTimeoutMs, ...budget }
    const outcome = await admit({ url, method, shown: url }, state.admission, hop)
    trace.admission(outcome, 0, false)
    addresses = outcome.addresses?.map((a) => ({
      address: a.address,
      class: a.class,
      ...(a.embedded.length > 0 ? { embedded: a.embedded.map((e) => ({ ...e })) } : {}),
    }))
    if (outcome.error) throw outcome.error
  } catch (error) {
    trace.failed(error)
  } finally {
    control.end()
  }
  const event = trace.finish(undefined, undefined)
  const { allowed, decidedBy, route, reason, detail, code, phase } = event
  const explanation: Explanation = { allowed, decidedBy }
  // Only the fields that have a value, as an event has them.
  Object.assign(explanation, Object.fromEntries(Object.entries({ route, reason, detail, code, phase, addresses }).filter(([, v]) => v !== undefined)))
  return explanation
}

/** The capsule's session; one made on first use for a caller that never registered the id. */
/** Ad hoc sessions kept at most; past it, the least recently made idle ones are released. */
const MAX_AD_HOC_SESSIONS = 256
/** Released registered sessions kept as tombstones at most (oldest forgotten first). */
const MAX_TOMBSTONES = 4096

/**
 * The capsule's session; one made on first use for a caller that never registered the id. A
 * registered session stays after its release as a tombstone: requests under that id are then
 * `cancelled`, never served without the capsule's manifest restriction.
 */
function sessionOf(state: SafeFetchState, capsuleId: string): CapsuleSession<StreamedResponse> {
  const existing = state.sessions.get(capsuleId)
  if (existing && (existing.registered || !existing.signal.aborted)) return existing
  const quotas = { quotas: state.quotas, manifestName: undefined }
  const session = new CapsuleSession<StreamedResponse>({ capsuleId, limits: state.limits, capabilities: undefined, ca: state.ca, registered: false, quotas })
  state.sessions.set(capsuleId, session)
  state.adHoc.delete(capsuleId)
  state.adHoc.add(capsuleId)
  for (const id of state.adHoc) {
    if (state.adHoc.size <= MAX_AD_HOC_SESSIONS) break
    const old = state.sessions.get(id)
    if (old && !old.idle) continue
    state.adHoc.delete(id)
    if (old) void releaseSession(state, old)
  }
  return session
}

function releaseSession(state: SafeFetchState, session: CapsuleSession<StreamedResponse>): Promise<void> {
  const id = session.capsuleId
  if (state.sessions.get(id) === session) {
    if (!session.registered) state.sessions.delete(id)
    else {
      state.tombstones.delete(id)
      state.tombstones.add(id)
      for (const old of state.tombstones) {
        if (state.tombstones.size <= MAX_TOMBSTONES) break
        state.tombstones.delete(old)
        if (state.sessions.get(old)?.signal.aborted) state.sessions.delete(old)
      }
    }
  }
  return session.release()
}

/** A buffered request on a session, in the wire shape or with the body as bytes (Extism's kernel HTTP), counted in flight until its event is recorded. */
function requestOn<R extends { status: number }>(
  state: SafeFetchState,
  session: CapsuleSession<StreamedResponse>,
  shape: ReplyShape<R>,
  input: unknown,
  signal?: AbortSignal,
  via?: RequestVia,
) {
  return session.track(bufferedRequest(state, input, startRequest(state, session, 'request', signal, via), shape))
}

/** A stream start on a session, counted in flight until it has its head or its event. */
function streamOn(state: SafeFetchState, session: CapsuleSession<StreamedResponse>, input: unknown, signal?: AbortSignal, via?: RequestVia) {
  return session.track(streamRequest(state, input, startRequest(state, session, 'stream', signal, via)))
}

function sessionApi(state: SafeFetchState, session: CapsuleSession<StreamedResponse>): SafeFetchSession {
  return {
    capsuleId: session.capsuleId,
    limits: session.limits,
    get openStreams() {
      return session.openStreams
    },
    request: (input, signal, via) => requestOn(state, session, bufferedReply, input, signal, via),
    requestBytes: (input, signal, via) => requestOn(state, session, bytesReply, input, signal, via),
    requestWire: (input, signal, via) => requestOn(state, session, wireReply, input, signal, via),
    stream: (input, signal, via) => streamOn(state, session, input, signal, via),
    openStream: (handle) => session.stream(handle),
    recordInvalid(kind, error, via) {
      const flight = startRequest(state, session, kind, undefined, via)
      flight.trace.refusedBy('validation', 'invalid request', error.message)
      failed(state, flight, CapsuleHostError.fromWire(error))
    },
    release: () => releaseSession(state, session),
  }
}

function registerSession(state: SafeFetchState, capsuleId: string, restriction?: CapsuleRestriction) {
  const existing = state.sessions.get(capsuleId)
  if (existing?.registered && !existing.signal.aborted) throw new TypeError(`capsule id "${capsuleId}" is already in use on this safe fetch`)
  const capabilities = restriction ? compileCapabilities(restriction.http) : undefined
  const quotaProblem = restriction?.quotas === undefined ? undefined : manifestQuotaProblem(restriction.quotas, 'quotas')
  if (quotaProblem) throw new TypeError(`registerCapsule: ${quotaProblem}`)
  const limits = restriction ? loweredLimits(state.limits, restriction.limits) : state.limits
  // An ad hoc session of the same id (requests made before the capsule was loaded) ends here.
  if (existing) void existing.release()
  state.adHoc.delete(capsuleId)
  state.tombstones.delete(capsuleId)
  const quotas = { quotas: withManifestQuota(state.quotas, restriction?.quotas), manifestName: restriction?.name }
  const session = new CapsuleSession<StreamedResponse>({ capsuleId, limits, capabilities, ca: state.ca, registered: true, quotas })
  state.sessions.set(capsuleId, session)
  return sessionApi(state, session)
}

/**
 * The guarded HTTP client every capsule request goes through: validation, gates, a checked and
 * pinned address, middleware, limits, an audit event per request. Throws a TypeError for a bad option.
 */
export function createSafeFetch(options: SafeFetchOptions = {}): SafeFetch {
  checkSafeFetchOptions(options)
  const limits = resolveLimits(options.limits)
  const extraCa = options.tls?.ca === undefined ? [] : Array.isArray(options.tls.ca) ? options.tls.ca : [options.tls.ca]
  const sessions = new Map<string, CapsuleSession<StreamedResponse>>()
  const audit = new AuditLog(options.auditStream ? [options.auditStream] : [])
  const telemetry = createTelemetry(options.telemetry)
  if (options.onRequest) audit.on('request', options.onRequest)
  const state: SafeFetchState = {
    limits,
    maxRedirects: options.maxRedirects ?? 0,
    admission: {
      keeper: { rules: compileRules(options.rules), policy: options.policy, gates: [...(options.gates ?? [])] },
      resolver: safeFetchResolver(options),
      addressPolicy: createAddressPolicy(options.addressPolicy),
      middleware: middlewareList(options.middleware, 'middleware'),
    },
    audit,
    onError: options.onError,
    sessions,
    ca: extraCa.length === 0 ? undefined : [...rootCertificates, ...(extraCa as Array<string | Buffer>)],
    requests: 0,
    adHoc: new Set(),
    tombstones: new Set(),
    quotas: compileQuotas(options.quotas),
    guard: undefined,
    quotaStore: options.quotaStore,
    observer: telemetry,
  }
  return {
    limits,
    telemetry,
    audit,
    request: (input, context) => requestOn(state, sessionOf(state, context.capsuleId), bufferedReply, input, context.signal),
    stream: (input, context) => streamOn(state, sessionOf(state, context.capsuleId), input, context.signal),
    explain: (input, context) => explainRequest(state, input, context),
    registerCapsule: (capsuleId, restriction) => registerSession(state, capsuleId, restriction),
    releaseCapsule: async (capsuleId) => {
      const session = sessions.get(capsuleId)
      if (session) await releaseSession(state, session)
    },
    close: async () => {
      await Promise.all([...sessions.values()].map((session) => releaseSession(state, session)))
      audit.close()
    },
  }
}
