// Keeps a pool worker's event loop awake for a short while after each message, so the next one is seen within a turn instead of after a wake-up.
import { RecentWaits } from './spin.js'

/** The linger's bounds; the defaults are what the pool uses (docs/runtime.md). */
export interface LingerLimits {
  /** The longest linger, in milliseconds; when the recent median gap is beyond `capMs / factor` the loop does not linger at all. */
  readonly capMs: number
  /** The linger lasts this many times the recent median gap between two messages. */
  readonly factor: number
}

export const LINGER_LIMITS: LingerLimits = { capMs: 1, factor: 2 }

/**
 * The linger of one pool worker. After each message in or out (a call, a host call, its reply, a
 * result) a setImmediate chain keeps the loop from blocking in its poll phase for twice the
 * median of the last 16 gaps from one such message to the next one in, at most `capMs`; a message the main thread posts meanwhile is taken
 * within one turn, not after the kernel wakes a sleeping thread (25-50 µs on a small VM). Nothing
 * lingers while as many calls are busy as there are cores (`busy`, the main thread's count of
 * worker and pool calls in flight): the cores are needed for work then.
 */
export class Linger {
  readonly #gaps = new RecentWaits()
  #immediate: NodeJS.Immediate | undefined
  #last = 0
  /** Turns of the chain, and messages after which the loop did not linger, for tests and measurements. */
  readonly counts = { ticks: 0, skipped: 0 }

  constructor(
    private readonly busy: Int32Array,
    private readonly cores: number,
    readonly limits: LingerLimits = LINGER_LIMITS,
  ) {}

  get running(): boolean {
    return this.#immediate !== undefined
  }

  /** How long the loop lingers after a message now, in milliseconds (0: it may sleep at once). */
  budgetMs(): number {
    if (Atomics.load(this.busy, 0) >= this.cores) return 0
    const median = this.#gaps.median()
    const budget = median === Infinity ? this.limits.capMs : median * this.limits.factor
    return budget > this.limits.capMs ? 0 : budget
  }

  /** A message arrived: its gap since the last message or post counts, and the loop lingers from now. */
  message(): void {
    const now = performance.now()
    if (this.#last > 0) this.record(now - this.#last)
    this.#active(now)
  }

  /** One gap from a message or post to the next message in, in milliseconds. */
  record(gapMs: number): void {
    this.#gaps.add(gapMs)
  }

  /** The worker posted a message (a result, a host call): the answer may come soon, so the loop lingers from now. */
  posted(): void {
    this.#active(performance.now())
  }

  #active(now: number): void {
    this.#last = now
    if (this.running) return
    if (this.budgetMs() > 0) this.#immediate = setImmediate(this.#tick)
    else this.counts.skipped++
  }

  readonly #tick = (): void => {
    this.counts.ticks++
    this.#immediate = performance.now() - this.#last < this.budgetMs() ? setImmediate(this.#tick) : undefined
  }
}
