// createSafeFetch: assembles validation, gates, the safe resolver and the pinned terminal into one API.
import { CapsuleHostError, isCapsuleHostError, wireErrorOf, type ErrorCode, type TimeoutPhase, type WireError } from './errors.js'
import { decideHop, isGateRefusal, type Admission } from './fetch/admit.js'
import { exchange, hostBudget } from './fetch/exchange.js'
import { cancelledBy } from './fetch/host-deadline.js'
import { prepareRequest, type Mode, type PreparedRequest } from './fetch/prepare.js'
import type { Policy } from './gate/decide.js'
import { compileRules, type Rule } from './gate/rules.js'
import { compileCapabilities, type Capabilities } from './gate/capabilities.js'
import type { SecurityGate } from './gate/types.js'
import { resolveLimits, type Limits } from './limits.js'
import { createAddressPolicy, type AddressPolicyOptions } from './net/address-policy.js'
import { checkSafeFetchOptions } from './safe-fetch-options.js'
import { CapsuleClients } from './net/capsule-clients.js'
import { readAll } from './net/dispatch-hop.js'
import type { AddressClass } from './net/address-table.js'
import { checkIntegrity } from './net/integrity.js'
import { headerObject, type HeaderList } from './net/headers.js'
import { describeAddresses, systemResolver, type Resolver } from './net/resolve.js'
import { parseRequest } from './wire/parse.js'
import { redactedUrl } from './url/normalise.js'
import { AuditLog, type AuditEvent, type AuditListener, type AuditSink } from './audit.js'
import { middlewareList } from './middleware/compose.js'
import type { MiddlewareOption } from './middleware/types.js'
import type { BufferedResponse } from './wire/schemas.js'

/** createSafeFetch's options. An unknown name or a wrong shape is a TypeError at creation, with a suggestion. */
export interface SafeFetchOptions {
  /** Origin rules (one or a list). A request must match one, or be allowed by `policy`. */
  rules?: Rule | readonly Rule[]
  /** Decides requests that no origin rule matched. */
  policy?: Policy
  /** Host gates; every one must allow. */
  gates?: readonly SecurityGate[]
  /** Name to addresses. Default: the system resolver, every address. */
  resolver?: Resolver
  /** `unsafeAllow`: CIDRs exempted from the address blocklist (`allow` is its deprecated alias). */
  addressPolicy?: AddressPolicyOptions
  tls?: { ca?: string | Buffer | ReadonlyArray<string | Buffer> }
  limits?: Partial<Limits>
  /** The most redirects a request may ask to follow. Default 0: a 3xx goes back to the capsule. */
  maxRedirects?: number
  /** Called once per request or stream (at its end), allowed or refused. Same as `audit.on('request', ...)`. */
  onRequest?: AuditListener
  /** Also write every audit event as one JSON line to this stream (for example process.stderr). */
  auditStream?: AuditSink
  /** Global middleware (one or a list), run before origin and route middleware on every hop. */
  middleware?: MiddlewareOption
}

/** One request's outcome (the audit event). */
export type RequestEvent = AuditEvent

const REFUSALS: ReadonlySet<ErrorCode> = new Set(['invalid_request', 'denied', 'blocked_address', 'redirect_denied', 'stream_limit'])

/** What one request learned on its way, for its audit event. */
interface Trace {
  requestId: string
  method?: string
  url?: string
  decidedBy?: string
  redirects?: number
  addressClass?: string
  bytesOut?: number
  bytesIn?: number
}


export interface RequestContext {
  capsuleId: string
  signal?: AbortSignal
}

export type ErrorReply = { error: WireError }

/** An open streamed response. `read()` returns the next chunk, or `null` at the end. */
export interface StreamedResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly rawHeaders: HeaderList
  readonly finalUrl: string
  /**
   * The next chunk; with `maxBytes`, everything already received up to that many bytes at once.
   * Throws a CapsuleHostError (timeout, too_large, network, cancelled) when the body fails.
   */
  read(maxBytes?: number): Promise<Uint8Array | null>
  /** Stops the body and releases the socket; idempotent. */
  close(): void
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>
}

export interface Explanation {
  allowed: boolean
  code?: ErrorCode
  /** For `timeout`: `host` when a gate or the policy did not answer within `limits.hostTimeoutMs`. */
  phase?: TimeoutPhase
  reason?: string
  /** The rule, policy or gate that decided: `rules[0] api.example.com`, `policy`, `gate:name`, ... */
  decidedBy?: string
  addresses?: Array<{ address: string; class: AddressClass; embedded?: Array<{ address: string; class: AddressClass; form: string }> }>
}

export interface SafeFetch {
  /** The host limits in force (defaults merged with the options). */
  readonly limits: Readonly<Limits>
  /** One event per request or stream: `audit.on('request', fn)`, or `for await (const e of audit)`. */
  readonly audit: AuditLog
  /**
   * Records a request refused before it reached the safe fetch: by the runtime's stream table, or
   * by validation in the capsule's worker (`input` is then undefined). `kind` defaults to `stream`.
   */
  recordRefusal(
    input: unknown,
    context: RequestContext,
    refusal: { code: ErrorCode; reason: string; decidedBy: string; kind?: AuditEvent['kind'] },
  ): void
  /**
   * Sends a request and buffers the response. Never throws for anything a capsule can cause. The
   * request may be JSON bytes or text, a value, or (from a capsule's worker) a `CheckedRequest`,
   * whose `parse(maxBytes)` gives the validated request; a wrapper of a safe fetch sees all three.
   */
  request(request: unknown, context: RequestContext): Promise<BufferedResponse | ErrorReply>
  /** Sends a request and returns the head with a chunk reader, or the error. */
  stream(request: unknown, context: RequestContext): Promise<StreamedResponse | ErrorReply>
  /** The decision for a request, with its addresses, without opening any connection. */
  explain(request: unknown, context: RequestContext): Promise<Explanation>
  /**
   * Claims a capsule id for one loaded capsule until `releaseCapsule` (a runtime does this at
   * load; two runtimes sharing this safe fetch can never share an id). With a restriction, from
   * the capsule's manifest, it reaches only the hosts or origins in `http` (still subject to the
   * rules), under `limits` that can only be lower than the host's. Throws a TypeError for an id
   * already claimed or a bad entry.
   */
  registerCapsule(capsuleId: string, restriction?: { http: readonly string[]; limits?: Partial<Limits> }): void
  /** Aborts everything a capsule has in flight, closes its connections and forgets its restriction. */
  releaseCapsule(capsuleId: string): Promise<void>
  /** Releases every capsule. */
  close(): Promise<void>
}

function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw cancelledBy(signal)
}

/**
 * Waits for `work` (queued behind the capsule's other requests) but gives up as soon as the
 * signal aborts or the deadline passes. Work that starts later sees the signal and stops at once.
 */
async function whileWaiting<T>(work: Promise<T>, signal: AbortSignal, deadline: number, totalMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const stop = new Promise<never>((_, reject) => {
    onAbort = () => reject(cancelledBy(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    if (Number.isFinite(deadline)) {
      timer = setTimeout(
        () => reject(new CapsuleHostError('timeout', `the request took longer than ${totalMs} ms`, { phase: 'total' })),
        Math.max(0, deadline - performance.now()),
      )
    }
  })
  try {
    return await Promise.race([
      work.catch((error: unknown) => {
        // p-limit rejects queued work with an AbortError when the capsule is released.
        throw (error as Error)?.name === 'AbortError' ? cancelledBy(signal) : error
      }),
      stop,
    ])
  } finally {
    clearTimeout(timer)
    if (onAbort) signal.removeEventListener('abort', onAbort)
  }
}

/** The reply for a failure; a bug of ours, not the capsule's, is said without detail. */
function errorReply(error: unknown): ErrorReply {
  return { error: wireErrorOf(error) }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function encodeBody(body: Uint8Array, as: 'text' | 'base64'): string {
  if (as === 'base64') return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64')
  try {
    return utf8.decode(body)
  } catch {
    throw new CapsuleHostError('invalid_request', 'the response body is not valid UTF-8; ask for responseBody: "base64"')
  }
}

export function createSafeFetch(options: SafeFetchOptions = {}): SafeFetch {
  checkSafeFetchOptions(options)
  const limits = resolveLimits(options.limits)
  const maxRedirects = options.maxRedirects ?? 0
  /** What capsules with a manifest declared, and the limits they asked for (never above the host's). */
  const restrictions = new Map<string, { capabilities: Capabilities; limits: Readonly<Limits> }>()
  /** Capsule ids claimed by loaded capsules. */
  const registered = new Set<string>()
  /** Each capsule's streams not yet ended, so releasing it records their events. */
  const openStreams = new Map<string, Set<() => void>>()
  const admission: Admission = {
    keeper: { rules: compileRules(options.rules), policy: options.policy, gates: [...(options.gates ?? [])] },
    resolver: options.resolver ?? systemResolver,
    addressPolicy: createAddressPolicy(options.addressPolicy),
    middleware: middlewareList(options.middleware, 'middleware'),
    capabilitiesOf: (capsuleId) => restrictions.get(capsuleId)?.capabilities,
  }
  const clients = new CapsuleClients({
    ca: options.tls?.ca,
    connectTimeoutMs: limits.connectTimeoutMs,
    maxConcurrentRequests: (capsuleId) => (restrictions.get(capsuleId)?.limits ?? limits).maxConcurrentRequests,
  })

  /** Records the events of a capsule's streams that never ended, as cancelled. */
  const finishStreamsOf = (capsuleId: string) => {
    for (const finish of openStreams.get(capsuleId) ?? []) finish()
    openStreams.delete(capsuleId)
  }

  const audit = new AuditLog(options.auditStream ? [options.auditStream] : [])
  if (options.onRequest) audit.on('request', options.onRequest)
  let requests = 0
  const newTrace = (capsuleId: string): Trace => ({ requestId: `${capsuleId}#${++requests}` })

  const prepare = (input: unknown, mode: Mode, capsuleId: string, trace: Trace = newTrace(capsuleId)): PreparedRequest => {
    const own = restrictions.get(capsuleId)?.limits ?? limits
    const prepared = prepareRequest(parseRequest(input, own.maxRequestBytes), own, maxRedirects, mode)
    trace.method = prepared.method
    trace.url = redactedUrl(prepared.url)
    trace.bytesOut = prepared.body?.byteLength ?? 0
    return prepared
  }

  /** Records one outcome in the audit log. */
  function report(kind: AuditEvent['kind'], context: RequestContext, trace: Trace, started: number, outcome: { status: number; bytesIn: number } | { error: unknown; bytesIn?: number }) {
    const error = 'error' in outcome ? outcome.error : undefined
    const wire = error === undefined ? undefined : errorReply(error).error
    const own = isCapsuleHostError(error) ? error : undefined
    const addressClass = own?.addressClass ?? trace.addressClass
    audit.record({
      capsuleId: context.capsuleId,
      requestId: trace.requestId,
      kind,
      method: trace.method,
      url: trace.url,
      allowed: wire === undefined || !(REFUSALS.has(wire.code) || isGateRefusal(error)),
      decidedBy: own?.decidedBy ?? (own?.code === 'invalid_request' ? 'validation' : trace.decidedBy),
      ...(wire ? { code: wire.code, reason: own?.reason ?? wire.message } : { status: (outcome as { status: number }).status }),
      ...(wire?.phase ? { phase: wire.phase } : {}),
      ...(addressClass ? { addressClass } : {}),
      bytesIn: outcome.bytesIn ?? 0,
      bytesOut: trace.bytesOut ?? 0,
      redirects: trace.redirects ?? 0,
      durationMs: Math.round(performance.now() - started),
    })
  }

  /** The capsule's client, and one signal for the caller's abort and the capsule's release. */
  function clientFor(context: RequestContext) {
    const client = clients.for(context.capsuleId)
    const signal = context.signal ? AbortSignal.any([context.signal, client.released]) : client.released
    return { client, signal }
  }

  async function buffered(prepared: PreparedRequest, context: RequestContext, trace: Trace): Promise<BufferedResponse> {
    const started = performance.now()
    const { client, signal } = clientFor(context)
    // The total time limit starts now, so time spent waiting for a concurrency slot counts.
    const deadline = started + prepared.limits.totalTimeoutMs
    const { head, json, finalUrl, redirects, decidedBy, addressClass } = await whileWaiting(
      client.limit(() => {
        throwIfCancelled(signal)
        return exchange(prepared, context.capsuleId, client.agent, admission, signal, deadline)
      }),
      signal,
      deadline,
      prepared.limits.totalTimeoutMs,
    )
    const body = await readAll(head.body)
    Object.assign(trace, { decidedBy, redirects, addressClass, bytesIn: body.byteLength })
    if (prepared.integrity && !json) checkIntegrity(body, prepared.integrity)
    return {
      status: head.status,
      headers: headerObject(head.rawHeaders),
      rawHeaders: head.rawHeaders,
      ...(json ? { body: json.value, bodyEncoding: 'json' as const } : { body: encodeBody(body, prepared.responseBody), bodyEncoding: prepared.responseBody }),
      meta: { finalUrl: finalUrl.href, redirects, elapsedMs: Math.round(performance.now() - started) },
    }
  }

  return {
    async request(input, context) {
      const started = performance.now()
      const trace = newTrace(context.capsuleId)
      try {
        const reply = await buffered(prepare(input, 'buffered', context.capsuleId, trace), context, trace)
        report('request', context, trace, started, { status: reply.status, bytesIn: trace.bytesIn ?? 0 })
        return reply
      } catch (error) {
        report('request', context, trace, started, { error })
        return errorReply(error)
      }
    },

    async stream(input, context) {
      const started = performance.now()
      const trace = newTrace(context.capsuleId)
      try {
        const prepared = prepare(input, 'stream', context.capsuleId, trace)
        const { client, signal } = clientFor(context)
        const deadline = performance.now() + prepared.limits.totalTimeoutMs
        const { head, finalUrl, redirects, decidedBy, addressClass } = await exchange(prepared, context.capsuleId, client.agent, admission, signal, deadline)
        Object.assign(trace, { decidedBy, redirects, addressClass })
        const { body } = head
        // A stream's event is recorded once, at its end: read to the end, failed, or closed early.
        let reported = false
        const finish = (outcome: { error: unknown } | undefined) => {
          if (reported) return
          reported = true
          open.delete(onRelease)
          report('stream', context, trace, started, outcome ? { ...outcome, bytesIn: body.bytesRead } : { status: head.status, bytesIn: body.bytesRead })
        }
        const onRelease = () => finish({ error: new CapsuleHostError('cancelled', 'the capsule was released') })
        const open = openStreams.get(context.capsuleId) ?? new Set<() => void>()
        openStreams.set(context.capsuleId, open)
        open.add(onRelease)
        const read = async (maxBytes?: number) => {
          try {
            const chunk = await body.read(maxBytes)
            if (chunk === null) finish(undefined)
            return chunk
          } catch (error) {
            finish({ error })
            throw error
          }
        }
        const close = () => {
          body.cancel()
          finish(undefined)
        }
        return {
          status: head.status,
          headers: headerObject(head.rawHeaders),
          rawHeaders: head.rawHeaders,
          finalUrl: finalUrl.href,
          read,
          close,
          async *[Symbol.asyncIterator]() {
            try {
              for (let chunk = await read(); chunk !== null; chunk = await read()) yield chunk
            } finally {
              close()
            }
          },
        }
      } catch (error) {
        report('stream', context, trace, started, { error })
        return errorReply(error)
      }
    },

    async explain(input, context) {
      let prepared: PreparedRequest
      try {
        prepared = prepare(input, 'buffered', context.capsuleId)
      } catch (error) {
        const { code, message } = errorReply(error).error
        return { allowed: false, code, reason: message, decidedBy: 'validation' }
      }
      const { url, method, limits: effective } = prepared
      const budget = hostBudget(effective, performance.now() + effective.totalTimeoutMs)
      const hopContext = { capsuleId: context.capsuleId, hop: 0, signal: context.signal, resolveTimeoutMs: effective.connectTimeoutMs, ...budget }
      const { decision, resolution } = decideHop(url, method, admission, hopContext)
      try {
        const verdict = await decision
        if (!verdict.allowed) {
          const refused = verdict.code === 'timeout' ? { code: 'timeout' as const, phase: 'host' as const } : { code: 'denied' as const }
          return { allowed: false, ...refused, reason: verdict.reason, decidedBy: verdict.decidedBy }
        }
        const addresses = await resolution.addresses()
        const shown = addresses.map((a) => ({
          address: a.address,
          class: a.class,
          ...(a.embedded.length > 0 ? { embedded: a.embedded.map((e) => ({ ...e })) } : {}),
        }))
        const blocked = addresses.filter((a) => !admission.addressPolicy.isAllowed(a))
        if (blocked.length > 0) {
          return {
            allowed: false,
            code: 'blocked_address',
            reason: `${url.hostname} resolves to blocked addresses: ${describeAddresses(blocked)}`,
            decidedBy: 'address-policy',
            addresses: shown,
          }
        }
        return { allowed: true, decidedBy: verdict.decidedBy, addresses: shown }
      } catch (error) {
        const { code, message, phase } = errorReply(error).error
        const decidedBy = (isCapsuleHostError(error) && error.decidedBy) || (code === 'blocked_address' ? 'address-policy' : 'resolver')
        return { allowed: false, code, ...(phase ? { phase } : {}), reason: message, decidedBy }
      }
    },

    limits,
    audit,
    recordRefusal(input, context, refusal) {
      const trace = newTrace(context.capsuleId)
      const kind = refusal.kind ?? 'stream'
      try {
        if (input !== undefined) prepare(input, kind === 'request' ? 'buffered' : 'stream', context.capsuleId, trace)
      } catch {
        // The request was not valid either; the refusal stands on its own.
      }
      report(kind, context, trace, performance.now(), {
        error: new CapsuleHostError(refusal.code, refusal.reason, { decidedBy: refusal.decidedBy, reason: refusal.reason }),
      })
    },
    registerCapsule(capsuleId, restriction) {
      if (registered.has(capsuleId)) throw new TypeError(`capsule id "${capsuleId}" is already in use on this safe fetch`)
      if (restriction) {
        const capabilities = compileCapabilities(restriction.http)
        const lowered: Partial<Limits> = {}
        for (const [key, value] of Object.entries(restriction.limits ?? {}) as Array<[keyof Limits, number]>) {
          if (!(key in limits)) throw new TypeError(`limits.${key} is not a limit; the limits are ${Object.keys(limits).join(', ')}`)
          lowered[key] = Math.min(value, limits[key])
        }
        restrictions.set(capsuleId, { capabilities, limits: resolveLimits({ ...limits, ...lowered }) })
      }
      registered.add(capsuleId)
    },
    releaseCapsule: (capsuleId) => {
      registered.delete(capsuleId)
      restrictions.delete(capsuleId)
      finishStreamsOf(capsuleId)
      return clients.release(capsuleId)
    },
    close: () => {
      for (const capsuleId of [...openStreams.keys()]) finishStreamsOf(capsuleId)
      return clients.releaseAll()
    },
  }
}
