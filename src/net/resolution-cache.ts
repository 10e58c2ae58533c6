// Keeps a resolver's answers as plain address strings per exact host name for their clamped TTL, bounded in count, with one lookup in flight per name.
import { checkOptions, describeValue, is, optionProblem, type OptionCheck } from '../options.js'
import { classifyAddress } from './classify.js'
import { answerAddresses, systemResolver, withCachedAnswers, type Resolver, type ResolverAnswer } from './resolve.js'

/** createSafeFetch's `dnsCache`: how one safe fetch's resolution cache is bounded and how long it keeps an answer. */
export interface ResolutionCacheOptions {
  /** Host names kept at most; past it, the least recently used goes. Default 1000. */
  readonly maxEntries?: number
  /** The floor: an answer is kept at least this long, whatever its TTL says. Default 1000 ms. */
  readonly minTtlMs?: number
  /** The ceiling: an answer is kept at most this long, whatever its TTL says. Default 300000 ms (5 min). */
  readonly maxTtlMs?: number
  /** How long an answer without a TTL is kept (getaddrinfo gives none), clamped to the floor and ceiling. Default 10000 ms. */
  readonly defaultTtlMs?: number
}

/** The cache's defaults (docs/security.md#the-resolution-cache says why). */
export const RESOLUTION_CACHE_DEFAULTS = Object.freeze({
  maxEntries: 1000,
  minTtlMs: 1_000,
  maxTtlMs: 300_000,
  defaultTtlMs: 10_000,
  /** A lookup still unanswered this long is no longer joined: the next caller starts its own. */
  joinWindowMs: 10_000,
})

/** The cache's options with what tests inject: a monotonic clock in ms and the join window. */
export interface ResolutionCacheSetup extends ResolutionCacheOptions {
  readonly now?: () => number
  readonly joinWindowMs?: number
}

type Settings = Required<ResolutionCacheSetup>

/** What is kept per name: the raw address strings and when they stop being served. Pure data. */
interface CacheEntry {
  readonly addresses: readonly string[]
  readonly expiresAt: number
}

/** A lookup in flight, shared by the callers that arrive while it runs (within the join window). */
interface PendingLookup {
  readonly answer: Promise<ResolverAnswer>
  readonly startedAt: number
}

/** A whole-number check: `least` is its lower bound, `what` names the unit in messages. */
const wholeAtLeast = (least: number, what: string): OptionCheck => (value, path) =>
  Number.isInteger(value) && (value as number) >= least
    ? undefined
    : `${path} must be a whole number${what} >= ${least}, not ${typeof value === 'number' ? String(value) : describeValue(value)}`

const milliseconds = wholeAtLeast(0, ' of milliseconds')
const CACHE_OPTIONS = { maxEntries: wholeAtLeast(1, ''), minTtlMs: milliseconds, maxTtlMs: milliseconds, defaultTtlMs: milliseconds }
const SETUP_OPTIONS = { ...CACHE_OPTIONS, now: is.function, joinWindowMs: milliseconds }

/** The floor above the ceiling is the one problem between fields. */
function rangeProblem(value: ResolutionCacheOptions, prefix: string): string | undefined {
  const { minTtlMs, maxTtlMs } = { ...RESOLUTION_CACHE_DEFAULTS, ...withoutUndefined(value) }
  return minTtlMs <= maxTtlMs ? undefined : `${prefix}minTtlMs (${minTtlMs}) must not be more than ${prefix}maxTtlMs (${maxTtlMs})`
}

const withoutUndefined = <T extends object>(value: T): Partial<T> =>
  Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>

/** The whole problem with a `dnsCache` option (false, or an object of the four fields), or undefined. */
export function resolutionCacheProblem(value: unknown, path = 'dnsCache'): string | undefined {
  if (value === false || value === undefined) return undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `${path} must be false or an object such as { maxEntries: 1000, maxTtlMs: 60000 }, not ${describeValue(value)}`
  }
  return optionProblem(value, CACHE_OPTIONS, `${path}.`) ?? rangeProblem(value, `${path}.`)
}

/** The settings in force; a bad setup is a TypeError, as a bad `dnsCache` is at createSafeFetch. */
function settingsOf(setup: ResolutionCacheSetup): Settings {
  checkOptions('createCachingResolver', setup, SETUP_OPTIONS)
  const problem = rangeProblem(setup, '')
  if (problem !== undefined) throw new TypeError(`createCachingResolver: ${problem}`)
  return { ...RESOLUTION_CACHE_DEFAULTS, now: () => performance.now(), ...withoutUndefined(setup) }
}

/** The addresses and TTL of an answer worth keeping: a non-empty list of strict addresses; undefined otherwise. */
function keepable(answer: unknown): { addresses: readonly string[]; ttlMs: unknown } | undefined {
  const addresses = answerAddresses(answer)
  if (!Array.isArray(addresses) || addresses.length === 0) return undefined
  if (!addresses.every((text) => typeof text === 'string' && classifyAddress(text) !== undefined)) return undefined
  const ttlMs = Array.isArray(answer) ? undefined : (answer as { ttlMs?: unknown }).ttlMs
  return { addresses: Object.freeze([...(addresses as string[])]), ttlMs }
}

/** One safe fetch's answers by exact host name (the normalised name the safe fetch resolves), least recently used first. */
class ResolutionCache {
  readonly #entries = new Map<string, CacheEntry>()
  readonly #pending = new Map<string, PendingLookup>()

  constructor(
    private readonly lookup: Resolver,
    private readonly settings: Settings,
  ) {}

  /** The fresh answer for exactly `hostname`, now the most recently used; an expired one is dropped. */
  fresh(hostname: string): readonly string[] | undefined {
    const entry = this.#entries.get(hostname)
    if (entry === undefined) return undefined
    this.#entries.delete(hostname)
    if (this.settings.now() >= entry.expiresAt) return undefined
    this.#entries.set(hostname, entry)
    return entry.addresses
  }

  /** The fresh answer, or the lookup in flight for the name, or a new lookup. */
  resolve(hostname: string): Promise<ResolverAnswer> {
    const cached = this.fresh(hostname)
    if (cached !== undefined) return Promise.resolve(cached)
    const pending = this.#pending.get(hostname)
    if (pending !== undefined && this.settings.now() - pending.startedAt < this.settings.joinWindowMs) {
      return pending.answer
    }
    return this.#start(hostname)
  }

  #start(hostname: string): Promise<ResolverAnswer> {
    const record = { startedAt: this.settings.now() } as { startedAt: number; answer: Promise<ResolverAnswer> }
    record.answer = Promise.resolve()
      .then(() => this.lookup(hostname))
      .then(
        (answer) => this.#settled(hostname, record, answer) ?? answer,
        (error: unknown) => {
          this.#settled(hostname, record)
          throw error
        },
      )
    this.#pending.delete(hostname)
    this.#pending.set(hostname, record)
    // Lookups that hang are forgotten oldest first (their callers still time out on their own).
    for (const name of this.#pending.keys()) {
      if (this.#pending.size <= this.settings.maxEntries) break
      this.#pending.delete(name)
    }
    return record.answer
  }

  /** Ends a lookup; only the latest of a name may store (an older, slower one never overwrites it). Returns what was kept. */
  #settled(hostname: string, record: PendingLookup, answer?: ResolverAnswer): readonly string[] | undefined {
    if (this.#pending.get(hostname) !== record) return undefined
    this.#pending.delete(hostname)
    return answer === undefined ? undefined : this.#store(hostname, answer)
  }

  /** Keeps a valid answer for its clamped TTL, evicting the least recently used past the bound; returns the kept copy. */
  #store(hostname: string, answer: unknown): readonly string[] | undefined {
    const kept = keepable(answer)
    if (kept === undefined) return undefined
    const { minTtlMs, maxTtlMs, defaultTtlMs, maxEntries } = this.settings
    const given = typeof kept.ttlMs === 'number' && kept.ttlMs >= 0 ? kept.ttlMs : defaultTtlMs
    const ttlMs = Math.min(maxTtlMs, Math.max(minTtlMs, given))
    if (ttlMs <= 0) return kept.addresses
    this.#entries.delete(hostname)
    this.#entries.set(hostname, { addresses: kept.addresses, expiresAt: this.settings.now() + ttlMs })
    for (const name of this.#entries.keys()) {
      if (this.#entries.size <= maxEntries) break
      this.#entries.delete(name)
    }
    return kept.addresses
  }
}

/**
 * `lookup` behind a bounded cache of its answers. The cache holds address strings only: the
 * caller (resolveAddresses, then checkAddresses) classifies and checks every answer on every use,
 * so a cached answer can never pass a policy that refuses one of its addresses. Failed lookups,
 * empty answers and answers with an invalid address are never kept.
 */
export function createCachingResolver(lookup: Resolver, setup: ResolutionCacheSetup = {}): Resolver {
  const cache = new ResolutionCache(lookup, settingsOf(setup))
  return withCachedAnswers((hostname) => cache.resolve(hostname), (hostname) => cache.fresh(hostname))
}

/** The system resolver (getaddrinfo, no TTL: `defaultTtlMs` applies) behind its own cache. */
export function createCachedSystemResolver(setup: ResolutionCacheSetup = {}): Resolver {
  return createCachingResolver(systemResolver, setup)
}

/**
 * The resolver of one safe fetch, with a cache of its own: the system resolver is cached unless
 * `dnsCache` is false; a host's `resolver` is cached only when `dnsCache` is an object.
 */
export function safeFetchResolver(options: { resolver?: Resolver; dnsCache?: ResolutionCacheOptions | false }): Resolver {
  const { resolver, dnsCache } = options
  if (dnsCache === false || (resolver !== undefined && dnsCache === undefined)) return resolver ?? systemResolver
  return createCachingResolver(resolver ?? systemResolver, dnsCache)
}
