// The Redis quota store's three Lua scripts and the argument lists and reply they exchange with it.
import { CONCURRENT_RETRY_MS, type QuotaAnswer, type QuotaCheck, type QuotaLease } from './types.js'

/**
 * The whole all-or-nothing acquire in one round trip, on the Redis server's clock (TIME), so the
 * hosts' clocks do not matter. KEYS: per check `:r` (request counter), `:c` (sorted set of leases
 * scored by expiry), `:b` (byte counter). ARGV: lease id, lease ttl ms, then per check the requests
 * limit, requests window ms, concurrent limit and bytes limit ('' when the check has none).
 * A lease's ttl is finite (at most MAX_LEASE_MS; a longer request renews it): a lease extends its
 * set's expiry, never shortens it.
 * First every check is looked at in order (requests, concurrent, responseBytes, as the memory store
 * does) and the first without room is the reply `{index, kind, retryAfterMs}`; only when every check
 * has room is one request counted and one lease added in each. Reply `{-1}` = granted.
 * A window of W ms expires W ms after its first unit. Redis keeps a key through the millisecond it
 * expires at (PTTL 0): such a key, or one without an expiry (PTTL -1), is a window that has ended
 * and is dropped, so a window ends at start + W as the memory store's does; its rest is its PTTL.
 */
export const ACQUIRE_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local lease, ttl = ARGV[1], tonumber(ARGV[2])
local checks = #KEYS / 3
-- A window's counter expires windowMs after its first unit. Redis keeps a key through the ms it
-- expires at, when the window has ended (PTTL 0): that key, or one without an expiry (-1), is dropped.
local function live(key)
  local left = redis.call('PTTL', key)
  if left > 0 then return left end
  if left ~= -2 then redis.call('DEL', key) end
  return nil
end
local function rest(key)
  return redis.call('PTTL', key)
end
local function full(key, limit)
  if limit == nil or live(key) == nil then return false end
  return tonumber(redis.call('GET', key)) >= limit
end
for i = 0, checks - 1 do
  local r, c, b, a = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3], 3 + 4 * i
  if full(r, tonumber(ARGV[a])) then return {i, 'requests', rest(r)} end
  local concurrent = tonumber(ARGV[a + 2])
  if concurrent ~= nil then
    redis.call('ZREMRANGEBYSCORE', c, '-inf', now)
    if redis.call('ZCARD', c) >= concurrent then return {i, 'concurrent', 0} end
  end
  if full(b, tonumber(ARGV[a + 3])) then return {i, 'responseBytes', rest(b)} end
end
for i = 0, checks - 1 do
  local r, c, a = KEYS[3 * i + 1], KEYS[3 * i + 2], 3 + 4 * i
  if ARGV[a] ~= '' and redis.call('INCR', r) == 1 then redis.call('PEXPIRE', r, ARGV[a + 1]) end
  if ARGV[a + 2] ~= '' then
    redis.call('ZADD', c, now + ttl, lease)
    if redis.call('PTTL', c) < ttl then redis.call('PEXPIRE', c, ttl) end
  end
end
return {-1}
`

/**
 * Ends a lease and charges response bytes. KEYS: per check `:c`, `:b`. ARGV: lease id, bytes, then
 * per check the bytes window ms ('' when the check counts no bytes). Removing a lease that is not
 * there (never granted, already released, expired) does nothing; a byte window starts at the first
 * bytes charged to it and expires W ms later (an ended one, PTTL 0 or -1, is dropped first, as in acquire).
 */
export const RELEASE_LUA = `
local lease, bytes = ARGV[1], tonumber(ARGV[2])
for i = 0, #KEYS / 2 - 1 do
  local c, b, window = KEYS[2 * i + 1], KEYS[2 * i + 2], ARGV[3 + i]
  redis.call('ZREM', c, lease)
  if window ~= '' and bytes > 0 then
    local left = redis.call('PTTL', b)
    if left == 0 or left == -1 then redis.call('DEL', b) end
    if redis.call('INCRBY', b, bytes) == bytes then redis.call('PEXPIRE', b, window) end
  end
end
return 0
`

/**
 * Renews a lease that is still live to `ttl` ms from now, on the server's clock. KEYS: the `:c`
 * set of each check with a concurrent limit. ARGV: lease id, ttl ms. A lease that is gone
 * (released, expired) stays gone.
 */
export const RENEW_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local lease, ttl = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS do
  local score = redis.call('ZSCORE', KEYS[i], lease)
  if score and tonumber(score) > now then
    redis.call('ZADD', KEYS[i], 'XX', now + ttl, lease)
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
return 0
`

/** An optional number as a script argument: '' when absent. */
const argument = (value: number | undefined): string => (value === undefined ? '' : String(value))

/** The store keys of one check: its request counter, its leases and its byte counter. */
export function checkKeys(prefix: string, check: QuotaCheck): readonly [string, string, string] {
  const base = prefix + check.key
  return [`${base}:r`, `${base}:c`, `${base}:b`]
}

/** A lease's ttl as the scripts take it: whole ms, at least 1. */
const leaseTtl = (ms: number): number => Math.max(1, Math.ceil(ms))

/** The acquire script's arguments: the key count, every check's three keys, then ARGV. */
export function acquireArguments(prefix: string, checks: readonly QuotaCheck[], lease: QuotaLease): (string | number)[] {
  const keys = checks.flatMap((check) => checkKeys(prefix, check))
  const limits = checks.flatMap((check) => [
    argument(check.requests?.limit),
    argument(check.requests?.windowMs),
    argument(check.concurrent),
    argument(check.responseBytes?.limit),
  ])
  return [keys.length, ...keys, lease.id, leaseTtl(lease.ttlMs), ...limits]
}

/** The renew script's arguments: the key count, the lease set of every check with a concurrent limit, then ARGV. */
export function renewArguments(prefix: string, checks: readonly QuotaCheck[], leaseId: string, ttlMs: number): (string | number)[] {
  const keys = checks.filter((check) => check.concurrent !== undefined).map((check) => checkKeys(prefix, check)[1])
  return [keys.length, ...keys, leaseId, leaseTtl(ttlMs)]
}

/** Bytes as a whole, non-negative count Redis' INCRBY takes. */
const wholeBytes = (bytes: number): number => (Number.isFinite(bytes) && bytes > 0 ? Math.floor(bytes) : 0)

/** The release script's arguments: the key count, every check's lease and byte keys, then ARGV. */
export function releaseArguments(prefix: string, checks: readonly QuotaCheck[], leaseId: string, responseBytes: number): (string | number)[] {
  const keys = checks.flatMap((check) => {
    const [, leases, bytes] = checkKeys(prefix, check)
    return [leases, bytes]
  })
  const windows = checks.map((check) => argument(check.responseBytes?.windowMs))
  return [keys.length, ...keys, leaseId, wholeBytes(responseBytes), ...windows]
}

const REFUSED_KINDS = new Set(['requests', 'concurrent', 'responseBytes'])

/** The acquire script's reply as an answer; undefined for a reply the script cannot have made. */
export function answerOf(reply: unknown): QuotaAnswer | undefined {
  if (!Array.isArray(reply)) return undefined
  const [index, kind, retryAfterMs] = reply as unknown[]
  if (index === -1 && reply.length === 1) return { granted: true }
  if (typeof index !== 'number' || index < 0 || typeof kind !== 'string' || !REFUSED_KINDS.has(kind) || typeof retryAfterMs !== 'number') return undefined
  const retry = kind === 'concurrent' ? CONCURRENT_RETRY_MS : retryAfterMs
  return { granted: false, index, kind: kind as 'requests' | 'concurrent' | 'responseBytes', retryAfterMs: retry }
}
