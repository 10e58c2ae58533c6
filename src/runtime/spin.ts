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
  /** The longest spin, in milliseconds; a wait whose recent median is beyond half of it is not spun at all. */
  readonly capMs: number
  /** The spin lasts this many times the recent median wait. */
  readonly factor: number
}

export const SPIN_LIMITS: SpinLimits = { capMs: 1, factor: 2 }

/** Which waits a worker spins on, each with its own history. */
export type WaitKind = 'reply' | 'call'

/**
 * The spin policy of one worker. `busy` is a word shared by every worker of the process: how many
 * worker calls are in flight (wake.ts keeps it). With `cores` or more busy calls nobody spins.
 */
export class SpinPolicy {
  readonly #waits: Record<WaitKind, RecentWaits> = { reply: new RecentWaits(), call: new RecentWaits() }
  /** Spins started and spins that ended with the word changed, for tests and measurements. */
  readonly counts = { spins: 0, caught: 0, skipped: 0 }

  constructor(
    private readonly busy: Int32Array,
    private readonly cores: number,
    private readonly limits: SpinLimits = SPIN_LIMITS,
  ) {}

  /** True while fewer calls are busy than there are cores. */
  allowed(): boolean {
    return Atomics.load(this.busy, 0) < this.cores
  }

  /** How long to spin on a wait of this kind now, in milliseconds (0: sleep at once). */
  budgetMs(kind: WaitKind): number {
    const median = this.#waits[kind].median()
    const budget = median === Infinity ? this.limits.capMs : median * this.limits.factor
    if (budget > this.limits.capMs || !this.allowed()) {
      this.counts.skipped++
      return 0
    }
    return budget
  }

  record(kind: WaitKind, ms: number): void {
    this.#waits[kind].add(ms)
  }
}

/** How many loads between clock reads and busy checks while spinning. */
const CHECK_EVERY = 64

/**
 * Spins until `control[index]` is `wanted` or `orElse`, for at most `budgetMs` (and stops early
 * once `policy` disallows spinning). True when the word got there during the spin.
 */
export function spinUntil(control: Int32Array, index: number, wanted: number, orElse: number, budgetMs: number, policy: SpinPolicy): boolean {
  policy.counts.spins++
  const until = performance.now() + budgetMs
  for (let i = 1; ; i++) {
    const value = Atomics.load(control, index)
    if (value === wanted || value === orElse) {
      policy.counts.caught++
      return true
    }
    if (i % CHECK_EVERY === 0 && (performance.now() > until || !policy.allowed())) return false
  }
}
