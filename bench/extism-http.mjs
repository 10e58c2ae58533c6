// @ts-check
// bench/extism-http.mjs: sequential buffered GETs through Extism's kernel HTTP ABI served by capsule-host, beside the capsule-host ABI, Extism's own SDK HTTP and raw undici, on one 127.0.0.1 server.
//
//   node bench/extism-http.mjs        (run `npm run build && npm run build:capsules` first)
//
// Knobs (environment):
//   BENCH_ROUNDS (7)        rounds; every path runs once per round, paths interleaved
//   BENCH_ITERATIONS (300)  measured requests per path per round
//   BENCH_WARMUP (100)      warm-up requests per path
//
// Each row reports the median over rounds of the round's p50 latency, its spread (min-max over
// rounds), and the p50 ratio to raw undici of the same round (median, min-max). Extism's own SDK
// HTTP (allowedHosts, its global fetch) is used here as a peer only; capsule-host never uses it.

import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import createPlugin from '@extism/extism'
import { Agent, request as undiciRequest } from 'undici'
import { createRuntime, createSafeFetch, hasJspi } from '../dist/index.js'
import { knob, listen, loadAverage, median, runBench } from './common.mjs'

const ROUNDS = knob('BENCH_ROUNDS', 7)
const ITERATIONS = knob('BENCH_ITERATIONS', 300)
const WARMUP = knob('BENCH_WARMUP', 100)

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/extism-plugins/', import.meta.url))
const HTTP_WASM = `${FIXTURES}http.wasm`
const OURS = fileURLToPath(new URL('../capsules/dist/extism-http.wasm', import.meta.url))
const PROBE = fileURLToPath(new URL('../capsules/dist/probe.wasm', import.meta.url))
const BODY = JSON.stringify({ hello: 'extism', n: 42, list: [1, 2, 3] })

/** @typedef {{ name: string, mode: string, once: () => Promise<void>, p50: number[], mean: number[] }} Path */

/** @param {string} what @param {string} got */
function expectBody(what, got) {
  if (got !== BODY) throw new Error(`${what}: unexpected body ${JSON.stringify(got.slice(0, 200))}`)
}

/** @param {Float64Array} samples */
function p50AndMean(samples) {
  const sorted = Float64Array.from(samples).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return { p50: sorted[Math.ceil(sorted.length / 2) - 1], mean: sum / sorted.length }
}

/** @param {Path} path */
async function measure(path) {
  const samples = new Float64Array(ITERATIONS)
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = performance.now()
    await path.once()
    samples[i] = (performance.now() - t0) * 1000
  }
  const { p50, mean } = p50AndMean(samples)
  path.p50.push(p50)
  path.mean.push(mean)
}

const spread = (/** @type {number[]} */ xs, digits = 1) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`

/** @param {Path[]} paths */
function report(paths) {
  const raw = paths[0]
  const rows = paths.map((path) => {
    const ratios = path.p50.map((p, i) => p / raw.p50[i])
    return [path.name, path.mode, median(path.p50).toFixed(1), spread(path.p50), (1e6 / median(path.mean)).toFixed(0), `${median(ratios).toFixed(2)}×`, spread(ratios, 2)]
  })
  const header = ['path', 'mode', 'p50 µs (median of rounds)', 'p50 spread', 'req/s', 'p50 vs raw', 'ratio spread']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (/** @type {string[]} */ cells) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  console.log([line(header), `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n'))
}

/** The capsule-host paths of one isolation mode: the capsule-host ABI (probe) and the Extism ABI (fixture, ours). */
async function capsuleHostPaths(/** @type {'worker' | 'inline'} */ mode, /** @type {number} */ port, /** @type {Array<() => unknown>} */ cleanup) {
  const fetch = createSafeFetch({ rules: { host: 'bench.test', httpsOnly: false, port }, resolver: async () => ['127.0.0.1'], addressPolicy: { allow: ['127.0.0.1/32'] }, telemetry: false })
  const runtime = createRuntime({ fetch, isolation: mode })
  cleanup.push(() => fetch.close(), () => runtime.close())
  const url = `http://bench.test:${port}/json`
  const probe = await runtime.load({ wasm: PROBE, id: `probe-${mode}` })
  const probeInput = JSON.stringify({ url })
  /** @type {Array<Omit<Path, 'p50' | 'mean'>>} */
  const paths = [{
    name: 'capsule-host ABI: probe.request',
    mode,
    once: async () => expectBody('probe', /** @type {{ body: string }} */ ((await probe.call('request', probeInput)).json()).body),
  }]
  const extismInput = JSON.stringify({ url })
  for (const [name, wasm] of /** @type {Array<[string, string]>} */ ([['Extism ABI: http.wasm (Rust PDK)', HTTP_WASM], ['Extism ABI: extism-http (AS, ours)', OURS]])) {
    if (!existsSync(wasm)) {
      console.log(`(${name} left out: ${wasm} is absent)`)
      continue
    }
    const capsule = await runtime.load({ wasm: readFileSync(wasm), id: `${name.replace(/\W+/g, '-')}-${mode}` })
    paths.push({ name, mode, once: async () => expectBody(name, (await capsule.call('http_request', extismInput)).text()) })
  }
  return paths
}

/** Extism's own SDK with its own HTTP (allowedHosts + global fetch): in its worker, and on JSPI in the foreground. */
async function extismSdkPaths(/** @type {number} */ port, /** @type {Array<() => unknown>} */ cleanup) {
  if (!existsSync(HTTP_WASM)) {
    console.log(`(Extism SDK peers left out: ${HTTP_WASM} is absent)`)
    return []
  }
  const input = JSON.stringify({ url: `http://127.0.0.1:${port}/json` })
  const variants = /** @type {Array<[string, boolean]>} */ ([['runInWorker', true], ...(hasJspi() ? [['foreground (JSPI)', false]] : [])])
  /** @type {Array<Omit<Path, 'p50' | 'mean'>>} */
  const paths = []
  for (const [mode, runInWorker] of variants) {
    const plugin = await createPlugin({ wasm: [{ data: readFileSync(HTTP_WASM) }], allowedHosts: ['127.0.0.1'] }, { useWasi: false, runInWorker, allowedHosts: ['127.0.0.1'] })
    cleanup.push(() => plugin.close())
    paths.push({
      name: "Extism SDK's own HTTP: http.wasm",
      mode,
      once: async () => expectBody(`Extism SDK ${mode}`, (await plugin.call('http_request', input))?.text() ?? ''),
    })
  }
  return paths
}

/** @param {Array<() => Promise<unknown> | unknown>} cleanup */
async function main(cleanup) {
  console.log(`extism-http bench: Node ${process.version} (V8 ${process.versions.v8}), ${process.platform}/${process.arch}`)
  console.log(`${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} CPUs available; load average at start ${loadAverage()}`)
  const server = await listen((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(BODY)
  })
  cleanup.push(() => server.close())
  const agent = new Agent({ keepAliveTimeout: 30_000 })
  cleanup.push(() => agent.close())
  const rawUrl = `http://127.0.0.1:${server.port}/json`
  const modes = /** @type {Array<'worker' | 'inline'>} */ (hasJspi() ? ['worker', 'inline'] : ['worker'])
  /** @type {Array<Omit<Path, 'p50' | 'mean'>>} */
  const defined = [
    {
      name: 'raw undici request()',
      mode: '-',
      once: async () => {
        const { body } = await undiciRequest(rawUrl, { dispatcher: agent })
        expectBody('raw undici', await body.text())
      },
    },
  ]
  for (const mode of modes) defined.push(...(await capsuleHostPaths(mode, server.port, cleanup)))
  defined.push(...(await extismSdkPaths(server.port, cleanup)))
  /** @type {Path[]} */
  const paths = defined.map((p) => ({ ...p, p50: [], mean: [] }))
  console.log(`sequential buffered GET of a ${BODY.length}-byte JSON body: ${WARMUP} warm-up, then ${ROUNDS} rounds × ${ITERATIONS} per path, interleaved`)
  for (const path of paths) for (let i = 0; i < WARMUP; i++) await path.once()
  for (let round = 0; round < ROUNDS; round++) for (const path of paths) await measure(path)
  report(paths)
  console.log(`load average at end: ${loadAverage()}`)
}

runBench(main)
