// How long a worker spins on a channel word before it sleeps: from its recent waits, and off when many calls are busy.

/** How many recent waits the median is taken over. */
const WINDOW = 16

/** The median of the last `WINDOW` waits, in milliseconds (Infinity before the first). */
export class RecentWaits {
  readonly #ring = new Float64Array(WINDOW)
  readonly #sorted = new Float64Array(WINDOW)
  #count = 0
  #next = 0

  add(ms: number): void {
    this.#ring[this.#next] = ms
    this.#next = (this.#next + 1) % WINDOW
    if (this.#count < WINDOW) this.#count++
  }

  median(): number {
    if (this.#count === 0) return Infinity
    const sorted = this.#sorted.subarray(0, this.#count)
    sorted.set(this.#ring.subarray(0, this.#count))
    sorted.sort()
    return sorted[this.#count >> 1]!
  }
}

/** The spin's bounds; the defaults are what the runtime uses (docs/runtime.md). */
export interface SpinLimits {
  /** The longest spin, in milliseconds; a wait whose recent median is beyond `capMs / factor` is not spun at all. */
  readonly capMs: number
  /** The spin lasts this many times the recent median wait. */
  readonly factor: number
  /** A gap this long (ms) between two looks at the clock means the thread was preempted: the cores are contended. */
  readonly preemptedMs: number
  /** After n spins in a row that timed out or were preempted, 2^n waits sleep at once (at most this many). */
  readonly backoffWaits: number
}

export const SPIN_LIMITS: SpinLimits = { capMs: 1, factor: 2, preemptedMs: 0.05, backoffWaits: 256 }

/** Which waits a worker spins on, each with its own history. */
export type WaitKind = 'reply' | 'call'

/** How a spin ended. */
export type SpinEnd = 'changed' | 'timeout' | 'preempted' | 'busy'

/**
 * The spin policy of one worker. `busy` is a word shared by every worker of the process: how many
 * worker and pool calls are in flight (wake.ts keeps it). With `cores` or more busy calls nobody spins, and
 * spins that time out or find their thread preempted (other work wants the cores) back off
 * exponentially.
 */
export class SpinPolicy {
  readonly #waits: Record<WaitKind, RecentWaits> = { reply: new RecentWaits(), call: new RecentWaits() }
  #backoff = 0
  #missesInARow = 0
  /** How spins ended, and waits that did not spin, for tests and measurements. */
  readonly counts: Record<SpinEnd | 'skipped', number> = { changed: 0, timeout: 0, preempted: 0, busy: 0, skipped: 0 }

  constructor(
    private readonly busy: Int32Array,
    private readonly cores: number,
    readonly limits: SpinLimits = SPIN_LIMITS,
  ) {}

  /** True while fewer calls are busy than there are cores. */
  allowed(): boolean {
    return Atomics.load(this.busy, 0) < this.cores
  }

  /** How long to spin on a wait of this kind now, in milliseconds (0: sleep at once). */
  budgetMs(kind: WaitKind): number {
    const median = this.#waits[kind].median()
    const budget = median === Infinity ? this.limits.capMs : median * this.limits.factor
    if (this.#backoff > 0 || budget > this.limits.capMs || !this.allowed()) {
      if (this.#backoff > 0) this.#backoff--
      this.counts.skipped++
      return 0
    }
    return budget
  }

  record(kind: WaitKind, ms: number): void {
    this.#waits[kind].add(ms)
  }

  /**
   * A spin that does not pay (timed out, or preempted) makes the next waits sleep at once, 2^n of
   * them after n such spins in a row (at most `backoffWaits`); one that pays resets the count. A
   * lone preemption (a GC helper thread, the hypervisor) costs a couple of sleeps; cores that stay
   * contended turn spinning off for `backoffWaits` waits within eight spins.
   */
  ended(end: SpinEnd): void {
    this.counts[end]++
    if (end === 'changed') this.#missesInARow = 0
    if (end !== 'timeout' && end !== 'preempted') return
    this.#missesInARow++
    this.#backoff = Math.min(this.limits.backoffWaits, 2 ** this.#missesInARow)
  }
}

/** How many loads between clock reads and busy checks while spinning. */
const CHECK_EVERY = 64

/**
 * Spins until `control[index]` is `wanted` or `orElse`, for at most `budgetMs`; stops early once
 * `policy` disallows spinning or the thread was preempted. Says how it ended (also to `policy`).
 */
export function spinUntil(control: Int32Array, index: number, wanted: number, orElse: number, budgetMs: number, policy: SpinPolicy): SpinEnd {
  let end: SpinEnd = 'changed'
  let last = performance.now()
  const until = last + budgetMs
  for (let i = 1; ; i++) {
    const value = Atomics.load(control, index)
    if (value === wanted || value === orElse) break
    if (i % CHECK_EVERY !== 0) continue
    const now = performance.now()
    if (!policy.allowed()) end = 'busy'
    else if (now - last > policy.limits.preemptedMs) end = 'preempted'
    else if (now > until) end = 'timeout'
    if (end !== 'changed') break
    last = now
  }
  policy.ended(end)
  return end
}
