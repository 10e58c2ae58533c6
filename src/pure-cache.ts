// A bounded cache of a pure function's results, keyed by the exact input string, least recently used out first.

/**
 * Remembers what `compute(key)` returned for the last `maxEntries` keys. Only for pure functions
 * whose results are frozen (they are shared by every caller): the answer for a key is the one
 * `compute` gives, whether it comes from the cache or not. A key longer than `maxKeyLength` is
 * never stored, so memory stays bounded by entries × key length. A `compute` that throws stores
 * nothing: a refusal is computed again each time, with its own error object.
 */
export class PureCache<V> {
  readonly #entries = new Map<string, V>()
  readonly #maxEntries: number
  readonly #maxKeyLength: number
  readonly #compute: (key: string) => V
  /** The key stored or moved last: the Map's last entry, while it is still in the Map. */
  #lastKey: string | undefined

  constructor(compute: (key: string) => V, maxEntries: number, maxKeyLength: number) {
    this.#compute = compute
    this.#maxEntries = maxEntries
    this.#maxKeyLength = maxKeyLength
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: string): V {
    const cached = this.#entries.get(key)
    if (cached !== undefined) {
      // Most recently used last: a Map iterates in insertion order. A hit on the last key used is
      // already there (the common case of a capsule asking the same thing again): no delete and set.
      if (key !== this.#lastKey) {
        this.#entries.delete(key)
        this.#entries.set(key, cached)
        this.#lastKey = key
      }
      return cached
    }
    const value = this.#compute(key)
    if (key.length <= this.#maxKeyLength && value !== undefined) {
      if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!)
      this.#entries.set(key, value)
      this.#lastKey = key
    }
    return value
  }

  clear(): void {
    this.#entries.clear()
    this.#lastKey = undefined
  }
}

/** Freezes a value and what its data properties hold; accessors (a lazily decoded body) are not read. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const property of Object.values(Object.getOwnPropertyDescriptors(value))) {
      if ('value' in property) deepFreeze(property.value)
    }
  }
  return value
}
