// The quota contract: what host authors declare, what a quota store checks, and what it answers.

/** At most `limit` units (requests, or response bytes) in each window of `windowMs`. */
export interface WindowQuota {
  /** Units allowed in one window: a whole number >= 1. */
  readonly limit: number
  /**
   * The window's length in ms (1 to a year). A window starts with the first unit counted in it
   * (not on a clock boundary) and a new one starts with the first unit after it ends.
   */
  readonly windowMs: number
}

/** What a quota's key function sees of a request's hop: never its query, headers or body. */
export interface QuotaRequest {
  /** The capsule's load id (or the `capsuleId` host code passed). */
  readonly capsuleId: string
  /** The capsule's manifest name, when it was loaded with one. */
  readonly manifestName: string | undefined
  /** `request` (buffered) or `stream`. */
  readonly kind: 'request' | 'stream'
  /** The request's method, upper case as validated. */
  readonly method: string
  /** `scheme://host:port` of the hop's URL (the capsule's, or a redirect's), the port always written. */
  readonly origin: string
  /** The URL's host name, normalised (lower case, punycode, no trailing dot; IPv6 in brackets). */
  readonly host: string
  /** The URL's path without its query. */
  readonly path: string
}

/** One quota as a host author declares it (`SafeFetchOptions.quotas`). */
export interface QuotaRule {
  /**
   * Whose quota it is: `'capsule'` (one per capsule id), or a function of the request returning
   * the key (a tenant, a manifest name); a function returning `undefined` exempts the request.
   */
  readonly key: 'capsule' | ((request: QuotaRequest) => string | undefined)
  /** Its name on audit events and telemetry: `quota:<id>`. Default: its index in the list. */
  readonly id?: string
  /** Requests (buffered and streams alike; a redirect chain counts once, unless a hop changes the key) per window. */
  readonly requests?: WindowQuota
  /** Requests and streams in flight at once (a stream until it ends). */
  readonly concurrent?: number
  /** Response body bytes per window, charged as each request or stream ends. */
  readonly responseBytes?: WindowQuota
  /** One quota per origin of the key (`scheme://host:port`), instead of one for all origins. */
  readonly perOrigin?: boolean
}

/** One quota resolved for one request: the store key and the limits to check under it. */
export interface QuotaCheck {
  /** `JSON.stringify([quotaId, key])`, or `[quotaId, key, origin]` per origin; the store adds its own prefix. */
  readonly key: string
  readonly requests?: WindowQuota
  readonly concurrent?: number
  readonly responseBytes?: WindowQuota
}

/** Which limit refused a request, or `unavailable`: the store could not answer (fail closed). */
export type QuotaLimitKind = 'requests' | 'concurrent' | 'responseBytes' | 'unavailable'

export type QuotaAnswer =
  | { readonly granted: true }
  | {
      readonly granted: false
      /** The index in the checks of the quota that refused (-1 for `unavailable`). */
      readonly index: number
      readonly kind: QuotaLimitKind
      /** How long until a retry can succeed (the window's rest; a short hint for `concurrent` and `unavailable`). */
      readonly retryAfterMs: number
    }

/** A request's hold on its quotas: the lease id that takes a concurrency slot, and how long it lives unreleased. */
export interface QuotaLease {
  /** Unique across every process sharing the store. */
  readonly id: string
  /**
   * A lease never released (its process died) frees its slot after this long: whole ms, finite,
   * at most MAX_LEASE_MS. A request that may run longer has its lease renewed while it runs.
   */
  readonly ttlMs: number
}

/** The longest a lease lives unrenewed; a longer request (a stream) renews it every third of this. */
export const MAX_LEASE_MS = 60_000

/**
 * Where quota counters live. `acquire` is atomic across every process sharing the store: either
 * every check has room and one request (and one concurrency lease) is taken in each, or nothing
 * is taken. Implementations: `memoryQuotaStore()` (one process) and `redisQuotaStore()` (many).
 */
export interface QuotaStore {
  /** Never rejects: a store that cannot answer in time answers as its `onUnavailable` says. */
  acquire(checks: readonly QuotaCheck[], lease: QuotaLease, signal: AbortSignal): Promise<QuotaAnswer>
  /** Ends the lease and charges `responseBytes` to each check's byte window. Never rejects. */
  release(checks: readonly QuotaCheck[], leaseId: string, responseBytes: number): Promise<void>
  /**
   * Extends a lease that is still held to `ttlMs` from now (a lease already gone stays gone).
   * Never rejects. A store without it keeps each lease for its first ttl only.
   */
  renew?(checks: readonly QuotaCheck[], leaseId: string, ttlMs: number): Promise<void>
  /** Closes connections; later calls answer `unavailable`. */
  close(): Promise<void>
}

/** The `retryAfterMs` of a `concurrent` refusal: no window says when a slot frees, so a short hint. */
export const CONCURRENT_RETRY_MS = 100
/** The `retryAfterMs` of an `unavailable` refusal (the store did not answer). */
export const UNAVAILABLE_RETRY_MS = 1000
