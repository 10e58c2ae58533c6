// The closed set of error codes and the one error type that carries them across every boundary.
import { safeText } from './safe-text.js'

/**
 * Every error a capsule can see has one of these codes. The list is the contract with capsule
 * authors (docs/errors.md); adding a code is a deliberate, reviewed change.
 */
export const ERROR_CODES = [
  'invalid_request',
  'denied',
  'blocked_address',
  'dns_failed',
  'connect_failed',
  'tls_failed',
  'timeout',
  'too_large',
  'stream_limit',
  'redirect_denied',
  'too_many_redirects',
  'integrity_mismatch',
  'network',
  'cancelled',
  /** A host quota (requests, concurrency or response bytes per window) is used up, or the quota store did not answer; `retryAfterMs` says when to retry. */
  'rate_limited',
  /** A bug on the host side (capsule-host's, a gate's, a middleware's): the capsule is told nothing more. */
  'internal',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

/** Which wait ran out, for `timeout` errors. Sent to the capsule beside the code. */
/**
 * `host` is the host's own step: a gate, the policy (with its `resolve()`) or middleware before
 * `next()` did not answer within `limits.hostTimeoutMs`.
 */
export const TIMEOUT_PHASES = ['connect', 'first_byte', 'idle', 'total', 'host'] as const
export type TimeoutPhase = (typeof TIMEOUT_PHASES)[number]

/** The error object of the wire protocol: `{ "error": WireError }`. */
export interface WireError {
  code: ErrorCode
  message: string
  /** Present on `timeout` errors only. */
  phase?: TimeoutPhase
  /** Present on `rate_limited` errors only: ms until a retry can succeed. */
  retryAfterMs?: number
}

export interface CapsuleHostErrorOptions {
  cause?: unknown
  phase?: TimeoutPhase
  /** For `rate_limited`: ms until a retry can succeed (sent to the capsule). */
  retryAfterMs?: number
  /** The rule, gate or check that refused the request (host-side only; never sent to a capsule). */
  decidedBy?: string
  /** The class of the address that decided (the blocked one), for the audit log. */
  addressClass?: string
  /** Host-side detail for the audit log (a TLS cause, a socket error); never sent to a capsule. */
  detail?: string
}

/**
 * The one error type of capsule-host. `message` is safe to show a capsule; internal detail
 * (resolved private addresses, socket errors) stays in `cause`, which never crosses the wire.
 * Match on `code`, never on the class or the message text.
 */
export class CapsuleHostError extends Error {
  readonly code: ErrorCode
  readonly phase: TimeoutPhase | undefined
  readonly retryAfterMs: number | undefined
  readonly decidedBy: string | undefined
  readonly addressClass: string | undefined
  readonly detail: string | undefined

  constructor(code: ErrorCode, message: string, options: CapsuleHostErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CapsuleHostError'
    this.code = code
    this.phase = options.phase
    this.retryAfterMs = options.retryAfterMs
    this.decidedBy = options.decidedBy
    this.addressClass = options.addressClass
    this.detail = options.detail
  }

  /** The `{ code, message }` object a capsule receives. */
  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message }
    if (this.phase !== undefined) wire.phase = this.phase
    if (this.retryAfterMs !== undefined) wire.retryAfterMs = this.retryAfterMs
    return wire
  }

  /** Rebuilds an error received as `{ code, message }` from another thread or process. */
  static fromWire(wire: WireError): CapsuleHostError {
    return new CapsuleHostError(wire.code, wire.message, { phase: wire.phase, retryAfterMs: wire.retryAfterMs })
  }
}

/** What a capsule is told about a bug on the host side (ours, a gate's, a middleware's): no detail. */
export const INTERNAL_WIRE_ERROR: Readonly<WireError> = Object.freeze({ code: 'internal', message: 'internal error while handling the request' })

/** The wire form of an error: a CapsuleHostError's own, anything else the internal error. */
export function wireErrorOf(error: unknown): WireError {
  return isCapsuleHostError(error) ? error.toWire() : { ...INTERNAL_WIRE_ERROR }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value)
}

/** True for errors raised by capsule-host itself, matched on shape so copies of the module agree. */
export function isCapsuleHostError(error: unknown): error is CapsuleHostError {
  return (
    error instanceof Error &&
    error.name === 'CapsuleHostError' &&
    isErrorCode((error as { code?: unknown }).code)
  )
}

/**
 * Host-side errors of the capsule runtime: loading and calling a capsule. They never reach a
 * capsule; a host author matches on `code`.
 */
export const CAPSULE_ERROR_CODES = [
  /** The module could not be read, compiled, capped or instantiated (missing import, bad shape). */
  'load_failed',
  /** The export does not exist. */
  'no_such_export',
  /** The capsule trapped, aborted or returned an error; `hostCode` is set when a host function failed it. */
  'capsule_failed',
  /** The call ran past `limits.callTimeoutMs`; the capsule was stopped. */
  'call_timeout',
  /** The capsule ran past `limits.memoryBytes`; it was stopped. */
  'memory_limit',
  /** The capsule was unloaded (or stopped by an earlier limit) before or during the call. */
  'unloaded',
  /** The requested isolation mode cannot run on this Node.js. */
  'unsupported',
  /** The call's output was larger than `limits.maxOutputBytes`; nothing of it was copied to the host. */
  'output_too_large',
  /** `capsule.call` was given an input that is neither bytes, text nor a JSON-serialisable value. */
  'invalid_input',
] as const

export type CapsuleErrorCode = (typeof CAPSULE_ERROR_CODES)[number]

/** The longest CapsuleError message; capsule text inside it is capped on its own at 4096 characters. */
const MAX_CAPSULE_ERROR_CHARS = 16 * 1024

/**
 * An error from loading or calling a capsule. Its message may quote the capsule (its error text,
 * its export names): control characters in it are always escaped, so it is safe to log or print.
 */
export class CapsuleError extends Error {
  readonly code: CapsuleErrorCode
  /** For `capsule_failed`: the wire error code of the host function that failed the call, if any. */
  readonly hostCode: ErrorCode | undefined
  /** The error text the capsule itself reported (error_set or log_error), as its raw bytes (at most 64 KiB). */
  readonly rawText: Uint8Array | undefined

  constructor(code: CapsuleErrorCode, message: string, options: { cause?: unknown; hostCode?: ErrorCode; rawText?: Uint8Array } = {}) {
    super(safeText(message, MAX_CAPSULE_ERROR_CHARS), options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CapsuleError'
    this.code = code
    this.hostCode = options.hostCode
    this.rawText = options.rawText
  }
}

/** The prefix of a host function failure that traps a capsule: `capsule-host timeout: ...`. */
export const HOST_FAILURE_PREFIX = 'capsule-host '

/** The message a host function throws to fail the capsule call with a wire error. */
export function hostFailureMessage(error: WireError): string {
  return `${HOST_FAILURE_PREFIX}${error.code}: ${error.message}`
}

/**
 * The error for a signal that aborted: its own CapsuleHostError reason (a request's control aborts
 * with `timeout`, phase total, at its deadline, or `cancelled` on release), or else `cancelled`.
 */
export function cancelledBy(signal: { readonly reason: unknown }): CapsuleHostError {
  return isCapsuleHostError(signal.reason)
    ? signal.reason
    : new CapsuleHostError('cancelled', 'the request was cancelled', { cause: signal.reason })
}
