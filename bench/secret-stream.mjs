// @ts-check
// bench/secret-stream.mjs: MiB/s of a body streamed from a loopback server through safeFetch.stream(), with a secret in force against without, and raw undici.
//
//   npm run build && node bench/secret-stream.mjs
//
// Optional environment knobs, for quick trial runs only:
//   BENCH_SECRET_STREAM_MIB (64)   size of each streamed body
//   BENCH_SECRET_STREAM_RUNS (9)   measured runs per path (the table shows the median, every run and the spread)
//
// The end-to-end counterpart of bench/secret-scan.mjs: the same socket, undici and safe fetch on
// both safe-fetch paths, which differ only in the header their origin middleware injects. With
// `authorization: Bearer <40-char token>` the request has a secret and every streamed byte is
// scanned; with `x-trace: <a value of the same length>` (no credential header) it has none and the
// body is handed out unwrapped, so the middleware's own cost is equal and the ratio is the scan's.
// Raw undici (on('data'), counting bytes) is the reference for the transport. Two bodies: the
// pattern bench/run.mjs streams (binary) and JSON lines (text). Paths run interleaved, in rotating
// order, after one warm-up each. It connects to nothing but the server it starts on 127.0.0.1.
// Nothing here asserts on time: the checks are that every byte arrives, that no run replaced
// anything, that the upstream saw the injected header, and that a planted token is replaced.

import { once } from 'node:events'
import os from 'node:os'
import { finished } from 'node:stream/promises'
import { Agent, request as undiciRequest } from 'undici'
import { createSafeFetch, REDACTED } from '../dist/index.js'
import { knob, listen, loadAverage, median, runBench } from './common.mjs'
import { BLOCK } from './paths.mjs'

const MiB = 1024 * 1024
const BODY_BYTES = knob('BENCH_SECRET_STREAM_MIB', 64) * MiB
const RUNS = knob('BENCH_SECRET_STREAM_RUNS', 9)
const TOKEN = 'ghp_7Hq2LmX9vR4tZp1KcN8bW3yF6dJ0sA5eU2gT'
const AUTHORIZATION = `Bearer ${TOKEN}`
/** The no-secret path's header value: as long as the authorization value, and no credential. */
const TRACE = 't'.repeat(AUTHORIZATION.length)

/** One 1 MiB block of each body, repeated by the server. */
const BLOCKS = {
  /** The pattern the main bench streams (bench/paths.mjs). */
  binary: BLOCK,
  /** JSON lines of about 100 bytes, as bench/secret-scan.mjs (the token's first letters, never the token). */
  text: (() => {
    const line = Buffer.from(`${JSON.stringify({ id: 42, name: 'capsule-bench', ok: true, tags: ['alpha', 'beta'], note: 'ghp_ a reply' })}\n`)
    return Buffer.from(Array.from({ length: MiB }, (_, i) => line[i % line.length]))
  })(),
}

/**
 * `/body?kind=binary|text&bytes=N`: N bytes of that body, content-length declared, written with
 * back-pressure. `/planted`: the injected authorization value split across two writes.
 * @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res
 */
function upstream(req, res) {
  const url = new URL(req.url ?? '/', 'http://upstream')
  seenAuthorization.push(req.headers.authorization ?? req.headers['x-trace'] ?? '')
  if (url.pathname === '/planted') {
    const value = req.headers.authorization ?? ''
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write(`before ${value.slice(0, 20)}`, () => res.end(`${value.slice(20)} after`))
    return
  }
  const block = BLOCKS[/** @type {'binary' | 'text'} */ (url.searchParams.get('kind'))]
  const total = Number(url.searchParams.get('bytes'))
  if (!block || !(total > 0)) {
    res.writeHead(404)
    res.end('not found')
    return
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
  void writeBlocks(res, block, total)
}

/** Writes `total` bytes of `block` repeated, waiting for 'drain' whenever the socket is full. @param {import('node:http').ServerResponse} res @param {Buffer} block @param {number} total */
async function writeBlocks(res, block, total) {
  for (let left = total; left > 0; left -= block.length) {
    if (!res.write(left >= block.length ? block : block.subarray(0, left))) await once(res, 'drain')
  }
  res.end()
}

/** What the upstream was sent in authorization (or x-trace), per request. @type {string[]} */
const seenAuthorization = []

runBench(async (cleanup) => {
  console.log(`secret-stream bench: Node ${process.version} (V8 ${process.versions.v8}), ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} CPUs`)
  console.log(`load average at start: ${loadAverage()} (other work on the machine skews every number)`)
  const server = await listen(upstream)
  cleanup.push(() => server.close())
  const rawBase = `http://127.0.0.1:${server.port}`
  const safeBase = `http://bench.test:${server.port}`
  const agent = new Agent({ keepAliveTimeout: 30_000 })
  cleanup.push(() => agent.close())

  /** @type {import('../dist/index.js').RequestEvent[]} */
  const events = []
  /** A safe fetch whose origin middleware sets one header. @param {string} name @param {string} value */
  const injecting = (name, value) => {
    const fetch = createSafeFetch({
      rules: { host: 'bench.test', httpsOnly: false, port: server.port, middleware: (c, next) => (c.req.header(name, value), next()) },
      resolver: async () => ['127.0.0.1'],
      addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
      onRequest: (event) => events.push(event),
      telemetry: false,
    })
    cleanup.push(() => fetch.close())
    return fetch
  }
  const unscanned = injecting('x-trace', TRACE)
  const scanned = injecting('authorization', AUTHORIZATION)

  /** Streams `url` to its end through a safe fetch; the bytes and what its event counted. @param {import('../dist/index.js').SafeFetch} fetch @param {string} url */
  const safeStream = async (fetch, url) => {
    const s = await fetch.stream({ url }, { capsuleId: 'bench-secret-stream' })
    if ('error' in s || s.status !== 200) throw new Error(`safe fetch stream: ${JSON.stringify(s)}`)
    let bytes = 0
    let chunks = 0
    for (let chunk = await s.read(); chunk !== null; chunk = await s.read(), chunks++) bytes += chunk.byteLength
    return { bytes, chunks, redactions: events.at(-1)?.redactions ?? -1 }
  }

  // The secret is in force on the scanned path only: a planted token split across writes is replaced.
  {
    const s = await scanned.stream({ url: `${safeBase}/planted` }, { capsuleId: 'bench-check' })
    if ('error' in s) throw new Error(`planted: ${JSON.stringify(s)}`)
    const parts = []
    for (let chunk = await s.read(); chunk !== null; chunk = await s.read()) parts.push(chunk)
    const text = Buffer.concat(parts).toString('latin1')
    if (text !== `before ${REDACTED} after` || events.at(-1)?.redactions !== 1) throw new Error(`the planted token was not replaced once: ${JSON.stringify(text)}`)
  }

  /** @typedef {{ name: string, once: (url: { raw: string, safe: string }) => Promise<{ bytes: number, chunks: number, redactions?: number }>, header?: string }} Path */
  /** @type {Path[]} */
  const paths = [
    {
      name: 'raw undici, on(data)',
      once: async ({ raw }) => {
        const { statusCode, body } = await undiciRequest(raw, { dispatcher: agent })
        if (statusCode !== 200) throw new Error(`raw undici: status ${statusCode}`)
        let bytes = 0
        let chunks = 0
        body.on('data', (/** @type {Buffer} */ chunk) => {
          bytes += chunk.length
          chunks++
        })
        await finished(body)
        return { bytes, chunks }
      },
    },
    { name: 'safe fetch, no secret', header: TRACE, once: ({ safe }) => safeStream(unscanned, safe) },
    { name: 'safe fetch, Bearer secret', header: AUTHORIZATION, once: ({ safe }) => safeStream(scanned, safe) },
  ]

  console.log(`${BODY_BYTES / MiB} MiB bodies from node:http on ${rawBase} (safe fetch: bench.test pinned to 127.0.0.1), read to the end with read()`)
  console.log(`in force: authorization "Bearer <${TOKEN.length}-char token>" vs x-trace "<${TRACE.length} chars>"; 1 warm-up + ${RUNS} runs per path, interleaved`)
  for (const kind of /** @type {const} */ (['binary', 'text'])) {
    const url = { raw: `${rawBase}/body?kind=${kind}&bytes=${BODY_BYTES}`, safe: `${safeBase}/body?kind=${kind}&bytes=${BODY_BYTES}` }
    /** @type {number[][]} */
    const rates = paths.map(() => [])
    /** @type {number[]} */
    const chunkCounts = paths.map(() => 0)
    for (let run = -1; run < RUNS; run++) {
      // Rotate the order so no path always runs first (or right after the same neighbour).
      const order = paths.map((_, i) => (i + Math.max(run, 0)) % paths.length)
      for (const i of order) {
        const path = paths[i]
        const sent = seenAuthorization.length
        const started = performance.now()
        const { bytes, chunks, redactions } = await path.once(url)
        const seconds = (performance.now() - started) / 1000
        if (bytes !== BODY_BYTES) throw new Error(`${kind}, ${path.name}: ${bytes} bytes of ${BODY_BYTES}`)
        if (redactions !== undefined && redactions !== 0) throw new Error(`${kind}, ${path.name}: ${redactions} replacements in a body without the token`)
        if (path.header !== undefined && seenAuthorization[sent] !== path.header) throw new Error(`${kind}, ${path.name}: the upstream did not get the injected header`)
        if (run >= 0) {
          rates[i].push(BODY_BYTES / MiB / seconds)
          chunkCounts[i] += chunks
        }
      }
    }
    const medians = rates.map(median)
    paths.forEach((path, i) => {
      const values = rates[i]
      const vsRaw = (medians[i] / medians[0]).toFixed(2)
      const perChunk = ((BODY_BYTES * RUNS) / chunkCounts[i] / 1024).toFixed(0)
      console.log(
        `  ${`${kind}, ${path.name}`.padEnd(34)} ${medians[i].toFixed(0).padStart(6)} MiB/s   runs ${values.map((v) => v.toFixed(0)).join(' / ')}   spread ${Math.min(...values).toFixed(0)}-${Math.max(...values).toFixed(0)}   vs raw ${vsRaw}×   ${perChunk} KiB/chunk`,
      )
    })
    // Each run's two safe-fetch paths ran back to back, so their ratio shares that run's load; its median is the result.
    const runRatios = rates[2].map((rate, run) => rate / rates[1][run])
    const ratio = median(runRatios)
    console.log(
      `  ${kind}: scanned / unscanned ${ratio.toFixed(2)}× (${((1 - ratio) * 100).toFixed(1)}% slower; target: within 10%), median of the runs' ratios ${runRatios.map((r) => r.toFixed(2)).join(' / ')}; ratio of the medians ${(medians[2] / medians[1]).toFixed(2)}×`,
    )
  }
})
