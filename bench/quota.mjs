// @ts-check
// bench/quota.mjs: what the quota check costs a safe fetch's request: no quotas, the memory store, Redis on loopback, as ratios.
//
// Every variant is a safe fetch on the same loopback upstream, in this process, measured in
// interleaved rounds (the order rotates each round) so that drift on a shared machine hits them
// alike. Each round gives every variant's p50 latency over QUOTA_BENCH_REQUESTS sequential
// buffered GETs; the table shows the median over rounds of each variant's p50, its ratio to the
// `no quotas` p50 of the same round (median, and min–max over rounds), and the p50 it adds.
//
// `no quotas again` is a second fetch without quotas: its ratio is the noise floor. The quota
// variants check one quota (requests, concurrent and responseBytes on the capsule) or two (that
// plus a tenant's requests quota), with limits the run never reaches, so every request is
// granted and released; for Redis also one requests-only quota (its release has nothing to tell
// Redis, so each request costs one script round trip instead of two). Redis is a redis-server this script starts on a free 127.0.0.1 port
// (no persistence) and stops; without a redis-server binary those rows are skipped with a note.
// A last line gives one bare round trip to that Redis (ioredis PING), to read the Redis rows by.
//
// Run: npm run build && node bench/quota.mjs   (knobs: QUOTA_BENCH_ROUNDS, QUOTA_BENCH_REQUESTS)

import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { delimiter, join } from 'node:path'
import { Redis } from 'ioredis'
import { createSafeFetch, memoryQuotaStore, redisQuotaStore } from '../dist/index.js'
import { knob, listen, median, runBench } from './common.mjs'
import { fixed, otherLoad, quantile, range, ratio, table } from './stats.mjs'

const ROUNDS = knob('QUOTA_BENCH_ROUNDS', 15)
const REQUESTS = knob('QUOTA_BENCH_REQUESTS', 400)
const WARMUP = 300
const BODY = Buffer.from(JSON.stringify({ items: [1, 2, 3], note: 'a small JSON answer' }))
const HOUR = 3_600_000

/** @type {import('../dist/index.js').QuotaRule} */
const CAPSULE_QUOTA = { key: 'capsule', id: 'capsule', requests: { limit: 1e9, windowMs: HOUR }, concurrent: 64, responseBytes: { limit: 1e15, windowMs: HOUR } }
/** @type {import('../dist/index.js').QuotaRule} */
const REQUESTS_QUOTA = { key: 'capsule', id: 'capsule', requests: { limit: 1e9, windowMs: HOUR } }
/** @type {import('../dist/index.js').QuotaRule} */
const TENANT_QUOTA = { key: () => 'tenant-a', id: 'tenant', requests: { limit: 1e9, windowMs: HOUR } }

/** /usr/bin/redis-server or the first on PATH. */
function redisServerBinary() {
  const candidates = ['/usr/bin/redis-server', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'redis-server'))]
  return candidates.find((path) => existsSync(path))
}

/** A redis-server on a free 127.0.0.1 port, ready when it says so; its URL. @param {string} binary @param {Array<() => unknown>} cleanup */
async function startRedis(binary, cleanup) {
  const probe = createServer()
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', () => resolve(undefined)))
  const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address())
  await new Promise((resolve) => probe.close(resolve))
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
  cleanup.push(() => new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : (child.once('exit', resolve), child.kill()))))
  await new Promise((resolve, reject) => {
    let log = ''
    child.stdout.on('data', (chunk) => {
      log += chunk
      if (log.includes('Ready to accept connections')) resolve(undefined)
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${log}`)))
  })
  return `redis://127.0.0.1:${port}`
}

/** The p50 of `count` sequential requests through `fetch`, in µs. @param {import('../dist/index.js').SafeFetch} fetch @param {string} url @param {number} count */
async function p50Micros(fetch, url, count) {
  const samples = new Float64Array(count)
  for (let i = 0; i < count; i++) {
    const began = performance.now()
    const reply = await fetch.request({ url }, { capsuleId: 'bench' })
    samples[i] = (performance.now() - began) * 1000
    if ('error' in reply) throw new Error(`the request failed: ${JSON.stringify(reply.error)}`)
  }
  return quantile(samples, 0.5)
}

/** The variants: name, store and quotas. @param {Array<() => unknown>} cleanup */
async function variantStores(cleanup) {
  /** @param {import('../dist/index.js').QuotaStore} store */
  const closing = (store) => (cleanup.push(() => store.close()), store)
  const variants = [
    { name: 'no quotas', store: 'none', quotas: [] },
    { name: 'no quotas again (noise floor)', store: 'none', quotas: [] },
    { name: 'memory store, 1 quota', store: 'memoryQuotaStore()', quotaStore: closing(memoryQuotaStore()), quotas: [CAPSULE_QUOTA] },
    { name: 'memory store, 2 quotas', store: 'memoryQuotaStore()', quotaStore: closing(memoryQuotaStore()), quotas: [CAPSULE_QUOTA, TENANT_QUOTA] },
  ]
  const binary = redisServerBinary()
  if (binary === undefined) return { variants, note: async () => 'no redis-server binary (apt-get install redis-server): the Redis rows are skipped' }
  const url = await startRedis(binary, cleanup)
  const redis = () => closing(redisQuotaStore({ url, prefix: `bench:${randomUUID()}:` }))
  variants.push(
    { name: 'Redis on loopback, 1 requests-only quota', store: 'redisQuotaStore({ url })', quotaStore: redis(), quotas: [REQUESTS_QUOTA] },
    { name: 'Redis on loopback, 1 quota', store: 'redisQuotaStore({ url })', quotaStore: redis(), quotas: [CAPSULE_QUOTA] },
    { name: 'Redis on loopback, 2 quotas', store: 'redisQuotaStore({ url })', quotaStore: redis(), quotas: [CAPSULE_QUOTA, TENANT_QUOTA] },
  )
  return { variants, note: async () => `Redis: a redis-server this run started at ${url} (no persistence); one bare round trip to it (ioredis PING) takes ${fixed(await pingMicros(url), 1)} µs (p50)` }
}

/** The p50 of a bare round trip to Redis (ioredis PING), in µs: what one network exchange with it costs here. @param {string} url */
async function pingMicros(url) {
  const client = new Redis(url)
  try {
    const samples = new Float64Array(2000)
    for (let i = 0; i < 200; i++) await client.ping()
    for (let i = 0; i < samples.length; i++) {
      const began = performance.now()
      await client.ping()
      samples[i] = (performance.now() - began) * 1000
    }
    return quantile(samples, 0.5)
  } finally {
    client.disconnect()
  }
}

runBench(async (cleanup) => {
  const upstream = await listen((_req, res) => res.end(BODY))
  cleanup.push(() => upstream.close())
  const url = `http://bench.test:${upstream.port}/items`
  const { variants, note } = await variantStores(cleanup)
  const fetches = variants.map(({ quotas, quotaStore }) => {
    const fetch = createSafeFetch({
      rules: { host: 'bench.test', httpsOnly: false, port: upstream.port },
      resolver: async () => ['127.0.0.1'],
      addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
      quotas,
      ...(quotaStore ? { quotaStore } : {}),
    })
    cleanup.push(() => fetch.close())
    return fetch
  })
  for (const fetch of fetches) await p50Micros(fetch, url, WARMUP)

  const load = otherLoad()
  /** @type {number[][]} p50 (µs) per variant, per round */
  const p50s = variants.map(() => [])
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < variants.length; k++) {
      const index = (round + k) % variants.length
      p50s[index].push(await p50Micros(fetches[index], url, REQUESTS))
    }
  }
  const ratios = p50s.map((rounds) => rounds.map((p50, round) => p50 / p50s[0][round]))
  const added = p50s.map((rounds) => rounds.map((p50, round) => p50 - p50s[0][round]))
  const rows = variants.map(({ name, store }, i) => [name, store, fixed(median(p50s[i]), 1), ratio(median(ratios[i])), range(ratios[i]), fixed(median(added[i]), 1)])

  console.log(`# quota check cost per request (Node ${process.version}, ${ROUNDS} rounds × ${REQUESTS} sequential GETs per variant, interleaved)\n`)
  console.log(table(['variant', 'quotaStore', 'p50 µs (median of rounds)', 'p50 ratio to no quotas (median)', 'ratio min–max over rounds', 'p50 µs added (median)'], rows))
  console.log(`\n${load()}\n${await note()}`)
})
