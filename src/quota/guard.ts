// Takes a request's quotas from the store before it goes anywhere, and gives them back when it ends.
import { randomUUID } from 'node:crypto'
import { CapsuleHostError } from '../errors.js'
import { untilAborted } from '../fetch/request-control.js'
import type { RequestTrace } from '../fetch/trace.js'
import { checksFor, holdsLeases, type CompiledQuota } from './quotas.js'
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
    // A redirect hop takes only the checks whose key it changed (a perOrigin quota, a key of the origin or path).
    const applied = checksFor(quotas, request, held)
    const { checks } = applied
    if (checks.length === 0) return undefined
    const lifetime = totalTimeoutMs + LEASE_GRACE_MS
    const lease = { id: `${this.#token}:${++this.#leases}`, ttlMs: Math.min(lifetime, MAX_LEASE_MS) }
    const answer = await untilAborted(this.store.acquire(checks, lease, signal), signal, (late) => {
      if (late.granted) void this.store.release(checks, lease.id, 0)
    })
    if (!answer.granted) throw refusal(answer, applied.quotas, checks, trace)
    for (const check of checks) held.add(check.key)
    const renewal = lifetime > MAX_LEASE_MS && holdsLeases(checks) ? this.#renewing(checks, lease.id) : undefined
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
