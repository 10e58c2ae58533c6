// @ts-check
// bench/unread-streams.mjs: the RSS that N open, unread streams cost, raw undici against the safe fetch, each measured alone in a fresh process.
//
//   node bench/unread-streams.mjs            # both sides, 3 fresh processes each, interleaved (run.mjs section 3c)
//   node bench/unread-streams.mjs raw|safe   # one side, in this process: prints {"growthBytes": N}
//
// A side starts the loopback server, makes one warm-up request, takes the RSS, opens N streams of
// 64 MiB bodies (4 a session or Agent, as 50 capsules × 4 streams), reads none of them, waits a
// second for every socket to fill what it queues, and takes the RSS again. Connects only to 127.0.0.1.

import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Agent, request as undiciRequest } from 'undici'
import { createSafeFetch } from '../dist/index.js'
import { knob, listen, median } from './common.mjs'
import { upstream } from './paths.mjs'

const MiB = 1024 * 1024
const STREAMS = knob('BENCH_UNREAD_STREAMS', 200)

/** One side in this process: the RSS growth of STREAMS open, unread streams. @param {'raw' | 'safe'} side */
async function measureSide(side) {
  const server = await listen(upstream)
  const url = (/** @type {string} */ host) => `http://${host}:${server.port}/big?bytes=${64 * MiB}`
  const agents = Array.from({ length: Math.ceil(STREAMS / 4) }, () => new Agent({ keepAliveTimeout: 30_000 }))
  const fetch = createSafeFetch({ rules: { host: 'bench.test', httpsOnly: false, port: server.port }, resolver: async () => ['127.0.0.1'], addressPolicy: { allow: ['127.0.0.1/32'] }, limits: { maxOpenStreams: 4 }, telemetry: false })
  const open = async (/** @type {number} */ i) => {
    if (side === 'raw') {
      const { body } = await undiciRequest(url('127.0.0.1'), { dispatcher: agents[i >> 2] })
      return () => body.destroy()
    }
    const s = await fetch.stream(JSON.stringify({ url: url('bench.test') }), { capsuleId: `unread-${i >> 2}` })
    if ('error' in s) throw new Error(JSON.stringify(s.error))
    return () => s.close()
  }
  await (await open(0))()
  const before = process.memoryUsage.rss()
  const closers = await Promise.all(Array.from({ length: STREAMS }, (_, i) => open(i)))
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const growthBytes = process.memoryUsage.rss() - before
  for (const close of closers) close()
  await Promise.all([fetch.close(), ...agents.map((a) => a.destroy())])
  await server.close()
  return growthBytes
}

/** Both sides, `runs` fresh processes each, interleaved; the medians in MiB. */
export function unreadStreamsGrowth(runs = 3) {
  const script = fileURLToPath(import.meta.url)
  /** @type {{ raw: number[], safe: number[] }} */
  const growth = { raw: [], safe: [] }
  for (let run = 0; run < runs; run++) {
    for (const side of /** @type {const} */ (['raw', 'safe'])) {
      const out = execFileSync(process.execPath, [script, side], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      growth[side].push(JSON.parse(out).growthBytes / MiB)
    }
  }
  return { streams: STREAMS, raw: median(growth.raw), safe: median(growth.safe), runs: growth }
}

const side = process.argv[2]
if (side === 'raw' || side === 'safe') console.log(JSON.stringify({ growthBytes: await measureSide(side) }))
else if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(JSON.stringify(unreadStreamsGrowth()))
