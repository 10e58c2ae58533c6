// @ts-check
// bench/fairness.mjs: one well-behaved capsule's request latency while 3 hostile capsules flood
// adversarial host calls (issue 7, point 2), against the same capsule alone and against 3 capsules
// that only burn CPU in Wasm (the floor this machine's cores set, whatever the main thread does).
//
//   npm run bench                      # builds dist/ and the capsules, runs bench/run.mjs, then this
//   node bench/fairness.mjs            # after a build (npm run build && npm run build:capsules)
//
// Optional environment knobs (docs/benchmarks.md uses the defaults):
//   BENCH_FAIRNESS_RUNS (5)        repetitions of the whole set of scenarios, interleaved
//   BENCH_FAIRNESS_REQUESTS (1000) measured requests per scenario at most
//   BENCH_FAIRNESS_SECONDS (6)     measured time per scenario at most (a flood makes requests slow)
//
// Scenarios, each run once per repetition in this order: alone; spin (3 capsules run spin_count
// in a loop, no host calls); then one per flood kind (deep, headers, keys, valid), where all 3
// hostile capsules run probe.flood of that kind in a loop. Hostile requests name hostile.test,
// which no rule allows: they are refused (by validation or by the rules) and never resolved, so
// nothing is dialled but the server this script starts on 127.0.0.1. Every loop is bounded by a
// count and a time; every runtime, safe fetch and the server are closed at the end. Nothing here
// asserts on time: the only checks are that every reply is what it must be.

import { readFileSync } from 'node:fs'
import os from 'node:os'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { createRuntime, createSafeFetch } from '../dist/index.js'
import { knob, listen, median, loadAverage, runBench } from './common.mjs'
import { quantile } from './stats.mjs'

const RUNS = knob('BENCH_FAIRNESS_RUNS', 5)
const REQUESTS = knob('BENCH_FAIRNESS_REQUESTS', 1000)
const SCENARIO_MS = knob('BENCH_FAIRNESS_SECONDS', 6) * 1000
const WARMUP = 200 // well-behaved requests before the first run, alone
const SETTLE = 2 // unmeasured requests at the start of each scenario, once its load is running
const HOSTILE = 3
/** Requests per flood call: a call lasts well under a second, so stopping a flood is quick. */
const FLOOD_PER_CALL = { deep: 4, headers: 4, keys: 4, method: 4, integrity: 4, valid: 200 }
const KINDS = /** @type {const} */ (['deep', 'headers', 'keys', 'method', 'integrity', 'valid'])
const SPIN_CALL_MS = 200 // the length of one spin_count call, calibrated at the start
const LOAD_CALLS_MAX = 10_000 // calls per hostile loop and scenario, whatever happens
const START_TIMEOUT_MS = 30_000 // a load that has not shown itself running by then fails the bench
const HOSTILE_ONLY_MS = 3000 // the window in which the main thread's cost per hostile request is measured, hostile capsules alone
const DELAY_RESOLUTION_MS = 1 // monitorEventLoopDelay's sampling interval, which the values it records include
const PROBE = new URL('../capsules/dist/probe.wasm', import.meta.url)

// ---------------------------------------------------------------------------------------------
// The upstream: one node:http server on 127.0.0.1, port 0, answering /json.

const JSON_BODY = Buffer.from(JSON.stringify({ id: 42, name: 'capsule-bench', ok: true, tags: ['alpha', 'beta', 'gamma'], score: 0.875, note: 'a small reply' }))

/**
 * The main thread's own CPU time in ms: `process.threadCpuUsage()` (µs; Node 23.9+), else the
 * utime and stime of /proc/thread-self/stat (clock ticks of 10 ms), read from the main thread.
 */
function mainThreadCpuMs() {
  const own = /** @type {{ threadCpuUsage?: () => { user: number, system: number } }} */ (/** @type {unknown} */ (process)).threadCpuUsage
  if (own) {
    const { user, system } = own.call(process)
    return (user + system) / 1000
  }
  try {
    const fields = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return Number.NaN
  }
}

/** @returns {Promise<{ port: number, close(): Promise<void> }>} */
function startServer() {
  return listen((req, res) => {
    if (req.url === '/json') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_BODY.length })
      res.end(JSON_BODY)
    } else {
      res.writeHead(404)
      res.end('not found')
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Statistics and output.

/** `median (min–max)` of one figure over the runs. @param {number[]} values @param {(n: number) => string} format */
function spread(values, format) {
  if (values.length === 1) return format(values[0])
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`
}

const ms = (/** @type {number} */ n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
const times = (/** @type {number} */ n) => `${n.toFixed(n >= 10 ? 0 : 1)}×`
const whole = (/** @type {number} */ n) => n.toFixed(0)
const percent = (/** @type {number} */ n) => `${(n * 100).toFixed(0)}%`

/** A markdown table; the first column left-aligned, the others right-aligned. @param {string[]} header @param {string[][]} rows */
function markdown(header, rows) {
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const cells = (/** @type {string[]} */ row) => `| ${row.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join(' | ')} |`
  const rule = `| ${width.map((w, i) => (i === 0 ? `${'-'.repeat(w)}` : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`
  return [cells(header), rule, ...rows.map(cells)].join('\n')
}

// ---------------------------------------------------------------------------------------------
// The run.

/**
 * What one scenario measured in one run.
 * @typedef {{ latencies: number[], hostileRequests: number, seconds: number, busyMs: number, utilization: number, delayP99Ms: number, loadCalls: number, hostileOnly?: { activeMs: number, cpuMs: number } }} Sample
 */

/** @param {Array<() => Promise<unknown> | unknown>} cleanup */
async function main(cleanup) {
  const began = performance.now()
  console.log(`capsule-host fairness bench: Node ${process.version}, ${process.platform}/${process.arch}, ${os.availableParallelism()} CPUs available`)
  console.log(`load average at start: ${loadAverage()} (other work on the machine skews every number)`)

  const server = await startServer()
  cleanup.push(() => server.close())
  const { port } = server
  const table = /** @type {Record<string, string[]>} */ ({ 'bench.test': ['127.0.0.1'] })
  const fetch = createSafeFetch({
    rules: { host: 'bench.test', httpsOnly: false, port },
    resolver: async (name) => {
      const found = table[name]
      if (!found) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' })
      return found
    },
    addressPolicy: { allow: ['127.0.0.1/32'] },
    telemetry: false,
  })
  cleanup.push(() => fetch.close())
  const runtime = createRuntime({ fetch, isolation: 'worker' })
  cleanup.push(() => runtime.close())

  const goodRequest = JSON.stringify({ url: `http://bench.test:${port}/json` })
  const hostileUrl = `http://hostile.test:${port}/`
  const expectedBody = JSON_BODY.toString()
  console.log(`upstream: node:http in this process on 127.0.0.1:${port} (bench.test); hostile requests name ${hostileUrl} (no rule: refused, never resolved)`)

  const good = await runtime.load({ wasm: PROBE, id: 'good' })
  /** @type {import('../dist/index.js').Capsule[]} */
  const hostile = []
  for (let i = 1; i <= HOSTILE; i++) hostile.push(await runtime.load({ wasm: PROBE, id: `hostile-${i}` }))

  /** Audit events per hostile capsule, and a wake-up for whoever waits for the next one. */
  const seen = new Map(hostile.map((c) => [c.id, 0]))
  let hostileEvents = 0
  let hostileAllowed = 0
  /** @type {(() => void) | undefined} */
  let onHostile
  fetch.audit.on('request', (event) => {
    const n = seen.get(event.capsuleId)
    if (n === undefined) return
    if (event.allowed) hostileAllowed++ // a listener's throw would be swallowed; checked after each run
    seen.set(event.capsuleId, n + 1)
    hostileEvents++
    onHostile?.()
  })

  const once = async () => {
    const t0 = performance.now()
    const reply = /** @type {{ status: number, body: string }} */ ((await good.call('request', goodRequest)).json())
    const elapsed = performance.now() - t0
    if (reply.status !== 200 || reply.body !== expectedBody) throw new Error(`probe.request: unexpected reply ${JSON.stringify(reply)}`)
    return elapsed
  }

  // spin_count rounds that take about SPIN_CALL_MS on one hostile capsule, the machine otherwise quiet.
  const trial = 20_000_000
  const t0 = performance.now()
  await hostile[0].call('spin_count', String(trial))
  const spinCount = Math.max(1, Math.round((trial * SPIN_CALL_MS) / (performance.now() - t0)))
  console.log(`spin_count calibrated: ${spinCount} rounds ≈ ${SPIN_CALL_MS} ms per call`)

  /**
   * Starts the scenario's load on every hostile capsule: a loop of calls, each bounded, until
   * stopped. `started` settles once every capsule has shown it is running (for a flood: its
   * first audit event; for spin: its first call done).
   * @param {'spin' | typeof KINDS[number]} kind
   */
  const startLoad = (kind) => {
    let stopped = false
    const deadline = performance.now() + START_TIMEOUT_MS + SCENARIO_MS + 60_000
    let calls = 0
    /** @type {Array<Promise<void>>} */
    const firstCalls = []
    const loops = hostile.map((capsule) => {
      /** @type {() => void} */
      let firstDone = () => {}
      firstCalls.push(new Promise((resolve) => (firstDone = resolve)))
      const input =
        kind === 'spin' ? String(spinCount) : JSON.stringify({ kind, count: FLOOD_PER_CALL[kind], url: hostileUrl })
      return (async () => {
        for (let i = 0; i < LOAD_CALLS_MAX && !stopped && performance.now() < deadline; i++) {
          const out = await capsule.call(kind === 'spin' ? 'spin_count' : 'flood', input)
          calls++
          if (kind !== 'spin') {
            const summary = /** @type {{ sent: number, errors: number, firstError: string | null }} */ (out.json())
            if (summary.errors !== summary.sent) throw new Error(`${capsule.id}: ${summary.sent - summary.errors} hostile requests were not refused`)
          }
          firstDone()
        }
      })()
    })
    const running = kind === 'spin' ? Promise.all(firstCalls) : untilEveryHostileSeen()
    /** @type {NodeJS.Timeout | undefined} */
    let timer
    const started = Promise.race([
      running,
      Promise.all(loops).then(() => {
        throw new Error(`the ${kind} load ended before it was seen running`)
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the ${kind} load was not seen running within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
      }),
    ]).finally(() => clearTimeout(timer))
    return {
      started,
      calls: () => calls,
      /** Lets every loop finish its call in progress (bounded), then reports failures. */
      async stop() {
        stopped = true
        await Promise.all(loops)
      },
    }
  }

  /** Resolves once every hostile capsule has an audit event it did not have when this was called. */
  const untilEveryHostileSeen = () => {
    const before = new Map(seen)
    return new Promise((resolve) => {
      const check = () => {
        if ([...seen].every(([id, n]) => n > /** @type {number} */ (before.get(id)))) {
          onHostile = undefined
          resolve(undefined)
        }
      }
      onHostile = check
    })
  }

  /**
   * Runs one scenario: starts its load, waits until it runs, measures sequential well-behaved
   * requests (REQUESTS of them or SCENARIO_MS, whichever ends first), stops the load.
   * @param {'alone' | 'spin' | typeof KINDS[number]} scenario
   * @returns {Promise<Sample>}
   */
  const measure = async (scenario) => {
    const running = scenario === 'alone' ? undefined : startLoad(scenario)
    try {
      await running?.started
      for (let i = 0; i < SETTLE; i++) await once()
      const calls0 = running?.calls() ?? 0
      const hostile0 = hostileEvents
      const delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS })
      delay.enable()
      const elu0 = performance.eventLoopUtilization()
      const start = performance.now()
      const latencies = []
      while (latencies.length < REQUESTS && performance.now() - start < SCENARIO_MS) latencies.push(await once())
      const elu = performance.eventLoopUtilization(elu0)
      const seconds = (performance.now() - start) / 1000
      delay.disable()
      return {
        latencies,
        hostileRequests: hostileEvents - hostile0,
        seconds,
        busyMs: elu.active,
        utilization: elu.utilization,
        delayP99Ms: Math.max(0, delay.percentile(99) / 1e6 - DELAY_RESOLUTION_MS),
        loadCalls: (running?.calls() ?? 0) - calls0,
      }
    } finally {
      await running?.stop()
    }
  }

  /**
   * The main thread's busy time per hostile request, measured with the hostile capsules alone
   * (no well-behaved request shares the window): event-loop active time over the window,
   * divided by the hostile requests the audit log saw in it.
   * @param {typeof KINDS[number]} kind
   */
  const measureHostileOnly = async (kind) => {
    const running = startLoad(kind)
    try {
      await running.started
      const hostile0 = hostileEvents
      const elu0 = performance.eventLoopUtilization()
      const cpu0 = mainThreadCpuMs()
      await new Promise((resolve) => setTimeout(resolve, HOSTILE_ONLY_MS))
      const elu = performance.eventLoopUtilization(elu0)
      const served = hostileEvents - hostile0
      return { activeMs: served > 0 ? elu.active / served : NaN, cpuMs: served > 0 ? (mainThreadCpuMs() - cpu0) / served : NaN }
    } finally {
      await running.stop()
    }
  }

  console.log(`\n${WARMUP} warm-up requests alone, then ${RUNS} runs of: alone, spin, ${KINDS.map((k) => `flood ${k}`).join(', ')}`)
  console.log(`each scenario measures up to ${REQUESTS} sequential GETs of a ${JSON_BODY.length}-byte JSON body, for at most ${SCENARIO_MS / 1000} s`)
  for (let i = 0; i < WARMUP; i++) await once()

  const scenarios = /** @type {const} */ (['alone', 'spin', ...KINDS])
  /** @type {Record<string, Sample[]>} */
  const samples = Object.fromEntries(scenarios.map((s) => [s, []]))
  for (let run = 0; run < RUNS; run++) {
    const line = []
    for (const scenario of scenarios) {
      const sample = await measure(scenario)
      if (scenario !== 'alone' && scenario !== 'spin') sample.hostileOnly = await measureHostileOnly(scenario)
      samples[scenario].push(sample)
      line.push(`${scenario} p50 ${ms(quantile(sample.latencies, 0.5))} ms (n ${sample.latencies.length})`)
    }
    console.log(`run ${run + 1}/${RUNS}: ${line.join(', ')}; load average ${loadAverage()}`)
    if (hostileAllowed > 0) throw new Error(`${hostileAllowed} hostile requests were allowed`)
  }
  for (const capsule of hostile) await capsule.unload()

  const alone = samples.alone
  const busyPerGood = alone.map((s) => s.busyMs / s.latencies.length)
  const p50 = (/** @type {Sample} */ s) => quantile(s.latencies, 0.5)
  const p99 = (/** @type {Sample} */ s) => quantile(s.latencies, 0.99)
  const rows = scenarios.map((scenario) => {
    const runs = samples[scenario]
    const hostileActive = runs.map((s) => s.hostileOnly?.activeMs ?? NaN)
    const hostileCpu = runs.map((s) => s.hostileOnly?.cpuMs ?? NaN)
    const byRun = (/** @type {(s: Sample, i: number) => number} */ f) => runs.map(f)
    return [
      scenario === 'alone' || scenario === 'spin' ? scenario : `flood ${scenario}`,
      spread(byRun((s) => s.latencies.length), whole),
      spread(byRun(p50), ms),
      spread(byRun(p99), ms),
      spread(byRun((s, i) => p50(s) / p50(alone[i])), times),
      spread(byRun((s, i) => p99(s) / p99(alone[i])), times),
      spread(byRun((s, i) => p99(s) / p99(samples.spin[i])), times),
      scenario === 'alone' || scenario === 'spin' ? '-' : spread(byRun((s) => s.hostileRequests / s.seconds), whole),
      scenario === 'alone' || scenario === 'spin' ? '-' : spread(hostileCpu, ms),
      scenario === 'alone' || scenario === 'spin' ? '-' : spread(hostileActive, ms),
      spread(byRun((s) => s.utilization), percent),
      spread(byRun((s) => s.delayP99Ms), ms),
    ]
  })
  console.log(`\nmedian (min–max) over ${RUNS} runs; latencies of the well-behaved capsule's probe.request, in ms`)
  console.log(
    markdown(
      ['scenario', 'requests', 'p50 ms', 'p99 ms', 'p50 vs alone', 'p99 vs alone', 'p99 vs spin', 'hostile req/s', 'main CPU ms / hostile req', 'main active ms / hostile req', 'main ELU', 'loop delay p99 ms'],
      rows,
    ),
  )
  console.log(`\nmain busy per well-behaved request alone: ${spread(busyPerGood, ms)} ms`)
  console.log(`per hostile request: measured with the hostile capsules alone for ${HOSTILE_ONLY_MS / 1000} s after each flood row, divided by the hostile`)
  console.log(`  audit events; CPU is the main thread's own CPU time (${'threadCpuUsage' in process ? 'process.threadCpuUsage()' : '/proc/thread-self/stat, 10 ms ticks'}), active is event-loop active`)
  console.log('  time, which also counts the time the OS gave the main thread\'s core to a busy worker mid-task')
  console.log('notes: vs alone / vs spin are ratios of the same run\'s figures. spin: 3 capsules loop in Wasm with no host call, so it')
  console.log('  shows what CPU contention alone (2 cores here) does to the well-behaved capsule. main ELU: event-loop utilization of')
  console.log('  the main thread during the measurement; loop delay: monitorEventLoopDelay over the same window, less its 1 ms sampling interval.')
  console.log(`load average at end: ${loadAverage()}`)
  console.log(`\ntotal fairness bench time ${((performance.now() - began) / 1000).toFixed(1)} s`)
}

runBench(main)
