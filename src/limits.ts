// The host's limits: defaults, validation, and clamping a capsule's request options to them.
import { z } from 'zod'
import { TimerMs, TimerMsOrInfinity } from './timers.js'
import type { RequestOptions } from './wire/schemas.js'

const MiB = 1024 * 1024

/** Host ceilings. A capsule's `options` can only tighten them. */
export interface Limits {
  /** Largest request JSON a capsule may send, in bytes. */
  maxRequestBytes: number
  /** Largest buffered response body, in bytes; counted while it streams in. */
  maxResponseBytes: number
  /** Largest streamed response body, in bytes (Infinity: no cap; the idle timeout still applies). */
  maxStreamBytes: number
  /** Open streams per capsule. */
  maxOpenStreams: number
  /** Buffered requests in flight per capsule; more wait their turn. */
  maxConcurrentRequests: number
  /** Resolving the name plus TCP and TLS setup (the time of gates and middleware in between is not counted). */
  connectTimeoutMs: number
  /** From the request being written until the response head arrives. */
  firstByteTimeoutMs: number
  /** Longest wait for the next body chunk while the reader is waiting. */
  idleTimeoutMs: number
  /** Whole buffered request, redirects included. */
  timeoutMs: number
  /** Whole stream, from start to the last chunk (Infinity: none). */
  streamTimeoutMs: number
  /**
   * The longest each of the host's own steps may take on one hop: one gate's check, the policy
   * (its `resolve()` included), and the middleware's own time (not the network inside `next()`).
   */
  hostTimeoutMs: number
}

/** The host ceilings a safe fetch has when its `limits` option leaves them out (docs/api.md#limits). */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxRequestBytes: 1 * MiB,
  maxResponseBytes: 10 * MiB,
  maxStreamBytes: Number.POSITIVE_INFINITY,
  maxOpenStreams: 4,
  maxConcurrentRequests: 16,
  connectTimeoutMs: 30_000,
  firstByteTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  timeoutMs: 30_000,
  streamTimeoutMs: Number.POSITIVE_INFINITY,
  hostTimeoutMs: 10_000,
})

const positive = z.union([z.int().positive(), z.literal(Number.POSITIVE_INFINITY)])
/** The time limits: each must fit a Node timer; only the whole stream may have none (Infinity). */
export const TIME_LIMITS = {
  connectTimeoutMs: TimerMs,
  firstByteTimeoutMs: TimerMs,
  idleTimeoutMs: TimerMs,
  timeoutMs: TimerMs,
  streamTimeoutMs: TimerMsOrInfinity,
  hostTimeoutMs: TimerMs,
} as const

const LimitsSchema = z.strictObject({
  maxRequestBytes: z.int().positive(),
  maxResponseBytes: z.int().positive(),
  maxStreamBytes: positive,
  maxOpenStreams: z.int().positive(),
  maxConcurrentRequests: z.int().positive(),
  ...TIME_LIMITS,
})

/** Merges host overrides over the defaults; throws a TypeError naming the bad field. */
export function resolveLimits(overrides: Partial<Limits> = {}): Readonly<Limits> {
  const result = LimitsSchema.safeParse({ ...DEFAULT_LIMITS, ...overrides })
  if (!result.success) throw new TypeError(`invalid limits: ${z.prettifyError(result.error)}`)
  return Object.freeze(result.data)
}

/** The limits one request runs under, after the capsule's options were clamped to the host's. */
export interface EffectiveLimits {
  /** Limits.connectTimeoutMs, or the request's lower `connectTimeoutMs`. */
  connectTimeoutMs: number
  /** Limits.firstByteTimeoutMs, or the request's lower `firstByteTimeoutMs`. */
  firstByteTimeoutMs: number
  /** Limits.idleTimeoutMs, or the request's lower `idleTimeoutMs`. */
  idleTimeoutMs: number
  /** Infinity: no total deadline. */
  totalTimeoutMs: number
  /** Each host step's budget (the host's; a capsule cannot change it). */
  hostTimeoutMs: number
  /** The body cap: maxResponseBytes (buffered) or maxStreamBytes (stream), or the request's lower cap. */
  maxBodyBytes: number
  /** Redirects this request may follow: 0 unless it asked to follow, then at most the host's `maxRedirects`. */
  maxRedirects: number
}

/** The capsule's value when it asked for one, but never above the host's ceiling. */
const tighter = (requested: number | undefined, ceiling: number) =>
  requested === undefined ? ceiling : Math.min(requested, ceiling)

/**
 * The limits one request runs under: each of the host's ceilings, lowered by the capsule's request
 * `options` (a larger value is clamped, never an error); the buffered or the stream ceilings by `mode`.
 */
export function effectiveLimits(
  limits: Readonly<Limits>,
  maxRedirects: number,
  options: RequestOptions | undefined,
  mode: 'buffered' | 'stream',
): EffectiveLimits {
  const o = options ?? {}
  const redirects = o.redirect === 'follow' ? tighter(o.maxRedirects, maxRedirects) : 0
  return {
    connectTimeoutMs: tighter(o.connectTimeoutMs, limits.connectTimeoutMs),
    firstByteTimeoutMs: tighter(o.firstByteTimeoutMs, limits.firstByteTimeoutMs),
    idleTimeoutMs: tighter(o.idleTimeoutMs, limits.idleTimeoutMs),
    totalTimeoutMs: tighter(o.timeoutMs, mode === 'buffered' ? limits.timeoutMs : limits.streamTimeoutMs),
    hostTimeoutMs: limits.hostTimeoutMs,
    maxBodyBytes: tighter(o.maxResponseBytes, mode === 'buffered' ? limits.maxResponseBytes : limits.maxStreamBytes),
    maxRedirects: redirects,
  }
}
