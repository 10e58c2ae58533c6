// @ts-check
// bench/secret-scan.mjs: MiB/s of a body read through scrubReader with one Bearer secret in force, against the same reader unwrapped.
//
//   npm run build && node bench/secret-scan.mjs
//
// Optional environment knobs, for quick trial runs only:
//   BENCH_SCAN_MIB (64)    size of each body
//   BENCH_SCAN_RUNS (5)    measured runs per path (the table shows the median and every run)
//
// The body comes from memory in 64 KiB chunks, with no socket: this measures the scan alone, so
// the ratio is the scan against doing nothing. On the real streamed path the socket, undici and
// the safe fetch come on top of both; the "added" column is the scan's own cost per MiB, to set
// against that path's MiB/s (docs/benchmarks.md). Two bodies: the pattern bench/run.mjs streams
// (binary) and JSON lines (text). Paths run interleaved, in alternating order. It opens no
// connection. Nothing here asserts on time: the checks are that every byte arrives and that a
// planted secret split across two chunks is replaced.

import os from 'node:os'
import { RequestSecrets, REDACTED } from '../dist/fetch/secrets.js'
import { knob, median, loadAverage, runBench } from './common.mjs'

const MiB = 1024 * 1024
const BODY_BYTES = knob('BENCH_SCAN_MIB', 64) * MiB
const RUNS = knob('BENCH_SCAN_RUNS', 5)
const CHUNK = 64 * 1024
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.c2Nhbi1iZW5jaC10b2tlbg.Q1bW8Yb3lR0aKp9x'

/** @param {(i: number) => number} byteAt */
function body(byteAt) {
  const data = Buffer.alloc(BODY_BYTES)
  for (let i = 0; i < data.length; i++) data[i] = byteAt(i)
  return data
}

/** The 1 MiB pattern of bench/run.mjs, repeated. */
const binaryBody = () => body((i) => ((i % MiB) * 31 + ((i % MiB) >> 8)) & 0xff)

/** JSON lines of about 100 bytes, repeated (the token's alphabet, never the token). */
function textBody() {
  const line = Buffer.from(`${JSON.stringify({ id: 42, name: 'capsule-bench', ok: true, tags: ['alpha', 'beta'], note: 'eyJ a reply' })}\n`)
  return body((i) => line[i % line.length])
}

/** A BodyReader over `data`, one chunk of at most CHUNK bytes (or `maxBytes`) a read. */
function memoryReader(/** @type {Buffer} */ data) {
  let at = 0
  return {
    get bytesRead() {
      return at
    },
    /** All of it is in memory: a read never waits. */
    get buffered() {
      return data.length - at
    },
    cancel() {
      at = data.length
    },
    async read(maxBytes = CHUNK) {
      if (at >= data.length) return null
      const piece = data.subarray(at, Math.min(at + CHUNK, at + maxBytes, data.length))
      at += piece.length
      return piece
    },
  }
}

function bearerSecrets() {
  const secrets = new RequestSecrets()
  secrets.addInjectedHeader('authorization', `Bearer ${TOKEN}`)
  return secrets
}

/** Reads to the end; the time and the bytes that came out. @param {import('../dist/net/transport/types.js').BodyReader} reader */
async function drain(reader) {
  const started = performance.now()
  let bytes = 0
  for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) bytes += chunk.byteLength
  return { ms: performance.now() - started, bytes }
}

/** The planted secret, split across a chunk boundary, comes out as the marker exactly once. */
async function checkPlanted() {
  const data = Buffer.alloc(3 * CHUNK, 'x')
  data.write(`Bearer ${TOKEN}`, CHUNK - 10)
  const secrets = bearerSecrets()
  const reader = secrets.scrubReader(memoryReader(data))
  const parts = []
  for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) parts.push(chunk)
  const out = Buffer.concat(parts).toString('latin1')
  if (secrets.replacements !== 1 || out.includes(TOKEN) || out.indexOf(REDACTED) !== CHUNK - 10) {
    throw new Error(`the planted secret was not replaced once (${secrets.replacements} replacements)`)
  }
}

/** @param {string} label @param {Buffer} data */
async function measure(label, data) {
  const paths = {
    unscanned: () => memoryReader(data),
    scanned: () => {
      const secrets = bearerSecrets()
      return { reader: secrets.scrubReader(memoryReader(data)), secrets }
    },
  }
  /** @type {{ unscanned: number[], scanned: number[] }} */
  const rates = { unscanned: [], scanned: [] }
  for (let run = -1; run < RUNS; run++) {
    const order = run % 2 === 0 ? ['unscanned', 'scanned'] : ['scanned', 'unscanned']
    for (const path of order) {
      const made = path === 'unscanned' ? { reader: paths.unscanned(), secrets: undefined } : paths.scanned()
      const { ms, bytes } = await drain(made.reader)
      if (bytes !== data.length || (made.secrets && made.secrets.replacements !== 0)) throw new Error(`${label} ${path}: ${bytes} bytes out of ${data.length}`)
      if (run >= 0) rates[/** @type {'unscanned' | 'scanned'} */ (path)].push(data.length / MiB / (ms / 1000))
    }
  }
  const plain = median(rates.unscanned)
  const scanned = median(rates.scanned)
  const row = (/** @type {string} */ path, /** @type {number[]} */ values, /** @type {string} */ tail) =>
    `  ${`${label}, ${path}`.padEnd(20)} ${median(values).toFixed(0).padStart(7)} MiB/s   runs ${values.map((v) => v.toFixed(0)).join(' / ')}   spread ${(Math.min(...values)).toFixed(0)}-${Math.max(...values).toFixed(0)}${tail}`
  console.log(row('unscanned', rates.unscanned, ''))
  console.log(row('scanned', rates.scanned, `   ratio ${(scanned / plain).toFixed(2)}×   added ${(1e6 / scanned - 1e6 / plain).toFixed(1)} µs/MiB`))
}

runBench(async () => {
  console.log(`secret-scan bench: Node ${process.version} (V8 ${process.versions.v8}), ${os.cpus()[0]?.model ?? 'unknown CPU'}`)
  console.log(`load average at start: ${loadAverage()} (other work on the machine skews every number)`)
  const patterns = bearerSecrets().size
  console.log(`${BODY_BYTES / MiB} MiB bodies from memory in ${CHUNK / 1024} KiB chunks; 1 warm-up + ${RUNS} runs per path, interleaved`)
  console.log(`in force: authorization "Bearer <${TOKEN.length}-char token>" (${patterns} patterns); median MiB/s, every run, ratio scanned / unscanned`)
  await checkPlanted()
  await measure('binary', binaryBody())
  await measure('text', textBody())
})
