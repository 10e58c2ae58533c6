// The in-process quota store: window counters and concurrency leases in memory, for one host process.
import { CONCURRENT_RETRY_MS, UNAVAILABLE_RETRY_MS, type QuotaAnswer, type QuotaCheck, type QuotaLease, type QuotaStore, type WindowQuota } from './types.js'

export interface MemoryQuotaStoreOptions {
  /** The clock (ms). Default `Date.now`; tests pass their own. */
  readonly now?: () => number
}

/** A fixed window: `used` units since `start`, until `start + windowMs`. */
interface Window {
  readonly start: number
  readonly windowMs: number
  used: number
}

/** Counters kept before expired ones are swept (a sweep runs when the maps grow past it). */
const SWEEP_AT = 10_000

/** The window that is running now, if any. */
function liveWindow(windows: Map<string, Window>, key: string, now: number): Window | undefined {
  const current = windows.get(key)
  return current && now < current.start + current.windowMs ? current : undefined
}

/** Counts `units` in the running window, or in a new one that starts now. */
function count(windows: Map<string, Window>, key: string, windowMs: number, now: number, units: number): void {
  const window = liveWindow(windows, key, now)
  if (window) window.used += units
  else windows.set(key, { start: now, windowMs, used: units })
}

/** The ms until the window ends, at least 1. */
function restOf(window: Window, now: number): number {
  return Math.max(1, window.start + window.windowMs - now)
}

/** The state of one memory store: windows by counter key, leases by check key. */
class MemoryQuotas {
  readonly windows = new Map<string, Window>()
  readonly leases = new Map<string, Map<string, number>>()
  closed = false
  /** The map size at which the next sweep runs: doubles while the live keys grow, so a sweep stays amortised O(1). */
  #sweepAt = SWEEP_AT

  constructor(readonly now: () => number) {}

  /** Live leases of a check key, the expired ones dropped. */
  liveLeases(key: string, now: number): Map<string, number> {
    let leases = this.leases.get(key)
    if (!leases) {
      leases = new Map()
      this.leases.set(key, leases)
    }
    for (const [id, expiry] of leases) if (expiry <= now) leases.delete(id)
    return leases
  }

  /** The first limit of the check that has no room, or undefined. */
  refusal(check: QuotaCheck, index: number, now: number): QuotaAnswer | undefined {
    const full = (quota: WindowQuota | undefined, suffix: string) => {
      if (!quota) return undefined
      const window = liveWindow(this.windows, check.key + suffix, now)
      return window && window.used >= quota.limit ? restOf(window, now) : undefined
    }
    const requests = full(check.requests, ':r')
    if (requests !== undefined) return { granted: false, index, kind: 'requests', retryAfterMs: requests }
    if (check.concurrent !== undefined && this.liveLeases(check.key, now).size >= check.concurrent) {
      return { granted: false, index, kind: 'concurrent', retryAfterMs: CONCURRENT_RETRY_MS }
    }
    const bytes = full(check.responseBytes, ':b')
    if (bytes !== undefined) return { granted: false, index, kind: 'responseBytes', retryAfterMs: bytes }
    return undefined
  }

  acquire(checks: readonly QuotaCheck[], lease: QuotaLease): QuotaAnswer {
    if (this.closed) return { granted: false, index: -1, kind: 'unavailable', retryAfterMs: UNAVAILABLE_RETRY_MS }
    const now = this.now()
    this.sweep(now)
    for (let i = 0; i < checks.length; i++) {
      const refused = this.refusal(checks[i]!, i, now)
      if (refused) return refused
    }
    for (const check of checks) {
      if (check.requests) count(this.windows, `${check.key}:r`, check.requests.windowMs, now, 1)
      if (check.concurrent !== undefined) this.liveLeases(check.key, now).set(lease.id, now + lease.ttlMs)
    }
    return { granted: true }
  }

  renew(checks: readonly QuotaCheck[], leaseId: string, ttlMs: number): void {
    const now = this.now()
    for (const check of checks) {
      const leases = this.leases.get(check.key)
      const expiry = leases?.get(leaseId)
      if (expiry !== undefined && expiry > now) leases!.set(leaseId, now + ttlMs)
    }
  }

  release(checks: readonly QuotaCheck[], leaseId: string, responseBytes: number): void {
    const now = this.now()
    for (const check of checks) {
      this.leases.get(check.key)?.delete(leaseId)
      if (check.responseBytes && responseBytes > 0) count(this.windows, `${check.key}:b`, check.responseBytes.windowMs, now, responseBytes)
    }
  }

  /** Drops ended windows and empty lease sets once the maps grow past the mark, so idle keys cost nothing. */
  sweep(now: number): void {
    if (this.windows.size + this.leases.size < this.#sweepAt) return
    for (const [key, window] of this.windows) if (now >= window.start + window.windowMs) this.windows.delete(key)
    for (const [key] of this.leases) if (this.liveLeases(key, now).size === 0) this.leases.delete(key)
    this.#sweepAt = Math.max(SWEEP_AT, 2 * (this.windows.size + this.leases.size))
  }
}

/** Quotas for one process (the default `quotaStore`): exact, synchronous, shared by nothing else. */
export function memoryQuotaStore(options: MemoryQuotaStoreOptions = {}): QuotaStore {
  if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('memoryQuotaStore: now must be a function returning ms')
  const quotas = new MemoryQuotas(options.now ?? Date.now)
  return {
    acquire: (checks, lease) => Promise.resolve(quotas.acquire(checks, lease)),
    release: (checks, leaseId, responseBytes) => {
      quotas.release(checks, leaseId, responseBytes)
      return Promise.resolve()
    },
    renew: (checks, leaseId, ttlMs) => {
      quotas.renew(checks, leaseId, ttlMs)
      return Promise.resolve()
    },
    close: () => {
      quotas.closed = true
      return Promise.resolve()
    },
  }
}
