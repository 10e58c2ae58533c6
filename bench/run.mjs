// @ts-check
// bench/run.mjs: the benchmark anchor: raw undici, global fetch, the safe fetch, every isolation and Extism's own HTTP, in one interleaved run, as ratios to raw undici.
//
//   npm run bench              # builds dist/ and the capsules, then runs this and the focused benches
//   node bench/run.mjs         # after a build; any Node >= 20.18 (Node 25+ adds inline and pool)
//
// Sections: 1. sequential latency (p50, p99, CPU per request; rounds repeat until every
// capsule-host ratio settles), 2. concurrency (1, 4, 16, 64 at once), 3. streaming (one stream;
// 50 capsules × 4 streams), 4. loading capsules (time and RSS per capsule). Each section
// prints the load other processes put on the machine while it ran.
//
// Knobs (environment), for quick trial runs only; docs/benchmarks.md uses the defaults:
//   BENCH_PER_ROUND (300)       sequential requests a path per round
//   BENCH_MIN_ROUNDS (5), BENCH_MAX_ROUNDS (15), BENCH_TOLERANCE_PCT (5)   when the rounds stop
//   BENCH_CONCURRENCY_MS (700)  time a concurrency cell runs; BENCH_CONCURRENCY_REPEATS (3)
//   BENCH_STREAM_MIB (128)      the one stream; BENCH_MANY_MIB (8) each of the 200 streams; BENCH_STREAM_RUNS (5)
//   BENCH_LOAD (100)            capsules loaded per isolation; BENCH_POOL_LOAD (1000) also for the pool
//   BENCH_SECTIONS (1234)       which sections run
//
// It connects to nothing but the server it starts on 127.0.0.1 (and localhost, from /etc/hosts,
// for the system-resolver row), closes everything it opens, and asserts nothing on time: the
// only checks are that every reply is correct.

import { readFileSync } from 'node:fs'
import os from 'node:os'
import { createRuntime, createSafeFetch } from '../dist/index.js'
import { knob, loadAverage, runBench } from './common.mjs'
import { createBench, isolationModes } from './paths.mjs'
import { concurrencySection, loadingSection, sequentialSection, streamingSection } from './sections.mjs'

function packageVersion(/** @type {string} */ name) {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
  } catch {
    return 'unknown'
  }
}

function describeMachine() {
  console.log(`capsule-host bench: Node ${process.version} (V8 ${process.versions.v8}), ${process.platform}/${process.arch}`)
  console.log(`${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} CPUs available, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM`)
  console.log(`undici ${packageVersion('undici')}, @extism/extism ${packageVersion('@extism/extism')}; isolations: ${isolationModes().join(', ')}`)
  console.log(`load average at start: ${loadAverage()} (other work on the machine skews every number)`)
}

/** @param {Array<() => Promise<unknown> | unknown>} cleanup */
async function main(cleanup) {
  const began = performance.now()
  const sections = String(knob('BENCH_SECTIONS', 1234))
  describeMachine()
  const bench = await createBench(cleanup)
  if (sections.includes('1')) {
    const tolerance = knob('BENCH_TOLERANCE_PCT', 5) / 100
    await sequentialSection(bench, cleanup, { perRound: knob('BENCH_PER_ROUND', 300), warmup: 200, minRounds: knob('BENCH_MIN_ROUNDS', 5), maxRounds: knob('BENCH_MAX_ROUNDS', 15), tolerance })
  }
  if (sections.includes('2')) {
    await concurrencySection(bench, { levels: [1, 4, 16, 64], ms: knob('BENCH_CONCURRENCY_MS', 700), repeats: knob('BENCH_CONCURRENCY_REPEATS', 3), maxWorkers: 16 })
  }
  if (sections.includes('3')) {
    const manyModes = isolationModes().filter((mode) => mode !== 'worker')
    await streamingSection(bench, { oneMiB: knob('BENCH_STREAM_MIB', 128), manyMiB: knob('BENCH_MANY_MIB', 8), capsules: 50, perCapsule: 4, runs: knob('BENCH_STREAM_RUNS', 5), manyModes: manyModes.length > 0 ? manyModes : ['worker'] })
  }
  if (sections.includes('4')) {
    const count = knob('BENCH_LOAD', 100)
    /** @type {Record<string, number[]>} */
    const counts = {}
    for (const mode of isolationModes()) counts[mode] = mode === 'pool' ? [count, knob('BENCH_POOL_LOAD', 1000)] : [count]
    const fetch = createSafeFetch({ rules: { host: 'bench.test', httpsOnly: false, port: bench.port }, resolver: async () => ['127.0.0.1'], addressPolicy: { allow: ['127.0.0.1/32'] }, telemetry: false })
    cleanup.push(() => fetch.close())
    const fresh = (/** @type {string} */ mode) => createRuntime({ fetch, isolation: /** @type {any} */ (mode) })
    await loadingSection(bench, fresh, { counts })
  }
  console.log(`\nload average at end: ${loadAverage()}; total bench time ${((performance.now() - began) / 1000).toFixed(1)} s`)
}

runBench(main)
