// @ts-check
// bench/telemetry-cost.mjs: what OpenTelemetry costs a safe fetch's request: off, on with the no-op API, on with an in-memory SDK, as ratios.
//
// Every variant is a safe fetch on the same loopback upstream, in this process. A round sends
// TELEMETRY_BENCH_REQUESTS sequential buffered GETs per variant, interleaved one request at a time
// (the order rotates with each request) so that drift and bursts of load on a shared machine hit
// every variant alike, and gives each variant's p50. The table shows the median over rounds of
// each variant's p50, its ratio to `off` in the same round (median over rounds), and the spread
// of that ratio (min–max over rounds). `off` is the mean p50 of the two `off` fetches, so the
// two off rows' distance from 1.00 is the noise floor (one fetch instance may run a little faster).
//
// `off` is `telemetry: false`: the path a host without @opentelemetry/api takes, since then
// `createTelemetry` returns undefined before anything is made (test/telemetry.test.ts proves it),
// so the safe fetch has no observer either way. `off again` is a second `off` fetch: its ratio is
// the noise floor. `no-op API` is the default with @opentelemetry/api installed and no SDK
// registered. `SDK` and `SDK + traceparent` use an in-memory SDK (BasicTracerProvider,
// SimpleSpanProcessor, InMemorySpanExporter; a MeterProvider read once at the end), given as
// `tracerProvider`/`meterProvider` so the no-op variant stays no-op in the same process.
//
// Run: npm run build && node bench/telemetry-cost.mjs   (knobs: TELEMETRY_BENCH_ROUNDS, TELEMETRY_BENCH_REQUESTS)

import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { createSafeFetch } from '../dist/index.js'
import { knob, listen, median, runBench } from './common.mjs'
import { fixed, otherLoad, quantile, range, ratio, table } from './stats.mjs'

const ROUNDS = knob('TELEMETRY_BENCH_ROUNDS', 15)
const REQUESTS = knob('TELEMETRY_BENCH_REQUESTS', 400)
const WARMUP = 300
const BODY = Buffer.from(JSON.stringify({ items: [1, 2, 3], note: 'a small JSON answer' }))

/** A metric reader that exports only when asked. */
class ManualReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/** @param {Array<() => Promise<unknown> | unknown>} cleanup */
function inMemorySdk(cleanup) {
  const spans = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  const reader = new ManualReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  cleanup.push(() => Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]))
  return { spans, reader, tracerProvider, meterProvider }
}

/** One request through `fetch`, in µs. @param {import('../dist/index.js').SafeFetch} fetch @param {string} url */
async function timedRequest(fetch, url) {
  const began = performance.now()
  const reply = await fetch.request({ url }, { capsuleId: 'bench' })
  const micros = (performance.now() - began) * 1000
  if ('error' in reply) throw new Error(`the request failed: ${JSON.stringify(reply.error)}`)
  return micros
}

/**
 * One round: `count` requests per variant, interleaved one by one (the variant order rotates
 * with each request), so drift and bursts of load on a shared machine hit every variant alike.
 * Returns each variant's p50 in µs.
 * @param {Array<{ fetch: import('../dist/index.js').SafeFetch }>} variants @param {string} url @param {number} count
 */
async function roundP50s(variants, url, count) {
  const samples = variants.map(() => new Float64Array(count))
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < variants.length; k++) {
      const index = (i + k) % variants.length
      samples[index][i] = await timedRequest(variants[index].fetch, url)
    }
  }
  return samples.map((taken) => quantile(taken, 0.5))
}

runBench(async (cleanup) => {
  const upstream = await listen((_req, res) => res.end(BODY))
  cleanup.push(() => upstream.close())
  const url = `http://bench.test:${upstream.port}/items?page=1`
  const sdk = inMemorySdk(cleanup)
  /** @param {import('../dist/index.js').SafeFetchOptions['telemetry']} telemetry */
  const make = (telemetry) => {
    const fetch = createSafeFetch({
      rules: { host: 'bench.test', httpsOnly: false, port: upstream.port },
      resolver: async () => ['127.0.0.1'],
      addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
      telemetry,
    })
    cleanup.push(() => fetch.close())
    return fetch
  }
  const variants = [
    { name: 'off (= API not installed)', option: 'false', fetch: make(false) },
    { name: 'off again (noise floor)', option: 'false', fetch: make(false) },
    { name: 'no-op API, no SDK registered', option: '{}', fetch: make({}) },
    { name: 'SDK, in memory', option: '{ tracerProvider, meterProvider }', fetch: make({ tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider }) },
    { name: 'SDK + traceparent', option: '… propagateTraceContext: true', fetch: make({ tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider, propagateTraceContext: true }) },
  ]
  if (variants[0].fetch.telemetry !== undefined || variants[2].fetch.telemetry === undefined) throw new Error('the variants are not what they claim')
  await roundP50s(variants, url, WARMUP)

  const load = otherLoad()
  /** @type {number[][]} p50 (µs) per variant, per round */
  const p50s = variants.map(() => [])
  for (let round = 0; round < ROUNDS; round++) {
    const p50 = await roundP50s(variants, url, REQUESTS)
    p50.forEach((value, index) => p50s[index].push(value))
    // The exporter keeps every span; a round's are dropped so memory stays level.
    sdk.spans.reset()
  }
  // The baseline of a round is the mean p50 of the two `off` fetches: how far each is from it is the noise floor.
  const baseline = p50s[0].map((off, round) => (off + p50s[1][round]) / 2)
  const ratios = p50s.map((rounds) => rounds.map((p50, round) => p50 / baseline[round]))
  const rows = variants.map(({ name, option }, i) => [name, option, fixed(median(p50s[i]), 1), ratio(median(ratios[i])), range(ratios[i])])
  const { resourceMetrics } = await sdk.reader.collect()
  const counted = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((metric) => metric.descriptor.name === 'capsule_host.requests')
  const total = (counted?.dataPoints ?? []).reduce((sum, point) => sum + Number(point.value), 0)

  console.log(`# telemetry cost per request (Node ${process.version}, ${ROUNDS} rounds × ${REQUESTS} sequential GETs per variant, interleaved request by request)\n`)
  console.log(table(['variant', 'telemetry', 'p50 µs (median of rounds)', 'p50 ratio to off (median)', 'ratio min–max over rounds'], rows))
  console.log(`\nthe SDK variants counted ${total} requests in capsule_host.requests; ${load()}`)
})
