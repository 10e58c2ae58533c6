// @ts-check
// bench/sections.mjs: the benchmark's measured sections: sequential latency (rounds until the ratios settle), concurrency, streaming, and loading capsules.

import { finished } from 'node:stream/promises'
import { Agent, request as undiciRequest } from 'undici'
import { median } from './common.mjs'
import { sequentialPaths } from './paths.mjs'
import { unreadStreamsGrowth } from './unread-streams.mjs'
import { collect, cpuMicros, fixed, otherLoad, quantile, range, ratio, relativeSpread, rssSampler, table } from './stats.mjs'

const MiB = 1024 * 1024

/** @typedef {import('./paths.mjs').Bench} Bench */
/** @typedef {import('./paths.mjs').SequentialPath & { p50: number[], p99: number[], cpu: number[], ratios: number[] }} MeasuredPath */

/** Runs `path` `count` times; its p50, p99 and CPU per request in µs. @param {import('./paths.mjs').SequentialPath} path @param {number} count */
async function sample(path, count) {
  const samples = new Float64Array(count)
  const cpu = cpuMicros()
  for (let i = 0; i < count; i++) {
    const t0 = performance.now()
    await path.once()
    samples[i] = (performance.now() - t0) * 1000
  }
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), cpu: (cpuMicros() - cpu) / count }
}

/** True once every capsule-host path's per-round ratio to raw undici has an interquartile spread within `tolerance`. @param {MeasuredPath[]} paths @param {number} tolerance */
function settled(paths, tolerance) {
  return paths.filter((p) => !p.name.startsWith('Extism')).every((p) => relativeSpread(p.ratios) <= tolerance)
}

/**
 * 1. Sequential buffered GETs: every path once per round, interleaved, for at least `minRounds`
 * and until the ratios settle (or `maxRounds`). Each row: the median over rounds of the round's
 * p50 and p99, the p50 ratio to raw undici of the same round, and CPU per request (every thread).
 * @param {Bench} bench @param {Array<() => unknown>} cleanup @param {{ perRound: number, warmup: number, minRounds: number, maxRounds: number, tolerance: number }} knobs
 */
export async function sequentialSection(bench, cleanup, knobs) {
  const paths = /** @type {MeasuredPath[]} */ ((await sequentialPaths(bench, cleanup)).map((p) => ({ ...p, p50: [], p99: [], cpu: [], ratios: [] })))
  const load = otherLoad()
  for (const path of paths) for (let i = 0; i < Math.min(knobs.warmup, path.iterations ?? knobs.warmup); i++) await path.once()
  let rounds = 0
  while (rounds < knobs.maxRounds && (rounds < knobs.minRounds || !settled(paths, knobs.tolerance))) {
    for (const path of paths) {
      const { p50, p99, cpu } = await sample(path, path.iterations ?? knobs.perRound)
      path.p50.push(p50)
      path.p99.push(p99)
      path.cpu.push(cpu)
    }
    for (const path of paths) path.ratios.push(path.p50[rounds] / paths[0].p50[rounds])
    rounds++
  }
  const rawCpu = median(paths[0].cpu)
  console.log(`\n1. sequential buffered GET of a 111-byte JSON body: ${rounds} rounds × ${knobs.perRound} requests a path (Extism runInWorker: fewer), interleaved; ${load()}`)
  console.log(
    table(
      ['path', 'mode', 'p50 µs', 'p99 µs', 'p50 vs raw', 'ratio range', 'CPU µs/req', 'CPU vs raw'],
      paths.map((p) => [p.name, p.mode, fixed(median(p.p50)), fixed(median(p.p99)), ratio(median(p.ratios)), range(p.ratios), fixed(median(p.cpu)), ratio(median(p.cpu) / rawCpu)]),
    ),
  )
  return paths
}

/**
 * Keeps `concurrency` loops of `once` busy for `ms`; the requests a second and the CPU per request.
 * @param {(loop: number) => Promise<void>} once @param {number} concurrency @param {number} ms
 */
async function throughput(once, concurrency, ms) {
  const end = performance.now() + ms
  const cpu = cpuMicros()
  const began = performance.now()
  let done = 0
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (performance.now() < end) {
        await once(loop)
        done++
      }
    }),
  )
  return { perSecond: done / ((performance.now() - began) / 1000), cpu: (cpuMicros() - cpu) / done }
}

/**
 * 2. Concurrency: 1, 4, 16 and 64 loops at once (for capsules: that many capsules, one call at a
 * time each), raw undici against the safe fetch and each isolation, interleaved, `repeats` times.
 * @param {Bench} bench @param {{ levels: number[], ms: number, repeats: number, maxWorkers: number }} knobs
 */
export async function concurrencySection(bench, knobs) {
  const top = Math.max(...knobs.levels)
  const input = JSON.stringify({ url: bench.safeUrl('/json') })
  /** @type {Array<{ name: string, mode: string, max: number, once: (loop: number) => Promise<void> }>} */
  const paths = [
    { name: 'raw undici request()', mode: '-', max: top, once: async () => void (await (await undiciRequest(bench.rawUrl('/json'), { dispatcher: bench.agent })).body.text()) },
    { name: 'safe fetch request()', mode: '-', max: top, once: async (loop) => void (await bench.stubFetch.request(input, { capsuleId: `bench-c${loop}` })) },
  ]
  for (const [mode, runtime] of bench.runtimes) {
    const max = mode === 'worker' ? Math.min(top, knobs.maxWorkers) : top
    const capsules = await Promise.all(Array.from({ length: max }, (_, i) => runtime.load({ wasm: bench.probe, id: `bench-conc-${mode}-${i}` })))
    paths.push({ name: 'probe.request (capsule)', mode, max, once: async (loop) => void (await capsules[loop].call('request', input)) })
  }
  /** @type {Map<string, { rates: number[], ratios: number[], cpu: number[] }>} */
  const cells = new Map()
  const load = otherLoad()
  for (let repeat = 0; repeat < knobs.repeats; repeat++) {
    for (const level of knobs.levels) {
      let raw = 0
      for (const [i, path] of paths.entries()) {
        if (level > path.max) continue
        const { perSecond, cpu } = await throughput(path.once, level, knobs.ms)
        if (i === 0) raw = perSecond
        const cell = cells.get(`${i}:${level}`) ?? { rates: [], ratios: [], cpu: [] }
        cells.set(`${i}:${level}`, cell)
        cell.rates.push(perSecond)
        cell.ratios.push(perSecond / raw)
        cell.cpu.push(cpu)
      }
    }
  }
  console.log(`\n2. concurrency: requests a second with 1, 4, 16 and 64 at once, ${knobs.ms} ms a cell, ${knobs.repeats} repeats interleaved (worker: at most ${knobs.maxWorkers} capsules); ${load()}`)
  const header = ['path', 'mode', ...knobs.levels.map((l) => `${l}: req/s (vs raw) CPU µs/req`)]
  const rows = paths.map((path, i) => [
    path.name,
    path.mode,
    ...knobs.levels.map((level) => {
      const cell = cells.get(`${i}:${level}`)
      return cell ? `${fixed(median(cell.rates), 0)} (${ratio(median(cell.ratios))}) ${fixed(median(cell.cpu))}` : '–'
    }),
  ])
  console.log(table(header, rows))
}

/** 32-bit FNV-1a, byte at a time: the loop the probe capsule runs in Wasm. @param {number} hash @param {Uint8Array} bytes */
function fnv1a(hash, bytes) {
  let h = hash
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193)
  return h
}

/** Raw undici reading a body with on('data'), counting bytes (and hashing them, like the probe, when asked). @param {Bench} bench @param {number} bytes */
async function rawStream(bench, bytes, hash = false) {
  const { statusCode, body } = await undiciRequest(bench.rawUrl(`/big?bytes=${bytes}`), { dispatcher: bench.agent })
  if (statusCode !== 200) throw new Error(`raw undici: status ${statusCode}`)
  let n = 0
  let h = 0x811c9dc5 | 0
  body.on('data', (/** @type {Buffer} */ chunk) => {
    n += chunk.length
    if (hash) h = fnv1a(h, chunk)
  })
  await finished(body)
  return n
}

/** The safe fetch's stream() read to the end, counting bytes. @param {Bench} bench @param {number} bytes @param {string} capsuleId */
async function safeStream(bench, bytes, capsuleId) {
  const s = await bench.stubFetch.stream(JSON.stringify({ url: bench.safeUrl(`/big?bytes=${bytes}`) }), { capsuleId })
  if ('error' in s) throw new Error(`safe fetch stream: ${JSON.stringify(s.error)}`)
  let n = 0
  for (let chunk = await s.read(); chunk !== null; chunk = await s.read()) n += chunk.byteLength
  s.close()
  return n
}

/** A capsule streaming a body through http_stream_read_into, hashing it in Wasm; the bytes it counted. @param {import('../dist/index.js').Capsule} capsule @param {Bench} bench @param {number} bytes */
async function capsuleStream(capsule, bench, bytes) {
  const out = /** @type {{ status: number, bytes: number }} */ ((await capsule.call('stream', JSON.stringify({ url: bench.safeUrl(`/big?bytes=${bytes}`) }))).json())
  if (out.status !== 200) throw new Error(`probe.stream: ${JSON.stringify(out)}`)
  return out.bytes
}

/**
 * Streams through each path, `runs` times interleaved: aggregate MiB/s and peak RSS growth.
 * @param {Array<{ name: string, mode: string, once: () => Promise<number> }>} paths @param {number} expected bytes a run @param {number} runs
 */
async function measureStreams(paths, expected, runs) {
  const results = paths.map(() => ({ rates: /** @type {number[]} */ ([]), rss: /** @type {number[]} */ ([]) }))
  for (let run = 0; run < runs; run++) {
    for (const [i, path] of paths.entries()) {
      collect()
      const rss = rssSampler()
      const t0 = performance.now()
      const bytes = await path.once()
      const seconds = (performance.now() - t0) / 1000
      results[i].rss.push(rss.stop())
      if (bytes !== expected) throw new Error(`${path.name} (${path.mode}): ${bytes} bytes, expected ${expected}`)
      results[i].rates.push(bytes / MiB / seconds)
    }
  }
  const rawRate = median(results[0].rates)
  const rawRss = median(results[0].rss)
  return table(
    ['path', 'mode', 'MiB/s', 'MiB/s each run', 'vs raw', 'peak RSS growth MiB', 'RSS vs raw'],
    paths.map((path, i) => {
      const { rates, rss } = results[i]
      return [path.name, path.mode, fixed(median(rates), 0), rates.map((r) => fixed(r, 0)).join(' / '), ratio(median(rates) / rawRate), fixed(median(rss) / MiB), rawRss > 0 ? ratio(median(rss) / rawRss) : '–']
    }),
  )
}

/**
 * 3. Streaming: one stream of `oneMiB` per path, then `capsules` × `perCapsule` streams at once
 * of `manyMiB` each (raw undici: that many concurrent bodies; capsules: each call streams one,
 * `perCapsule` calls at once on each capsule's own stream slots).
 * @param {Bench} bench @param {{ oneMiB: number, manyMiB: number, capsules: number, perCapsule: number, runs: number, manyModes: string[] }} knobs
 */
export async function streamingSection(bench, knobs) {
  const one = knobs.oneMiB * MiB
  /** @type {Map<string, import('../dist/index.js').Capsule>} */
  const single = new Map()
  for (const [mode, runtime] of bench.runtimes) single.set(mode, await runtime.load({ wasm: bench.probe, id: `bench-stream-${mode}` }))
  const load = otherLoad()
  const oneTable = await measureStreams(
    [
      { name: 'raw undici, on(data) counts bytes', mode: '-', once: () => rawStream(bench, one) },
      { name: 'safe fetch stream(), counts bytes', mode: '-', once: () => safeStream(bench, one, 'bench-stream') },
      { name: 'raw undici + FNV-1a in JS', mode: '-', once: () => rawStream(bench, one, true) },
      ...[...single].map(([mode, capsule]) => ({ name: 'probe.stream_many, 1 stream (counts bytes)', mode, once: () => heldStreams(capsule, bench.safeUrl(`/big?bytes=${one}`), 1) })),
      ...[...single].map(([mode, capsule]) => ({ name: 'probe.stream (FNV-1a in Wasm)', mode, once: () => capsuleStream(capsule, bench, one) })),
    ],
    one,
    knobs.runs,
  )
  console.log(`\n3a. one streamed GET of ${knobs.oneMiB} MiB a path, ${knobs.runs} runs interleaved; ${load()}`)
  console.log(oneTable)
  await manyStreams(bench, knobs)
  unreadStreams()
}

/** 3c. The RSS of open, unread streams, each side alone in fresh processes (bench/unread-streams.mjs). */
function unreadStreams() {
  const { streams, raw, safe, runs } = unreadStreamsGrowth(3)
  const each = (/** @type {number[]} */ xs) => xs.map((x) => fixed(x)).join(' / ')
  console.log(`\n3c. ${streams} streams open and unread (64 MiB bodies, 4 a session; a fresh process a run, 1 s to fill):`)
  console.log(`  RSS growth raw undici ${fixed(raw)} MiB (${each(runs.raw)}), safe fetch ${fixed(safe)} MiB (${each(runs.safe)}): ${ratio(safe / raw)} raw`)
}

/**
 * One capsule's share of the many-stream run: probe.stream_many opens `count` streams and reads
 * them in turn inside one call (http_stream_read_into, 256 KiB a read), as a capsule with several
 * downloads does; the ones not being read queue what they may meanwhile. The bytes it read.
 * @param {import('../dist/index.js').Capsule} capsule @param {string} url @param {number} count
 */
async function heldStreams(capsule, url, count) {
  const out = /** @type {{ status: number, bytes: number }} */ ((await capsule.call('stream_many', JSON.stringify({ request: { url }, count }))).json())
  if (out.status !== 200) throw new Error(`stream_many: ${JSON.stringify(out)}`)
  return out.bytes
}

/** 3b. Many capsules streaming at once (raw undici: one Agent a "capsule", as the safe fetch has). @param {Bench} bench @param {{ manyMiB: number, capsules: number, perCapsule: number, runs: number, manyModes: string[] }} knobs */
async function manyStreams(bench, knobs) {
  const each = knobs.manyMiB * MiB
  const streams = knobs.capsules * knobs.perCapsule
  const agents = Array.from({ length: knobs.capsules }, () => new Agent({ keepAliveTimeout: 30_000 }))
  const rawOne = async (/** @type {Agent} */ agent) => {
    const { body } = await undiciRequest(bench.rawUrl(`/big?bytes=${each}`), { dispatcher: agent })
    let n = 0
    body.on('data', (/** @type {Buffer} */ chunk) => void (n += chunk.length))
    await finished(body)
    return n
  }
  const sum = (/** @type {number[]} */ xs) => xs.reduce((a, b) => a + b, 0)
  const paths = [
    { name: `raw undici, ${streams} bodies at once`, mode: '-', once: async () => sum(await Promise.all(agents.flatMap((a) => Array.from({ length: knobs.perCapsule }, () => rawOne(a))))) },
  ]
  for (const mode of knobs.manyModes) {
    const runtime = bench.runtimes.get(mode)
    if (!runtime) continue
    const capsules = await Promise.all(Array.from({ length: knobs.capsules }, (_, i) => runtime.load({ wasm: bench.probe, id: `bench-many-${mode}-${i}` })))
    const url = bench.safeUrl(`/big?bytes=${each}`)
    paths.push({ name: `${knobs.capsules} capsules × ${knobs.perCapsule} streams`, mode, once: async () => sum(await Promise.all(capsules.map((c) => heldStreams(c, url, knobs.perCapsule)))) })
  }
  const load = otherLoad()
  const many = await measureStreams(paths, each * streams, knobs.runs)
  await Promise.all(agents.map((a) => a.close()))
  console.log(`\n3b. ${streams} streams of ${knobs.manyMiB} MiB open at once, ${knobs.runs} runs interleaved; ${load()}`)
  console.log(many)
}

/**
 * 4. Loading: `count` probe capsules per isolation on a fresh runtime (the module compiled once,
 * as a host loading many copies would), then one call each; time and RSS growth per capsule.
 * @param {Bench} bench @param {(mode: string) => import('../dist/index.js').Runtime} fresh @param {{ counts: Record<string, number[]> }} knobs
 */
export async function loadingSection(bench, fresh, knobs) {
  const rows = []
  const load = otherLoad()
  for (const [mode, counts] of Object.entries(knobs.counts)) {
    for (const count of counts) {
      const runtime = fresh(mode)
      await (await runtime.load({ wasm: bench.probe, id: `bench-load-${mode}-warm` })).unload()
      collect()
      const before = process.memoryUsage.rss()
      const t0 = performance.now()
      const capsules = await Promise.all(Array.from({ length: count }, (_, i) => runtime.load({ wasm: bench.probe, id: `bench-load-${mode}-${i}` })))
      const loadMs = performance.now() - t0
      const t1 = performance.now()
      const answers = await Promise.all(capsules.map((c) => c.call('echo', 'ok')))
      const callMs = performance.now() - t1
      if (answers.some((a) => a.text() !== 'ok')) throw new Error(`loading ${mode}: a capsule did not answer`)
      const rss = process.memoryUsage.rss() - before
      await runtime.close()
      rows.push([`${count} probe capsules`, mode, fixed(loadMs, 0), fixed(loadMs / count, 2), fixed(rss / count / MiB, 2), fixed(callMs, 0)])
    }
  }
  console.log(`\n4. loading capsules (after one warm-up load; the module is compiled once); ${load()}`)
  console.log(table(['what', 'mode', 'load ms in all', 'ms a capsule', 'RSS MiB a capsule', 'one call each, ms in all'], rows))
}
