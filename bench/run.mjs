// @ts-check
// bench/run.mjs: measures probe-capsule HTTP against raw undici and the bare safe fetch, on one 127.0.0.1 server, per isolation mode.
//
//   npm run bench                      # builds dist/ and the capsules, then runs this
//   node bench/run.mjs                 # after a build; any Node >= 20.18 (Node 25+ adds the inline mode)
//
// Optional environment knobs, for quick trial runs only (docs/benchmarks.md uses the defaults):
//   BENCH_ITERATIONS (2000)  sequential requests measured per path
//   BENCH_STREAM_MIB (256)   size of each streamed body
//   BENCH_STREAM_RUNS (5)    streamed bodies per path (the table shows the median and every run)
//
// Every loop is bounded by a count. It connects to nothing but the server it starts on
// 127.0.0.1, and closes every runtime, safe fetch, agent and the server before exiting.
// Nothing here asserts on time: the only checks are that every reply is correct.

import { readFileSync } from 'node:fs'
import os from 'node:os'
import { finished } from 'node:stream/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { Agent, request as undiciRequest } from 'undici'
import { CheckedRequest, createRuntime, createSafeFetch, hasJspi } from '../dist/index.js'
import { knob, listen, median, loadAverage, runBench } from './common.mjs'

const MiB = 1024 * 1024
const ITERATIONS = knob('BENCH_ITERATIONS', 2000)
const WARMUP = Math.min(300, ITERATIONS)
const ROUNDS = 4 // the sequential iterations are split into rounds, interleaving the paths
const STREAM_BYTES = knob('BENCH_STREAM_MIB', 256) * MiB
const STREAM_RUNS = knob('BENCH_STREAM_RUNS', 5)
const STREAM_WARMUP_BYTES = Math.min(32 * MiB, STREAM_BYTES)
const RSS_SAMPLE_MS = 5
const PROBE = new URL('../capsules/dist/probe.wasm', import.meta.url)

// ---------------------------------------------------------------------------------------------
// The upstream: one node:http server on 127.0.0.1, port 0.

/** The small JSON body of the sequential test (about 100 bytes). */
const JSON_BODY = Buffer.from(
  JSON.stringify({ id: 42, name: 'capsule-bench', ok: true, tags: ['alpha', 'beta', 'gamma'], score: 0.875, note: 'a small reply' }),
)

/** One 1 MiB block of a fixed pattern; streamed bodies repeat it. */
const BLOCK = Buffer.alloc(MiB)
for (let i = 0; i < BLOCK.length; i++) BLOCK[i] = (i * 31 + (i >> 8)) & 0xff

/** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
function upstream(req, res) {
  const url = new URL(req.url ?? '/', 'http://upstream')
  if (url.pathname === '/json') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_BODY.length })
    res.end(JSON_BODY)
    return
  }
  if (url.pathname === '/big') {
    const total = Number(url.searchParams.get('bytes'))
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
    return
  }
  res.writeHead(404)
  res.end('not found')
}

/** @returns {Promise<{ port: number, close(): Promise<void> }>} */
function startServer() {
  return listen(upstream)
}

/**
 * The given safe fetch, except that each capsule's session serves the `/big?bytes=N` stream from
 * memory, as fast as it is asked for (up to the reader's capacity per read, within one BLOCK),
 * with no socket and no safe-fetch work. A capsule on it measures the capsule boundary alone.
 * Everything else is the real session, which the runtime still releases as usual.
 * @param {import('../dist/index.js').SafeFetch} base
 * @returns {import('../dist/index.js').SafeFetch}
 */
function memorySource(base) {
  const fetch = Object.create(base)
  fetch.registerCapsule = (/** @type {string} */ id, /** @type {any} */ restriction) => {
    const session = base.registerCapsule(id, restriction)
    /** @type {Map<string, import('../dist/index.js').StreamedResponse>} */
    const streams = new Map()
    let nextHandle = 1
    return {
      capsuleId: session.capsuleId,
      limits: session.limits,
      get openStreams() {
        return streams.size
      },
      request: session.request,
      recordInvalid: session.recordInvalid,
      release: session.release,
      openStream: (/** @type {string} */ handle) => streams.get(handle),
      stream: async (/** @type {unknown} */ input) => {
        const handle = String(nextHandle++)
        const response = memoryStream(input, handle, () => streams.delete(handle))
        streams.set(handle, response)
        return response
      },
    }
  }
  return fetch
}

/**
 * A streamed response of the `/big?bytes=N` body from memory.
 * @param {unknown} input @param {string} handle @param {() => void} closed
 * @returns {import('../dist/index.js').StreamedResponse}
 */
function memoryStream(input, handle, closed) {
  // A worker capsule's request arrives checked (a CheckedRequest); an inline one as its bytes.
  const request = input instanceof CheckedRequest ? input.parse(Number.POSITIVE_INFINITY) : JSON.parse(new TextDecoder().decode(/** @type {Uint8Array} */ (input)))
  const url = new URL(request.url)
  const total = Number(url.searchParams.get('bytes'))
  let sent = 0
  const read = async (maxBytes = BLOCK.length) => {
    if (sent >= total) return null
    const at = sent % BLOCK.length
    const n = Math.min(maxBytes, BLOCK.length - at, total - sent)
    sent += n
    return BLOCK.subarray(at, at + n)
  }
  return {
    handle,
    status: 200,
    headers: { 'content-length': String(total) },
    rawHeaders: [['content-length', String(total)]],
    finalUrl: url.href,
    read,
    close() {
      sent = total
      closed()
    },
    async *[Symbol.asyncIterator]() {
      for (let chunk = await read(); chunk !== null; chunk = await read()) yield chunk
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring helpers.

/** Forces a full GC when the flag can be set at run time, so each memory sample starts level. */
const collect = (() => {
  try {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc')
    if (typeof gc === 'function') return () => gc()
  } catch {}
  return () => {}
})()

/** Samples the process RSS (main thread, worker threads and native memory together) until stopped. */
function rssSampler() {
  const start = process.memoryUsage.rss()
  let peak = start
  const sample = () => {
    const rss = process.memoryUsage.rss()
    if (rss > peak) peak = rss
  }
  const timer = setInterval(sample, RSS_SAMPLE_MS)
  return {
    /** Peak growth over the starting RSS, in bytes. */
    stop() {
      clearInterval(timer)
      sample()
      return peak - start
    },
  }
}

/** 32-bit FNV-1a, byte at a time, the same loop the probe capsule runs in Wasm. */
function fnv1aUpdate(/** @type {number} */ hash, /** @type {Uint8Array} */ bytes) {
  let h = hash
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193)
  return h
}
const FNV_OFFSET = 0x811c9dc5 | 0
const hex32 = (/** @type {number} */ h) => (h >>> 0).toString(16).padStart(8, '0')

/** @param {Float64Array} samples */
function summarise(samples) {
  const sorted = Float64Array.from(samples).sort()
  const at = (/** @type {number} */ q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  let sum = 0
  for (const value of sorted) sum += value
  return { mean: sum / sorted.length, p50: at(0.5), p99: at(0.99) }
}

/**
 * A row of the sequential test.
 * @typedef {{ name: string, mode: string, once: () => Promise<void>, samples: Float64Array, count: number }} SequentialPath
 */

/**
 * A row of the streaming test: `once` streams a body of `bytes` bytes and returns the bytes and
 * chunks it counted (for a capsule: its host reads) and, when it hashed them, the FNV-1a as 8 hex digits.
 * @typedef {{ name: string, mode: string, once: (bytes: number) => Promise<{ bytes: number, chunks: number, fnv1a32?: string }>, rates: number[], rssGrowth: number[], chunks: number[] }} StreamPath
 */

// ---------------------------------------------------------------------------------------------
// Output.

/** @param {string[]} header @param {string[][]} rows */
function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (/** @type {string[]} */ cells) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

const fixed = (/** @type {number} */ n, digits = 1) => n.toFixed(digits)
const ratio = (/** @type {number} */ n) => `${n.toFixed(2)}×`

function packageVersion(/** @type {string} */ name) {
  try {
    const file = new URL(`../node_modules/${name}/package.json`, import.meta.url)
    return JSON.parse(readFileSync(file, 'utf8')).version
  } catch {
    return 'unknown'
  }
}

// ---------------------------------------------------------------------------------------------
// The run.

/** @param {Array<() => Promise<unknown> | unknown>} cleanup */
async function main(cleanup) {
  const began = performance.now()
  const modes = /** @type {Array<'worker' | 'inline'>} */ (hasJspi() ? ['worker', 'inline'] : ['worker'])
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  console.log(`capsule-host bench: Node ${process.version} (V8 ${process.versions.v8}), ${process.platform}/${process.arch}`)
  console.log(`${cpu}, ${os.availableParallelism()} CPUs available, ${fixed(os.totalmem() / 2 ** 30)} GiB RAM`)
  console.log(`undici ${packageVersion('undici')}, @extism/extism ${packageVersion('@extism/extism')}`)
  console.log(`load average at start: ${loadAverage()} (other work on the machine skews every number)`)
  console.log(`isolation modes measured: ${modes.join(', ')}${hasJspi() ? '' : ' (no JSPI on this Node: inline needs Node 25+)'}`)

  const server = await startServer()
  cleanup.push(() => server.close())
  const { port } = server
  const rawBase = `http://127.0.0.1:${port}`
  const safeBase = `http://bench.test:${port}`
  console.log(`upstream: node:http in this process on ${rawBase}; the safe fetch maps bench.test to 127.0.0.1`)

  const agent = new Agent({ keepAliveTimeout: 30_000 })
  cleanup.push(() => agent.close())

  /** The safe fetch exactly as the tests configure it: one name, pinned to 127.0.0.1. */
  const newSafeFetch = () => {
    const fetch = createSafeFetch({
      rules: { host: 'bench.test', httpsOnly: false, port },
      resolver: async () => ['127.0.0.1'],
      addressPolicy: { allow: ['127.0.0.1/32'] },
    })
    cleanup.push(() => fetch.close())
    return fetch
  }

  const direct = newSafeFetch()
  const directContext = { capsuleId: 'bench-direct' }

  /**
   * Per mode: a probe capsule on a safe fetch configured as above, and one on a safe fetch whose
   * streams come from memory (no socket), which isolates the cost of the capsule boundary.
   * @type {Array<{ mode: 'worker' | 'inline', probe: import('../dist/index.js').Capsule, fromMemory: import('../dist/index.js').Capsule }>}
   */
  const capsules = []
  for (const mode of modes) {
    const runtime = createRuntime({ fetch: newSafeFetch(), isolation: mode })
    cleanup.push(() => runtime.close())
    const memoryRuntime = createRuntime({ fetch: memorySource(newSafeFetch()), isolation: mode })
    cleanup.push(() => memoryRuntime.close())
    capsules.push({
      mode,
      probe: await runtime.load({ wasm: PROBE, id: `bench-${mode}` }),
      fromMemory: await memoryRuntime.load({ wasm: PROBE, id: `bench-memory-${mode}` }),
    })
  }

  // ----- 1. sequential buffered requests --------------------------------------------------

  const jsonRequest = JSON.stringify({ url: `${safeBase}/json` })
  const expectedBody = JSON_BODY.toString()

  /** @type {SequentialPath[]} */
  const sequential = [
    {
      name: 'raw undici request()',
      mode: '-',
      once: async () => {
        const { statusCode, body } = await undiciRequest(`${rawBase}/json`, { dispatcher: agent })
        const text = await body.text()
        if (statusCode !== 200 || text !== expectedBody) throw new Error(`raw undici: unexpected reply ${statusCode} ${text}`)
      },
    },
    {
      name: 'safe fetch request()',
      mode: '-',
      once: async () => {
        const reply = await direct.request(jsonRequest, directContext)
        if ('error' in reply || reply.status !== 200 || reply.body !== expectedBody) throw new Error(`safe fetch: unexpected reply ${JSON.stringify(reply)}`)
      },
    },
    ...capsules.map(({ mode, probe }) => ({
      name: 'probe.echo (call only, no HTTP)',
      mode,
      once: async () => {
        const out = (await probe.call('echo', jsonRequest)).text()
        if (out !== jsonRequest) throw new Error(`probe.echo (${mode}): unexpected output ${out}`)
      },
    })),
    ...capsules.map(({ mode, probe }) => ({
      name: 'probe.request (capsule)',
      mode,
      once: async () => {
        const reply = /** @type {{ status: number, body: string }} */ ((await probe.call('request', jsonRequest)).json())
        if (reply.status !== 200 || reply.body !== expectedBody) throw new Error(`probe.request (${mode}): unexpected reply ${JSON.stringify(reply)}`)
      },
    })),
  ].map((path) => ({ ...path, samples: new Float64Array(ITERATIONS), count: 0 }))

  console.log(`\n1. sequential buffered GET of a ${JSON_BODY.length}-byte JSON body: ${WARMUP} warm-up + ${ITERATIONS} measured per path`)
  for (const path of sequential) for (let i = 0; i < WARMUP; i++) await path.once()
  const perRound = Math.ceil(ITERATIONS / ROUNDS)
  for (let round = 0; round < ROUNDS; round++) {
    for (const path of sequential) {
      const end = Math.min(ITERATIONS, path.count + perRound)
      while (path.count < end) {
        const t0 = performance.now()
        await path.once()
        path.samples[path.count++] = (performance.now() - t0) * 1000
      }
    }
  }
  const rawSeq = summarise(sequential[0].samples)
  console.log(
    table(
      ['path', 'mode', 'mean µs', 'p50 µs', 'p99 µs', 'req/s', 'mean vs raw'],
      sequential.map((path) => {
        const s = summarise(path.samples)
        return [path.name, path.mode, fixed(s.mean), fixed(s.p50), fixed(s.p99), fixed(1e6 / s.mean, 0), ratio(s.mean / rawSeq.mean)]
      }),
    ),
  )

  // ----- 2. streaming throughput and 4. memory ----------------------------------------------

  const bigUrl = (/** @type {number} */ bytes) => `/big?bytes=${bytes}`

  /** @param {import('../dist/index.js').Capsule} capsule @param {string} mode @param {number} bytes */
  const probeStream = async (capsule, mode, bytes) => {
    const out = /** @type {{ status: number, bytes: number, chunks: number, fnv1a32: string }} */ (
      (await capsule.call('stream', JSON.stringify({ url: `${safeBase}${bigUrl(bytes)}` }))).json()
    )
    if (out.status !== 200) throw new Error(`probe.stream (${mode}): ${JSON.stringify(out)}`)
    return { bytes: out.bytes, chunks: out.chunks, fnv1a32: out.fnv1a32 }
  }

  /**
   * Raw undici reading the body with on('data'), counting bytes and, when `hash` is set, running
   * the same FNV-1a as the probe over every chunk.
   * @param {number} bytes
   * @param {boolean} hash
   */
  const rawUndiciRead = async (bytes, hash) => {
    const { statusCode, body } = await undiciRequest(`${rawBase}${bigUrl(bytes)}`, { dispatcher: agent })
    if (statusCode !== 200) throw new Error(`raw undici: status ${statusCode}`)
    let n = 0
    let chunks = 0
    let h = FNV_OFFSET
    body.on('data', (/** @type {Buffer} */ chunk) => {
      n += chunk.length
      chunks++
      if (hash) h = fnv1aUpdate(h, chunk)
    })
    await finished(body)
    return hash ? { bytes: n, chunks, fnv1a32: hex32(h) } : { bytes: n, chunks }
  }

  /** @type {StreamPath[]} */
  const streaming = [
    {
      name: 'raw undici, on(data) counts bytes',
      mode: '-',
      once: (/** @type {number} */ bytes) => rawUndiciRead(bytes, false),
    },
    {
      name: 'raw undici + FNV-1a in JS',
      mode: '-',
      once: (/** @type {number} */ bytes) => rawUndiciRead(bytes, true),
    },
    {
      name: 'safe fetch stream(), count bytes',
      mode: '-',
      once: async (/** @type {number} */ bytes) => {
        const s = await direct.stream(JSON.stringify({ url: `${safeBase}${bigUrl(bytes)}` }), directContext)
        if ('error' in s || s.status !== 200) throw new Error(`safe fetch stream: ${JSON.stringify(s)}`)
        let n = 0
        let chunks = 0
        for (let chunk = await s.read(); chunk !== null; chunk = await s.read()) {
          n += chunk.byteLength
          chunks++
        }
        s.close()
        return { bytes: n, chunks }
      },
    },
    ...capsules.map(({ mode, probe }) => ({
      name: 'probe.stream (capsule, FNV-1a in Wasm)',
      mode,
      once: (/** @type {number} */ bytes) => probeStream(probe, mode, bytes),
    })),
    ...capsules.map(({ mode, fromMemory }) => ({
      name: 'probe.stream, body from memory (no socket)',
      mode,
      once: (/** @type {number} */ bytes) => probeStream(fromMemory, mode, bytes),
    })),
  ].map((path) => ({ ...path, rates: [], rssGrowth: [], chunks: [] }))

  // The hash every hashing path must report, computed once over the body the server sends.
  let expected = FNV_OFFSET
  for (let sent = 0; sent < STREAM_BYTES; sent += BLOCK.length) expected = fnv1aUpdate(expected, BLOCK.subarray(0, Math.min(BLOCK.length, STREAM_BYTES - sent)))
  const expectedHash = hex32(expected)

  console.log(
    `\n2. streamed GET of a ${STREAM_BYTES / MiB} MiB body: 1 warm-up of ${STREAM_WARMUP_BYTES / MiB} MiB + ${STREAM_RUNS} measured runs per path, interleaved; RSS sampled every ${RSS_SAMPLE_MS} ms`,
  )
  for (const path of streaming) await path.once(STREAM_WARMUP_BYTES)
  for (let run = 0; run < STREAM_RUNS; run++) {
    for (const path of streaming) {
      collect()
      const rss = rssSampler()
      const t0 = performance.now()
      const result = await path.once(STREAM_BYTES)
      const seconds = (performance.now() - t0) / 1000
      path.rssGrowth.push(rss.stop())
      if (result.bytes !== STREAM_BYTES) throw new Error(`${path.name} (${path.mode}): counted ${result.bytes} bytes, expected ${STREAM_BYTES}`)
      if (result.fnv1a32 !== undefined && result.fnv1a32 !== expectedHash) {
        throw new Error(`${path.name} (${path.mode}): fnv1a32 ${result.fnv1a32}, expected ${expectedHash}`)
      }
      path.rates.push(STREAM_BYTES / MiB / seconds)
      path.chunks.push(result.chunks)
    }
  }
  const rawRate = median(streaming[0].rates)
  const rawFnvRate = median(streaming[1].rates)
  const rawRss = median(streaming[0].rssGrowth)
  console.log(
    table(
      ['path', 'mode', 'MiB/s median', 'MiB/s each run', 'vs raw', 'vs raw+FNV', 'KiB/chunk', 'peak RSS growth MiB, median (max)', 'RSS growth vs raw'],
      streaming.map((path) => {
        const growth = median(path.rssGrowth)
        return [
          path.name,
          path.mode,
          fixed(median(path.rates), 0),
          path.rates.map((r) => fixed(r, 0)).join(' / '),
          ratio(median(path.rates) / rawRate),
          ratio(median(path.rates) / rawFnvRate),
          fixed((STREAM_BYTES * path.chunks.length) / path.chunks.reduce((a, b) => a + b, 0) / 1024),
          `${fixed(growth / MiB)} (${fixed(Math.max(...path.rssGrowth) / MiB)})`,
          rawRss > 0 ? ratio(growth / rawRss) : 'n/a',
        ]
      }),
    ),
  )
  console.log(`every hashing path reported fnv1a32 ${expectedHash} for the ${STREAM_BYTES / MiB} MiB body`)
  console.log(
    'notes: ratios are against the raw undici row (time: >1 is slower; MiB/s: <1 is slower). Byte-at-a-time FNV-1a caps a',
  )
  console.log(
    '  stream near 800 MiB/s wherever it runs, so "vs raw+FNV" compares like with like. RSS growth is the peak of the',
  )
  console.log('  whole process (main thread, worker threads, native buffers, and the upstream server, which runs in this process)')
  console.log('  over its value at the start of a run; the ratio compares medians.')
  console.log('  KiB/chunk: mean bytes per chunk the reader got; for a capsule, per http_stream_read_into call (its buffer is 256 KiB).')
  console.log(`load average at end: ${loadAverage()}`)
  console.log(`\ntotal bench time ${fixed((performance.now() - began) / 1000)} s`)
}

runBench(main)
