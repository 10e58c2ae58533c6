// Takes a request's quotas from the store before it goes anywhere, and gives them back when it ends.
import { randomUUID } from 'node:crypto'
import { CapsuleHostError, cancelledBy } from '../errors.js'
import type { RequestTrace } from '../fetch/trace.js'
import { checksFor, type CompiledQuota } from './quotas.js'
import { MAX_LEASE_MS, type QuotaAnswer, type QuotaCheck, type QuotaRequest, type QuotaStore } from './types.js'

/** How much longer than the request's own total timeout an unreleased lease lives (its process died). */
export const LEASE_GRACE_MS = 5000

/** A request's hold on its quotas: released once, with the response bytes it received. */
export interface QuotaHold {
  release(responseBytes: number): void
}

/** A safe fetch's quotas: the store, and a token that makes its lease ids unique across processes. */
export class QuotaGuard {
  readonly #token = randomUUID()
  #leases = 0

  constructor(readonly store: QuotaStore) {}

  /**
   * Takes one request in every quota that applies, or throws `rate_limited` (recorded on the
   * trace). Gives up with the signal; a grant that arrives after that is given back.
   */
  async take(quotas: readonly CompiledQuota[], request: QuotaRequest, totalTimeoutMs: number, signal: AbortSignal, trace: RequestTrace, held = new Set<string>()): Promise<QuotaHold | undefined> {
    const all = checksFor(quotas, request)
    // A redirect hop takes only the checks whose key it changed (a perOrigin quota, a key of the origin or path).
    const fresh = all.checks.map((check, i) => ({ check, quota: all.quotas[i]! })).filter(({ check }) => !held.has(check.key))
    if (fresh.length === 0) return undefined
    const applied = { checks: fresh.map((f) => f.check), quotas: fresh.map((f) => f.quota) }
    const { checks } = applied
    const lease = { id: `${this.#token}:${++this.#leases}`, ttlMs: Math.min(totalTimeoutMs + LEASE_GRACE_MS, MAX_LEASE_MS) }
    const answer = await untilAborted(this.store.acquire(checks, lease, signal), signal, (late) => {
      if (late.granted) void this.store.release(checks, lease.id, 0)
    })
    if (!answer.granted) throw refusal(answer, applied.quotas, checks, trace)
    for (const check of checks) held.add(check.key)
    const renewal = totalTimeoutMs + LEASE_GRACE_MS > MAX_LEASE_MS && checks.some((check) => check.concurrent !== undefined) ? this.#renewing(checks, lease.id) : undefined
    let released = false
    return {
      release: (responseBytes) => {
        if (released) return
        released = true
        clearInterval(renewal)
        void this.store.release(checks, lease.id, responseBytes)
      },
    }
  }

  /** Renews a lease every third of its ttl while it is held, so a request longer than MAX_LEASE_MS keeps its slot. */
  #renewing(checks: readonly QuotaCheck[], leaseId: string): NodeJS.Timeout | undefined {
    const { store } = this
    if (!store.renew) return undefined
    const timer = setInterval(() => void store.renew!(checks, leaseId, MAX_LEASE_MS), MAX_LEASE_MS / 3)
    timer.unref()
    return timer
  }
}

/** The store's answer, or `cancelled`/`timeout` as soon as the signal aborts (`late` then gets the answer). */
function untilAborted(answer: Promise<QuotaAnswer>, signal: AbortSignal, late: (answer: QuotaAnswer) => void): Promise<QuotaAnswer> {
  if (signal.aborted) {
    void answer.then(late, () => {})
    return Promise.reject(cancelledBy(signal))
  }
  let stopped = false
  return new Promise<QuotaAnswer>((resolve, reject) => {
    const onAbort = () => {
      stopped = true
      reject(cancelledBy(signal))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    answer.then(
      (value) => (stopped ? late(value) : resolve(value)),
      (error: unknown) => reject(error),
    ).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

const LIMIT_WORDS = { requests: 'requests', concurrent: 'concurrent requests', responseBytes: 'response bytes' } as const

/** The `rate_limited` error for a refusal, recorded on the trace where it is decided. */
function refusal(answer: Extract<QuotaAnswer, { granted: false }>, quotas: readonly CompiledQuota[], checks: readonly QuotaCheck[], trace: RequestTrace): CapsuleHostError {
  const { retryAfterMs } = answer
  if (answer.kind === 'unavailable') {
    const message = `the quota store did not answer, so the request is refused; retry after ${retryAfterMs} ms`
    trace.refusedBy('quota-store', 'quota store unavailable', message)
    return new CapsuleHostError('rate_limited', message, { retryAfterMs, decidedBy: 'quota-store' })
  }
  const quota = quotas[answer.index]!
  const limit = answer.kind === 'concurrent' ? `${quota.concurrent} at once` : `${quota[answer.kind]!.limit} per ${quota[answer.kind]!.windowMs} ms`
  const message = `quota "${quota.id}" is used up (${LIMIT_WORDS[answer.kind]}: ${limit}); retry after ${retryAfterMs} ms`
  const decidedBy = `quota:${quota.id}` as const
  trace.refusedBy(decidedBy, 'over quota', `${message}; key ${checks[answer.index]!.key}`)
  return new CapsuleHostError('rate_limited', message, { retryAfterMs, decidedBy })
}
