// @ts-check
// bench/streams-many.mjs: many streams open at once (issue 10, point 6): 50 capsules x 4 streams, aggregate MiB/s and peak RSS growth against raw undici, plus one stream alone, per isolation mode.
//
//   node bench/streams-many.mjs        # after npm run build && npm run build:capsules; any Node >= 20.18 (Node 25+ adds inline)
//
// Optional environment knobs (the defaults are what the notes report):
//   BENCH_MANY_CAPSULES (50)  capsules (and, for raw undici, Agents) streaming at once
//   BENCH_MANY_STREAMS (4)    streams each, all open together (the default maxOpenStreams)
//   BENCH_MANY_MIB (8)        size of each of those bodies
//   BENCH_ONE_MIB (128)       size of the one-stream body
//   BENCH_MANY_RUNS (5)       measured runs; every run measures each path once, interleaved
//
// A capsule opens its streams with probe.hold_streams and reads them round-robin, one
// probe.read_handle call (http_stream_read, no size: one chunk) per read, so all of them stay open
// and the ones not being read queue what they may. Raw undici reads each body with on('data').
// The one-stream rows are probe.stream (http_stream_read_into, 256 KiB, FNV-1a in Wasm) against raw
// undici counting bytes and raw undici running the same FNV-1a in JS. Every loop is bounded by a
// count; it connects to nothing but the server it starts on 127.0.0.1; nothing asserts on time.

import { createServer } from 'node:http'
import os from 'node:os'
import { finished } from 'node:stream/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { Agent, request as undiciRequest } from 'undici'
import { createRuntime, createSafeFetch, hasJspi } from '../dist/index.js'
import { knob, median, loadAverage, runBench } from './common.mjs'

const MiB = 1024 * 1024
const CAPSULES = knob('BENCH_MANY_CAPSULES', 50)
const STREAMS = knob('BENCH_MANY_STREAMS', 4)
const MANY_BYTES = knob('BENCH_MANY_MIB', 8) * MiB
const ONE_BYTES = knob('BENCH_ONE_MIB', 128) * MiB
const RUNS = knob('BENCH_MANY_RUNS', 5)
const RSS_SAMPLE_MS = 5
const PROBE = new URL('../capsules/dist/probe.wasm', import.meta.url)

/** One 1 MiB block of a fixed pattern; bodies repeat it. */
const BLOCK = Buffer.alloc(MiB)
for (let i = 0; i < BLOCK.length; i++) BLOCK[i] = (i * 31 + (i >> 8)) & 0xff

/** `/big?bytes=N`: N bytes of BLOCK, written as the socket drains. @type {import('node:http').RequestListener} */
function upstream(req, res) {
  const total = Number(new URL(req.url ?? '/', 'http://upstream').searchParams.get('bytes'))
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
  let sent = 0
  const pump = () => {
    while (sent < total) {
      const piece = BLOCK.subarray(0, Math.min(BLOCK.length, total - sent))
      sent += piece.length
      if (!res.write(piece)) return void res.once('drain', pump)
    }
    res.end()
  }
  pump()
}

/**
 * A node:http server on 127.0.0.1 that keeps idle connections 60 s. Node's default (5 s) closes
 * one once its response is written: before this change a stream paused on its last chunk that
 * long then failed with `network` (and undici 7 asserts, exiting, when the response says
 * `connection: close`). A loaded machine gets there, so this lets an older build run to the end.
 * @param {import('node:http').RequestListener} handler
 */
async function listenKeptAlive(handler) {
  const server = createServer({ keepAliveTimeout: 60_000 }, handler)
  server.keepAliveTimeout = 60_000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
  const address = /** @type {import('node:net').AddressInfo} */ (server.address())
  return {
    port: address.port,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve(undefined)))),
  }
}

/** Forces a full GC when the flag can be set at run time, so each memory sample starts level. */
const collect = (() => {
  try {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc')
    if (typeof gc === 'function') return () => gc()
  } catch {}
  return () => {}
})()

/** Samples the process RSS until stopped; returns the peak growth over the start, in bytes. */
function rssSampler() {
  const start = process.memoryUsage.rss()
  let peak = start
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }
  const timer = setInterval(sample, RSS_SAMPLE_MS)
  return {
    stop() {
      clearInterval(timer)
      sample()
      return peak - start
    },
  }
}

/** 32-bit FNV-1a, byte at a time, the loop the probe runs in Wasm. */
function fnv1a(/** @type {number} */ hash, /** @type {Uint8Array} */ bytes) {
  let h = hash
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193)
  return h
}
const FNV_OFFSET = 0x811c9dc5 | 0

/** Raw undici: one body read with on('data'); returns the bytes counted. */
async function rawBody(/** @type {string} */ url, /** @type {Agent} */ agent, hash = false) {
  const { statusCode, body } = await undiciRequest(url, { dispatcher: agent })
  if (statusCode !== 200) throw new Error(`raw undici: status ${statusCode}`)
  let n = 0
  let h = FNV_OFFSET
  body.on('data', (/** @type {Buffer} */ chunk) => {
    n += chunk.length
    if (hash) h = fnv1a(h, chunk)
  })
  await finished(body)
  return n
}

/**
 * One capsule's share of the many-stream run: STREAMS streams opened together by probe.hold_streams,
 * read round-robin by probe.read_handle until each ends. Returns the bytes read.
 * @param {import('../dist/index.js').Capsule} capsule @param {string} url
 */
async function capsuleStreams(capsule, url) {
  const replies = /** @type {Array<{ handle?: string, status?: number, error?: unknown }>} */ (
    (await capsule.call('hold_streams', JSON.stringify({ request: { url }, count: STREAMS }))).json()
  )
  const open = replies.map((reply) => {
    if (reply.status !== 200 || reply.handle === undefined) throw new Error(`hold_streams: ${JSON.stringify(reply)}`)
    return reply.handle
  })
  let bytes = 0
  // Each read takes one chunk of at least 1 byte: the bound is generous and never reached.
  for (let turn = 0; open.length > 0 && turn < (STREAMS * MANY_BYTES) / 1024; turn++) {
    const at = turn % open.length
    const chunk = (await capsule.call('read_handle', open[at])).bytes()
    if (chunk.length === 0) open.splice(at, 1)
    bytes += chunk.length
  }
  return bytes
}

/** @typedef {{ name: string, mode: string, bytes: number, once: () => Promise<number>, rates: number[], rss: number[] }} Path */

/** @param {string} name @param {string} mode @param {number} bytes @param {() => Promise<number>} once @returns {Path} */
const path = (name, mode, bytes, once) => ({ name, mode, bytes, once, rates: [], rss: [] })

/** Runs every path once per run, interleaved, recording MiB/s and peak RSS growth. @param {Path[]} paths */
async function measure(paths) {
  for (const p of paths) await p.once() // warm-up
  for (let run = 0; run < RUNS; run++) {
    for (const p of paths) {
      collect()
      const rss = rssSampler()
      const t0 = performance.now()
      const bytes = await p.once()
      const seconds = (performance.now() - t0) / 1000
      p.rss.push(rss.stop())
      if (bytes !== p.bytes) throw new Error(`${p.name} (${p.mode}): read ${bytes} bytes, expected ${p.bytes}`)
      p.rates.push(p.bytes / MiB / seconds)
    }
  }
}

/** @param {Path[]} paths @param {number} [fnvIndex] the raw + FNV row, when there is one */
function report(paths, fnvIndex) {
  const raw = paths[0]
  const rawRate = median(raw.rates)
  const rawRss = median(raw.rss)
  const fnvRate = fnvIndex === undefined ? undefined : median(paths[fnvIndex].rates)
  const spread = (/** @type {number[]} */ v) => `${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)}`
  console.log('| path | mode | MiB/s median (min-max) | vs raw | ' + (fnvRate ? 'vs raw+FNV | ' : '') + 'peak RSS growth MiB median (min-max) | RSS vs raw |')
  console.log('|:--|:--|--:|--:|' + (fnvRate ? '--:|' : '') + '--:|--:|')
  for (const p of paths) {
    const rate = median(p.rates)
    const rss = median(p.rss)
    const cells = [
      p.name,
      p.mode,
      `${rate.toFixed(0)} (${spread(p.rates)})`,
      `${(rate / rawRate).toFixed(2)}x`,
      ...(fnvRate ? [`${(rate / fnvRate).toFixed(2)}x`] : []),
      `${(rss / MiB).toFixed(1)} (${spread(p.rss.map((r) => r / MiB))})`,
      rawRss > 0 ? `${(rss / rawRss).toFixed(2)}x` : 'n/a',
    ]
    console.log(`| ${cells.join(' | ')} |`)
  }
}

/** @param {Array<() => Promise<unknown> | unknown>} cleanup */
async function main(cleanup) {
  const modes = /** @type {Array<'worker' | 'inline'>} */ (hasJspi() ? ['inline', 'worker'] : ['worker'])
  console.log(`streams-many: Node ${process.version}, ${os.availableParallelism()} CPUs, load average ${loadAverage()}`)
  const server = await listenKeptAlive(upstream)
  cleanup.push(() => server.close())
  const rawBase = `http://127.0.0.1:${server.port}`
  const safeBase = `http://bench.test:${server.port}`
  const manyUrl = `/big?bytes=${MANY_BYTES}`
  const oneUrl = `/big?bytes=${ONE_BYTES}`

  const agents = Array.from({ length: CAPSULES }, () => new Agent({ keepAliveTimeout: 30_000 }))
  cleanup.push(() => Promise.all(agents.map((a) => a.close())))
  const newSafeFetch = () => {
    const fetch = createSafeFetch({
      rules: { host: 'bench.test', httpsOnly: false, port: server.port },
      resolver: async () => ['127.0.0.1'],
      addressPolicy: { allow: ['127.0.0.1/32'] },
    })
    cleanup.push(() => fetch.close())
    return fetch
  }
  const direct = newSafeFetch()
  const t0 = performance.now()
  const fleets = []
  for (const mode of modes) {
    const runtime = createRuntime({ fetch: newSafeFetch(), isolation: mode })
    cleanup.push(() => runtime.close())
    const capsules = []
    for (let i = 0; i < CAPSULES; i++) capsules.push(await runtime.load({ wasm: PROBE, id: `many-${mode}-${i}` }))
    fleets.push({ mode, capsules })
  }
  console.log(`loaded ${CAPSULES} probe capsules per mode (${modes.join(', ')}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

  /** The safe fetch's own stream(): each body read with read() (no size) by its own loop. */
  const directStream = async (/** @type {string} */ capsuleId, /** @type {string} */ url) => {
    const s = await direct.stream(JSON.stringify({ url }), { capsuleId })
    if ('error' in s) throw new Error(`safe fetch stream: ${JSON.stringify(s.error)}`)
    let n = 0
    for (let chunk = await s.read(); chunk !== null; chunk = await s.read()) n += chunk.byteLength
    return n
  }
  const sum = async (/** @type {Promise<number>[]} */ parts) => (await Promise.all(parts)).reduce((a, b) => a + b, 0)
  const all = CAPSULES * STREAMS * MANY_BYTES
  const each = (/** @type {(i: number) => Promise<number>} */ fn) => sum(Array.from({ length: CAPSULES }, (_, i) => fn(i)))

  const many = [
    path('raw undici, on(data)', '-', all, () => each((i) => sum(Array.from({ length: STREAMS }, () => rawBody(`${rawBase}${manyUrl}`, agents[i]))))),
    path('safe fetch stream(), read()', '-', all, () => each((i) => sum(Array.from({ length: STREAMS }, () => directStream(`direct-${i}`, `${safeBase}${manyUrl}`))))),
    ...fleets.map(({ mode, capsules }) => path('capsules, hold_streams + read_handle', mode, all, () => each((i) => capsuleStreams(capsules[i], `${safeBase}${manyUrl}`)))),
  ]
  console.log(`\n${CAPSULES} capsules x ${STREAMS} streams of ${MANY_BYTES / MiB} MiB, all open at once; ${RUNS} runs, interleaved`)
  await measure(many)
  report(many)

  const probeStream = async (/** @type {import('../dist/index.js').Capsule} */ capsule) => {
    const out = /** @type {{ status: number, bytes: number }} */ ((await capsule.call('stream', JSON.stringify({ url: `${safeBase}${oneUrl}` }))).json())
    if (out.status !== 200) throw new Error(`probe.stream: ${JSON.stringify(out)}`)
    return out.bytes
  }
  const one = [
    path('raw undici, on(data)', '-', ONE_BYTES, () => rawBody(`${rawBase}${oneUrl}`, agents[0])),
    path('raw undici + FNV-1a in JS', '-', ONE_BYTES, () => rawBody(`${rawBase}${oneUrl}`, agents[0], true)),
    path('safe fetch stream(), read()', '-', ONE_BYTES, () => directStream('direct-one', `${safeBase}${oneUrl}`)),
    ...fleets.map(({ mode, capsules }) => path('probe.stream (read_into 256 KiB, FNV-1a in Wasm)', mode, ONE_BYTES, () => probeStream(capsules[0]))),
  ]
  console.log(`\none stream of ${ONE_BYTES / MiB} MiB; ${RUNS} runs, interleaved`)
  await measure(one)
  report(one, 1)
  console.log(`load average at end: ${loadAverage()}. RSS growth: the whole process (server included), peak over the start of each run.`)
}

runBench(main)
