// Host deadlines: a gate, the policy or middleware that never answers gives timeout (phase host), frees what it held, and leaves the capsule usable.
import type { IncomingMessage } from 'node:http'
import { afterAll, describe, expect, test, vi } from 'vitest'
import { createRuntime, type AuditEvent, type Middleware, type MiddlewareResponse, type Runtime, type SafeFetch, type SafeFetchOptions } from '../src/index.js'
import { withinHostTime, HostClock, type HostBudget } from '../src/fetch/host-deadline.js'
import { capsulePath, describeIsolations } from './helpers/capsules.js'
import { closeAllFetches, ctx, errorOf, ok, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
  await closeAllServers()
})

const HOST_MS = 60
const hang = (): Promise<never> => new Promise<never>(() => {})
/** Requests whose path starts with /hang hang the host step under test; the rest pass. */
const hangs = (path: string) => path.startsWith('/hang')
const pathOf = (url: string) => new URL(url).pathname

/** The upstream: /drip sends a head and one chunk and never ends; everything else answers "ok". */
let server: TestServer
const closed: Array<Promise<void>> = []
async function upstream(): Promise<TestServer> {
  server ??= await startServer((req: IncomingMessage, res) => {
    if (req.url?.endsWith('/drip')) {
      closed.push(new Promise((resolve) => res.on('close', () => resolve())))
      res.writeHead(200)
      return void res.write('first')
    }
    res.end('ok')
  })
  return server
}

/**
 * `hostStep` is what the timeout message names; `decidedBy` is the event's decider: the gate or the
 * policy that did not answer refuses (gating), while middleware runs after the rule allowed, so its
 * timeout is a failure after an allow, credited to the rule. `allowedBy` decides a request that passes.
 */
type Step = { name: string; hostStep: string; decidedBy: string; allowedBy: string; gating: boolean; options: (port: number) => SafeFetchOptions }
const rule = (port: number, middleware?: Middleware) => ({ host: 'api.test', httpsOnly: false, port, ...(middleware ? { middleware } : {}) })

const STEPS: Step[] = [
  {
    name: 'a hanging gate',
    hostStep: 'gate:audit',
    decidedBy: 'gate:audit',
    allowedBy: 'rule:api.test',
    gating: true,
    options: (port) => ({ rules: rule(port), gates: [{ name: 'audit', check: (r) => (hangs(r.path) ? hang() : { allow: true }) }] }),
  },
  {
    name: 'a hanging policy',
    hostStep: 'policy',
    decidedBy: 'policy',
    allowedBy: 'policy',
    gating: true,
    options: () => ({ policy: (r) => (hangs(r.path) ? hang() : r.host === 'api.test') }),
  },
  {
    name: 'a policy that resolve()s, then hangs',
    hostStep: 'policy',
    decidedBy: 'policy',
    allowedBy: 'policy',
    gating: true,
    options: () => ({
      policy: async (r) => {
        const addresses = await r.resolve()
        return hangs(r.path) ? hang() : addresses.includes('127.0.0.1')
      },
    }),
  },
  {
    name: 'middleware hanging before next()',
    hostStep: 'middleware',
    decidedBy: 'rule:api.test',
    allowedBy: 'rule:api.test',
    gating: false,
    options: (port) => ({ rules: rule(port, (c, next) => (hangs(pathOf(c.req.url)) ? hang() : next())) }),
  },
  {
    name: 'middleware hanging after next() returned',
    hostStep: 'middleware',
    decidedBy: 'rule:api.test',
    allowedBy: 'rule:api.test',
    gating: false,
    options: (port) => ({
      rules: rule(port, async (c, next) => {
        const res = await next()
        return hangs(pathOf(c.req.url)) ? hang() : res
      }),
    }),
  },
]

/** A safe fetch for `step` with a small host deadline and a log of its audit events. */
async function setup(step: Step, limits: SafeFetchOptions['limits'] = {}) {
  const { port } = await upstream()
  const fetch = testFetch({ ...step.options(port), limits: { hostTimeoutMs: HOST_MS, ...limits } })
  const events: AuditEvent[] = []
  fetch.audit.on('request', (e) => events.push(e))
  return { fetch, events, base: `http://api.test:${port}` }
}

const message = (decidedBy: string) => `the host's ${decidedBy} did not answer within ${HOST_MS} ms`

describe.each(STEPS)('$name', (step) => {
  const expected = { code: 'timeout', phase: 'host', message: message(step.hostStep) }
  const audited = {
    code: 'timeout',
    phase: 'host',
    decidedBy: step.decidedBy,
    allowed: !step.gating,
    ...(step.gating ? { reason: 'a host step did not answer in time' } : {}),
    detail: message(step.hostStep),
  }
  const noReason = (events: AuditEvent[]) => {
    if (!step.gating) for (const event of events) expect(event).not.toHaveProperty('reason')
  }

  test('request: timeout, phase host; the audit event says so; the next request works', async () => {
    const { fetch, events, base } = await setup(step)
    const before = server.requests.length
    expect(errorOf(await fetch.request({ url: `${base}/hang` }, ctx('req')))).toEqual(expected)
    expect(events).toEqual([expect.objectContaining({ kind: 'request', ...audited })])
    noReason(events)
    // Only middleware that hangs after next() let the request reach the upstream.
    expect(server.requests.length - before).toBe(step.name.includes('after') ? 1 : 0)
    expect(ok(await fetch.request({ url: `${base}/fine` }, ctx('req'))).body).toBe('ok')
  })

  test('stream: timeout, phase host at start; an upstream body is cancelled; the next stream works', async () => {
    const { fetch, events, base } = await setup(step)
    const count = closed.length
    expect(errorOf(await fetch.stream({ url: `${base}/hang/drip` }, ctx('str')))).toEqual(expected)
    expect(events).toEqual([expect.objectContaining({ kind: 'stream', ...audited })])
    noReason(events)
    // After next() returned, the upstream body was open: giving up cancelled it.
    if (closed.length > count) await closed[count]
    expect(closed.length - count).toBe(step.name.includes('after') ? 1 : 0)
    const next = await fetch.stream({ url: `${base}/fine` }, ctx('str'))
    if ('error' in next) throw new Error(JSON.stringify(next.error))
    expect(Buffer.from((await next.read())!).toString()).toBe('ok')
    next.close()
  })

  test('explain: the same timeout as data (middleware is not run by explain)', async () => {
    const { fetch, base } = await setup(step)
    const explained = await fetch.explain({ url: `${base}/hang` }, ctx('exp'))
    const addresses = [{ address: '127.0.0.1', class: 'loopback' }]
    if (step.gating) {
      expect(explained).toEqual({
        allowed: false,
        code: 'timeout',
        phase: 'host',
        decidedBy: step.decidedBy,
        reason: 'a host step did not answer in time',
        detail: message(step.hostStep),
      })
    } else {
      expect(explained).toEqual({ allowed: true, decidedBy: step.allowedBy, addresses })
    }
    expect(await fetch.explain({ url: `${base}/fine` }, ctx('exp'))).toEqual({ allowed: true, decidedBy: step.allowedBy, addresses })
  })

  test('maxConcurrentRequests 2: three hung requests do not wedge the capsule', async () => {
    const { fetch, base } = await setup(step, { maxConcurrentRequests: 2 })
    const replies = await Promise.all([1, 2, 3].map((i) => fetch.request({ url: `${base}/hang/${i}` }, ctx('wedge'))))
    // The third waited for a slot and then got its own host deadline: the first two freed theirs.
    expect(replies.map(errorOf)).toEqual([expected, expected, expected])
    for (const i of [1, 2, 3]) expect(errorOf(await fetch.request({ url: `${base}/hang/${i}` }, ctx('wedge')))).toEqual(expected)
    const fine = await Promise.all([1, 2, 3].map(() => fetch.request({ url: `${base}/fine` }, ctx('wedge'))))
    expect(fine.map((r) => ok(r).status)).toEqual([200, 200, 200])
  })
})

describe('the deadline and what happens after it', () => {
  const gate = STEPS[0]!

  test('the request total deadline bounds a host step when it is sooner; the slot is free right after', async () => {
    const { fetch, base } = await setup(gate, { hostTimeoutMs: 10_000, maxConcurrentRequests: 1 })
    const stream = await fetch.stream({ url: `${base}/hang`, options: { timeoutMs: 80 } }, ctx('total'))
    expect(errorOf(stream)).toEqual({
      code: 'timeout',
      phase: 'host',
      message: "the host's gate:audit did not answer before the request's 80 ms time limit ran out",
    })
    // Buffered: the total timeout answers, and the exchange holding the only slot ended with it.
    expect(errorOf(await fetch.request({ url: `${base}/hang`, options: { timeoutMs: 80 } }, ctx('total')))?.code).toBe('timeout')
    expect(ok(await fetch.request({ url: `${base}/fine` }, ctx('total'))).status).toBe(200)
  })

  test('a late allow from a gate is ignored: nothing is sent', async () => {
    let allowLate!: () => void
    const late = new Promise<{ allow: true }>((resolve) => (allowLate = () => resolve({ allow: true })))
    const { port } = await upstream()
    const fetch = testFetch({ rules: rule(port), gates: [{ name: 'slow', check: (r) => (hangs(r.path) ? late : { allow: true }) }], limits: { hostTimeoutMs: HOST_MS } })
    const before = server.requests.length
    expect(errorOf(await fetch.request({ url: `http://api.test:${port}/hang` }, ctx('late')))?.phase).toBe('host')
    allowLate()
    await late
    expect(ok(await fetch.request({ url: `http://api.test:${port}/fine` }, ctx('late'))).status).toBe(200)
    expect(server.requests.slice(before).map((r) => r.url)).toEqual(['/fine'])
  })

  test('a late next() from middleware that timed out does not send', async () => {
    let goOn!: () => void
    const released = new Promise<void>((resolve) => (goOn = resolve))
    let lateNext: Promise<unknown> | undefined
    const { port } = await upstream()
    const middleware: Middleware = async (_c, next) => {
      await released
      lateNext = next().catch((error: unknown) => error)
      // What it settles to no longer matters: the chain has answered (timeout) by then.
      return lateNext as Promise<MiddlewareResponse>
    }
    const fetch = testFetch({ rules: rule(port, middleware), limits: { hostTimeoutMs: HOST_MS } })
    const before = server.requests.length
    expect(errorOf(await fetch.request({ url: `http://api.test:${port}/x` }, ctx('late-next')))).toEqual({ code: 'timeout', phase: 'host', message: message('middleware') })
    goOn()
    await released
    expect(lateNext).toBeDefined()
    expect(await lateNext).toMatchObject({ message: 'next() called after the middleware chain had answered' })
    expect(server.requests.length).toBe(before)
  })

  test('time inside next() is the network\'s, not the middleware\'s', async () => {
    const slow = await startServer((_req, res) => setTimeout(() => res.end('slow'), HOST_MS * 4))
    const fetch = testFetch({ rules: rule(slow.port, async (_c, next) => next()), limits: { hostTimeoutMs: HOST_MS } })
    expect(ok(await fetch.request({ url: `http://api.test:${slow.port}/` }, ctx('net'))).body).toBe('slow')
  })

  test('releasing the capsule ends a hung host step at once with cancelled', async () => {
    const { port } = await upstream()
    let entered = 0
    let bothIn!: () => void
    const waiting = new Promise<void>((resolve) => (bothIn = resolve))
    const check = () => {
      if (++entered === 2) bothIn()
      return hang()
    }
    const fetch = testFetch({ rules: rule(port), gates: [{ name: 'stuck', check }], limits: { hostTimeoutMs: 60_000 } })
    const base = `http://api.test:${port}`
    const pending = [fetch.request({ url: `${base}/hang` }, ctx('gone')), fetch.stream({ url: `${base}/hang` }, ctx('gone'))]
    await waiting
    await fetch.releaseCapsule('gone')
    expect((await Promise.all(pending)).map((r) => errorOf(r)?.code)).toEqual(['cancelled', 'cancelled'])
  })

  test('a manifest may lower hostTimeoutMs, never raise it', async () => {
    const { port } = await upstream()
    const fetch = testFetch({ ...gate.options(port), limits: { hostTimeoutMs: HOST_MS } })
    fetch.registerCapsule('raised', { http: ['api.test'], limits: { hostTimeoutMs: 60_000 } })
    expect(errorOf(await fetch.request({ url: `http://api.test:${port}/hang` }, ctx('raised')))?.message).toBe(message('gate:audit'))
    fetch.registerCapsule('lowered', { http: ['api.test'], limits: { hostTimeoutMs: 20 } })
    expect(errorOf(await fetch.request({ url: `http://api.test:${port}/hang` }, ctx('lowered')))?.message).toBe("the host's gate:audit did not answer within 20 ms")
  })
})

describe('withinHostTime and HostClock', () => {
  const budget = (overrides: Partial<HostBudget> = {}): HostBudget => ({ hostTimeoutMs: HOST_MS, deadline: Infinity, totalTimeoutMs: Infinity, signal: undefined, ...overrides })
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

  const WORK: Array<[string, () => unknown, { value: unknown } | { error: string }]> = [
    ['a value', () => 7, { value: 7 }],
    ['a promise', async () => 'yes', { value: 'yes' }],
    ['a synchronous throw', () => { throw new Error('boom') }, { error: 'boom' }],
    ['a rejection', async () => { throw new Error('nope') }, { error: 'nope' }],
    ['never', hang, { error: "the host's step did not answer within 60 ms" }],
  ]
  test.each(WORK)('%s', async (_name, work, outcome) => {
    const result = await withinHostTime(budget(), 'step', work).then(
      (value) => ({ value }),
      (error: Error) => ({ error: error.message }),
    )
    expect(result).toEqual(outcome)
  })

  test('an answer clears the timer: nothing is left to keep the event loop alive', async () => {
    const before = timers()
    const answer = withinHostTime(budget({ hostTimeoutMs: 2 ** 31 - 1 }), 'step', () => 1)
    expect(timers()).toBe(before + 1)
    await answer
    expect(timers()).toBe(before)
  })

  test('an already aborted signal never starts the callback', async () => {
    const controller = new AbortController()
    controller.abort()
    let started = false
    await expect(withinHostTime(budget({ signal: controller.signal }), 'step', () => (started = true))).rejects.toMatchObject({ code: 'cancelled' })
    expect(started).toBe(false)
  })

  test('a paused clock does not run out; it resumes with what was left', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    try {
      const clock = new HostClock(budget(), 'middleware')
      let outcome: string | undefined
      clock.expired.catch((e: Error) => (outcome = e.message))
      await vi.advanceTimersByTimeAsync(HOST_MS - 20)
      clock.pause()
      await vi.advanceTimersByTimeAsync(10 * HOST_MS)
      expect(outcome).toBeUndefined()
      clock.resume()
      await vi.advanceTimersByTimeAsync(19)
      expect(outcome).toBeUndefined()
      await vi.advanceTimersByTimeAsync(1)
      expect(outcome).toBe(message('middleware'))
    } finally {
      vi.useRealTimers()
    }
  })

  test('a total deadline sooner than the host budget decides, and says so', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    try {
      const clock = new HostClock(budget({ deadline: performance.now() + 30, totalTimeoutMs: 500 }), 'policy')
      let outcome: string | undefined
      clock.expired.catch((e: Error) => (outcome = e.message))
      await vi.advanceTimersByTimeAsync(29)
      expect(outcome).toBeUndefined()
      await vi.advanceTimersByTimeAsync(1)
      expect(outcome).toBe("the host's policy did not answer before the request's 500 ms time limit ran out")
    } finally {
      vi.useRealTimers()
    }
  })
})

describeIsolations('through a real capsule (%s)', (isolation) => {
  test('request and stream get the timeout reply, and the capsule stays usable', async () => {
    const { port } = await upstream()
    const fetch: SafeFetch = testFetch({ ...STEPS[0]!.options(port), limits: { hostTimeoutMs: HOST_MS } })
    const runtime = createRuntime({ fetch, isolation, limits: { callTimeoutMs: 5000 } })
    runtimes.push(runtime)
    const probe = await runtime.load({ wasm: capsulePath('probe') })
    const call = async (fn: string, url: string) => (await probe.call(fn, JSON.stringify({ url }))).json<Record<string, any>>()
    const expected = { code: 'timeout', phase: 'host', message: message('gate:audit') }
    expect((await call('request', `http://api.test:${port}/hang`)).error).toEqual(expected)
    expect((await call('stream', `http://api.test:${port}/hang`)).error).toEqual(expected)
    expect(await call('request', `http://api.test:${port}/fine`)).toMatchObject({ status: 200, body: 'ok' })
    expect(await call('stream', `http://api.test:${port}/fine`)).toMatchObject({ status: 200, bytes: 2 })
  })
})
