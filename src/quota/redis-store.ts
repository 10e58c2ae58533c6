// The Redis quota store: each acquire and release is one Lua script on one Redis, so any number of host processes share one quota exactly.
import type { Redis } from 'ioredis'
import { listenForAbort } from '../abort-listeners.js'
import { checkOptions, describeValue, type OptionCheck } from '../options.js'
import { MAX_TIMER_MS } from '../timers.js'
import { memoryQuotaStore } from './memory-store.js'
import { holdsLeases } from './quotas.js'
import { ACQUIRE_LUA, RELEASE_LUA, RENEW_LUA, acquireArguments, answerOf, releaseArguments, renewArguments } from './redis-scripts.js'
import { UNAVAILABLE_RETRY_MS, type QuotaAnswer, type QuotaCheck, type QuotaLease, type QuotaStore } from './types.js'

export interface RedisQuotaStoreOptions {
  /** The server, `redis://` or `rediss://` (TLS), connected to when the store is made. Default `redis://127.0.0.1:6379`. Not with `client`. */
  readonly url?: string
  /**
   * An ioredis client the host made (and closes; `close()` leaves it open); the store defines three
   * script commands on it (`capsuleHostQuotaAcquire`, `capsuleHostQuotaRelease`,
   * `capsuleHostQuotaRenew`). It must be made with `enableOfflineQueue: false` and
   * `autoResendUnfulfilledCommands: false` (a TypeError otherwise): a queued acquire would run after
   * the store answered `unavailable`, and a resent one would count twice.
   */
  readonly client?: Redis
  /** Put before every key the store writes (`<prefix><check key>:r`, `:c`, `:b`). Default `'capsule-host:'`. */
  readonly prefix?: string
  /**
   * While Redis cannot answer (down, slower than `timeoutMs`): `'deny'` (default, fail closed)
   * answers `unavailable`; `'local'` answers from a memory store private to this store, with the
   * same checks, so each process enforces the limits alone until Redis answers again (what it
   * counted there is never added to Redis).
   */
  readonly onUnavailable?: 'deny' | 'local'
  /** The longest an acquire waits for Redis, in ms (default 250; the acquire's signal can end it sooner), and `close()` for QUIT. */
  readonly timeoutMs?: number
}

const DEFAULTS = { url: 'redis://127.0.0.1:6379', prefix: 'capsule-host:', onUnavailable: 'deny', timeoutMs: 250 } as const

const UNAVAILABLE: QuotaAnswer = { granted: false, index: -1, kind: 'unavailable', retryAfterMs: UNAVAILABLE_RETRY_MS }

/** The names the three scripts get on the client (ioredis runs them by EVALSHA, loading them on NOSCRIPT). */
const ACQUIRE = 'capsuleHostQuotaAcquire'
const RELEASE = 'capsuleHostQuotaRelease'
const RENEW = 'capsuleHostQuotaRenew'
type ScriptClient = Redis & Record<typeof ACQUIRE | typeof RELEASE | typeof RENEW, (...args: (string | number)[]) => Promise<unknown>>

const redisUrl: OptionCheck = (value, path) => {
  if (typeof value !== 'string') return `${path} must be a string, not ${describeValue(value)}`
  if (!/^rediss?:\/\//i.test(value) || !URL.canParse(value)) return `${path} must be a redis:// or rediss:// URL, not ${JSON.stringify(value)}`
  return undefined
}

const OPTIONS = {
  url: redisUrl,
  client: (value, path) =>
    typeof (value as { defineCommand?: unknown } | null)?.defineCommand === 'function' ? undefined : `${path} must be an ioredis client, not ${describeValue(value)}`,
  prefix: (value, path) => (typeof value === 'string' ? undefined : `${path} must be a string, not ${describeValue(value)}`),
  onUnavailable: (value, path) => (value === 'deny' || value === 'local' ? undefined : `${path} must be "deny" or "local", not ${JSON.stringify(value)}`),
  timeoutMs: (value, path) =>
    Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_TIMER_MS ? undefined : `${path} must be a whole number of ms from 1 to ${MAX_TIMER_MS}, not ${JSON.stringify(value)}`,
} satisfies Record<keyof RedisQuotaStoreOptions, OptionCheck>

/** `work`'s value, or undefined when it rejects, takes longer than `ms`, or `signal` aborts first. */
function withinDeadline<T>(work: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  work.catch(() => {})
  if (signal?.aborted) return Promise.resolve(undefined)
  return new Promise((resolve) => {
    const done = (value: T | undefined) => {
      clearTimeout(timer)
      stopListening()
      resolve(value)
    }
    const giveUp = () => done(undefined)
    const timer = setTimeout(giveUp, ms)
    const stopListening = listenForAbort(signal, giveUp)
    work.then(done, giveUp)
  })
}

/** Adds the three scripts to a client. */
function withScripts(client: Redis): ScriptClient {
  client.defineCommand(ACQUIRE, { lua: ACQUIRE_LUA })
  client.defineCommand(RELEASE, { lua: RELEASE_LUA })
  client.defineCommand(RENEW, { lua: RENEW_LUA })
  return client as ScriptClient
}

/** Waits before reconnect attempt `times`: 50 ms more each time, at most 1 s, for as long as the store is open. */
const reconnectDelay = (times: number): number => Math.min(50 * times, 1000)

/**
 * A client of the store's own: loads ioredis (the first time only), and connects in the
 * background. Commands fail at once while it is not connected (no offline queue, no resend after a
 * dropped connection: a resent acquire would count twice), or after `timeoutMs` without a reply.
 */
async function ownClient(url: string, timeoutMs: number): Promise<{ client: ScriptClient; connected: Promise<void> }> {
  const { Redis } = await import('ioredis')
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    // No INFO round trip before the first command: a server still loading answers LOADING, which is `unavailable`.
    enableReadyCheck: false,
    commandTimeout: timeoutMs,
    retryStrategy: reconnectDelay,
  })
  // An outage shows as `unavailable` answers; without a listener ioredis prints every failed reconnect.
  client.on('error', () => {})
  return { client: withScripts(client), connected: client.connect().catch(() => {}) }
}

/** One store's state: its settings, its client, and its local fallback with the leases it granted. */
class RedisQuotas {
  readonly #client: Promise<{ client: ScriptClient; connected: Promise<void> }>
  readonly local: QuotaStore | undefined
  readonly localLeases = new Set<string>()
  closed = false

  constructor(
    readonly settings: { readonly url: string; readonly prefix: string; readonly timeoutMs: number; readonly hostClient: Redis | undefined },
    onUnavailable: 'deny' | 'local',
  ) {
    this.local = onUnavailable === 'local' ? memoryQuotaStore() : undefined
    const { hostClient, url, timeoutMs } = settings
    // Connecting starts now, so the first requests do not wait for it (importing capsule-host alone loads no ioredis).
    this.#client = hostClient ? Promise.resolve({ client: withScripts(hostClient), connected: Promise.resolve() }) : ownClient(url, timeoutMs)
    this.#client.catch(() => {})
  }

  /** The client, connected or trying. */
  async client(): Promise<ScriptClient> {
    const { client, connected } = await this.#client
    await connected
    return client
  }

  /** Runs the acquire script, unless the caller stopped waiting while the first connection was being made. */
  async remoteAcquire(checks: readonly QuotaCheck[], lease: QuotaLease, wait: { over: boolean }): Promise<QuotaAnswer | undefined> {
    const client = await this.client()
    if (wait.over) return undefined
    return answerOf(await client[ACQUIRE](...acquireArguments(this.settings.prefix, checks, lease)))
  }

  async remoteRelease(checks: readonly QuotaCheck[], leaseId: string, responseBytes: number): Promise<void> {
    const client = await this.client()
    await client[RELEASE](...releaseArguments(this.settings.prefix, checks, leaseId, responseBytes))
  }

  async acquire(checks: readonly QuotaCheck[], lease: QuotaLease, signal: AbortSignal): Promise<QuotaAnswer> {
    if (this.closed || signal.aborted) return UNAVAILABLE
    if (checks.length === 0) return { granted: true }
    const wait = { over: false }
    const answer = await withinDeadline(this.remoteAcquire(checks, lease, wait), this.settings.timeoutMs, signal)
    wait.over = true
    if (answer !== undefined) return answer
    this.forgetLease(checks, lease.id)
    if (this.local === undefined || this.closed || signal.aborted) return UNAVAILABLE
    const local = await this.local.acquire(checks, lease, signal)
    if (local.granted) this.localLeases.add(lease.id)
    return local
  }

  /**
   * After giving up on an acquire (no answer in time, or aborted) Redis may still run it, and the
   * caller, told `unavailable`, will not release. A release sent now follows the acquire on the same
   * connection, so Redis removes the lease right after adding it (the request stays counted).
   */
  forgetLease(checks: readonly QuotaCheck[], leaseId: string): void {
    if (holdsLeases(checks)) void withinDeadline(this.remoteRelease(checks, leaseId, 0), this.settings.timeoutMs)
  }

  /**
   * Ends the lease where it was granted: in the local store (Redis was told to forget it when the
   * store gave up on Redis), or in Redis, unless there is nothing to tell it (no concurrent limit,
   * no bytes to charge).
   */
  async release(checks: readonly QuotaCheck[], leaseId: string, responseBytes: number): Promise<void> {
    if (this.localLeases.delete(leaseId)) return this.local?.release(checks, leaseId, responseBytes)
    const chargesBytes = responseBytes > 0 && checks.some((check) => check.responseBytes !== undefined)
    if (!holdsLeases(checks) && !chargesBytes) return
    await withinDeadline(this.remoteRelease(checks, leaseId, responseBytes), this.settings.timeoutMs)
  }

  /** Extends a live lease where it was granted (locally, or in Redis); a lease that is gone stays gone. */
  async renew(checks: readonly QuotaCheck[], leaseId: string, ttlMs: number): Promise<void> {
    if (this.localLeases.has(leaseId)) return this.local?.renew?.(checks, leaseId, ttlMs)
    if (!holdsLeases(checks)) return
    const renewed = async () => {
      const client = await this.client()
      await client[RENEW](...renewArguments(this.settings.prefix, checks, leaseId, ttlMs))
    }
    await withinDeadline(renewed(), this.settings.timeoutMs)
  }

  /** Later calls answer `unavailable`; the client this store made says QUIT (or is dropped when Redis does not answer). */
  async close(): Promise<void> {
    this.closed = true
    await this.local?.close()
    const made = this.settings.hostClient === undefined ? this.#client : undefined
    if (made === undefined) return
    const { client } = await made.catch(() => ({ client: undefined }))
    if (client === undefined) return
    await withinDeadline(client.quit(), this.settings.timeoutMs)
    client.disconnect()
  }
}

/**
 * Quotas shared by every host process on one Redis: exact (one script checks and takes every
 * quota of a request atomically, on the server's clock), and fail closed by default when Redis is
 * down or slow. ioredis is loaded (and the connection made) when the store is created.
 */
export function redisQuotaStore(options: RedisQuotaStoreOptions = {}): QuotaStore {
  checkOptions('redisQuotaStore', options, OPTIONS)
  if (options.url !== undefined && options.client !== undefined) throw new TypeError('redisQuotaStore: give url or client, not both')
  const hostOptions = options.client?.options
  if (options.client !== undefined && (hostOptions?.enableOfflineQueue !== false || hostOptions?.autoResendUnfulfilledCommands !== false)) {
    // A queued acquire runs after the store answered `unavailable`, a resent one runs twice: the count is no longer exact.
    throw new TypeError('redisQuotaStore: client must be made with enableOfflineQueue: false and autoResendUnfulfilledCommands: false')
  }
  const settings = {
    url: options.url ?? DEFAULTS.url,
    prefix: options.prefix ?? DEFAULTS.prefix,
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    hostClient: options.client,
  }
  const quotas = new RedisQuotas(settings, options.onUnavailable ?? DEFAULTS.onUnavailable)
  return {
    acquire: (checks, lease, signal) => quotas.acquire(checks, lease, signal),
    release: (checks, leaseId, responseBytes) => quotas.release(checks, leaseId, responseBytes).catch(() => {}),
    renew: (checks, leaseId, ttlMs) => quotas.renew(checks, leaseId, ttlMs).catch(() => {}),
    close: () => quotas.close(),
  }
}
