// The WASI sleeps (poll_oneoff clocks) of a capsule on the host's thread: timers, not a blocked thread, that a stopped call wakes at once.

/** The longest delay one Node timer holds (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1

export class WasiSleeps {
  readonly #wakers = new Set<() => void>()

  /**
   * Resolves when the monotonic clock (process.hrtime) reaches `deadline`. `checkpoint` runs after
   * every wait and throws once the call is stopped, which rejects the sleep so the capsule unwinds.
   */
  async until(deadline: bigint, checkpoint: () => void): Promise<void> {
    for (let left = deadline - process.hrtime.bigint(); left > 0n; left = deadline - process.hrtime.bigint()) {
      await this.#wait(Math.min(Math.ceil(Number(left) / 1e6), MAX_TIMER_MS))
      checkpoint()
    }
  }

  /** Ends every wait now (the call was stopped or the capsule unloaded); their checkpoints then throw. */
  wakeAll(): void {
    for (const wake of [...this.#wakers]) wake()
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        this.#wakers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      this.#wakers.add(wake)
    })
  }
}
