// Fairness (issue 7): a capsule flooding adversarial requests never starves another capsule's requests.
import { afterAll, beforeAll, expect, test } from 'vitest'
import { createRuntime, type Capsule, type Runtime } from '../src/index.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

/** Sequential requests of the well-behaved capsule per flood kind, and the generous bound on each. */
const REQUESTS = 20
const BOUND_MS = 2_000
/** Requests per flood call (each about 1 MiB), and flood calls at most per test. */
const PER_CALL = 2
const MAX_CALLS = 1_000

interface FloodSummary {
  kind: string
  bytes: number
  sent: number
  errors: number
  firstError: string | null
}

let server: TestServer
let runtime: Runtime
let good: Capsule
let flooder: Capsule
/** Audit events of the flooding capsule so far, and the ones that were allowed (there must be none). */
let flooderEvents = 0
let flooderAllowed = 0
let onFlooderEvent: (() => void) | undefined

beforeAll(async () => {
  server = await startServer((_req, res) => res.end('{"ok":true}'))
  const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
  fetch.audit.on('request', (event) => {
    if (event.capsuleId !== 'flooder') return
    flooderEvents++
    if (event.allowed) flooderAllowed++
    onFlooderEvent?.()
  })
  runtime = createRuntime({ fetch, isolation: 'worker' })
  good = await runtime.load({ wasm: capsulePath('probe'), id: 'well-behaved' })
  flooder = await runtime.load({ wasm: capsulePath('probe'), id: 'flooder' })
})

afterAll(async () => {
  await runtime?.close()
  await closeAllFetches()
  await closeAllServers()
})

/** Resolves at the flooding capsule's next audit event. */
function nextFlooderEvent(): Promise<void> {
  return new Promise((resolve) => {
    onFlooderEvent = () => {
      onFlooderEvent = undefined
      resolve()
    }
  })
}

/**
 * Runs probe.flood of `kind` in a loop (PER_CALL requests a call, at most MAX_CALLS calls)
 * until stopped. The requests name hostile.test, which no rule allows: every one is refused.
 */
function startFlood(kind: string) {
  let stopped = false
  const summaries: FloodSummary[] = []
  const input = JSON.stringify({ kind, count: PER_CALL, url: `http://hostile.test:${server.port}/` })
  const loop = (async () => {
    for (let i = 0; i < MAX_CALLS && !stopped; i++) summaries.push((await flooder.call('flood', input)).json<FloodSummary>())
  })()
  return {
    summaries,
    /** Settles only when the loop ends: on stop(), a failure, or after MAX_CALLS calls. */
    ended: loop,
    /** Lets the call in progress finish, then returns what every call reported. */
    async stop(): Promise<FloodSummary[]> {
      stopped = true
      await loop
      return summaries
    },
  }
}

test.each(['deep', 'headers', 'keys', 'method', 'integrity'])(
  'while a capsule floods %s requests, another capsule makes 20 requests, each succeeds within 2 s',
  async (kind) => {
    const started = nextFlooderEvent()
    const flood = startFlood(kind)
    try {
      await started // the flood has reached the host: its first refused request was recorded
      for (let i = 0; i < REQUESTS; i++) {
        const t0 = performance.now()
        const reply = (await good.call('request', JSON.stringify({ url: `http://api.test:${server.port}/` }))).json<{ status: number; body: string }>()
        const elapsed = performance.now() - t0
        expect(reply).toMatchObject({ status: 200, body: '{"ok":true}' })
        expect(elapsed, `request ${i + 1} of ${REQUESTS}`).toBeLessThan(BOUND_MS)
      }
      // The flood is still going after the well-behaved requests: it reaches the host once more
      // before its loop ends (the loop ends only on stop(), so an early end is a failure).
      const ended = flood.ended.then(() => {
        throw new Error('the flood ended before the well-behaved requests were done')
      })
      await Promise.race([nextFlooderEvent(), ended])
    } finally {
      await flood.stop()
    }
    // Every flood request was refused.
    expect(flooderAllowed).toBe(0)
    const sent = flood.summaries.reduce((n, s) => n + s.sent, 0)
    expect(sent).toBeGreaterThan(0)
    for (const summary of flood.summaries) {
      expect(summary).toMatchObject({ kind, sent: PER_CALL, errors: PER_CALL })
      expect(summary.bytes).toBeGreaterThan(1_000_000)
      expect(summary.bytes).toBeLessThanOrEqual(1024 * 1024)
    }
  },
  REQUESTS * BOUND_MS + 20_000,
)
