// The pool isolation: many capsules per worker thread, a runaway's worker replaced without harm to the others, options and unload.
import { readdirSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRuntime, hasJspi, type AuditEvent, type Capsule, type Runtime, type RuntimeOptions } from '../src/index.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'
import { tinyModule } from './helpers/wasm.js'
import { keepAwake } from '../src/runtime/wake.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

/**
 * An upstream that holds every request to /hold until the test releases it, and tells the test
 * when each one arrived (so the test waits on events, never on timers).
 */
interface HoldingServer {
  server: TestServer
  /** Resolves when `count` held requests have arrived in all. */
  arrived(count: number): Promise<void>
  /** Answers every held request (and those that arrive later) with 200 "released". */
  release(): void
}

async function holdingServer(): Promise<HoldingServer> {
  const held: ServerResponse[] = []
  const waiters: Array<{ count: number; resolve: () => void }> = []
  let released = false
  const answer = (res: ServerResponse) => res.end('released')
  const server = await startServer((req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/hold')) return void res.end('quick')
    if (released) return answer(res)
    held.push(res)
    for (const waiter of waiters.filter((w) => held.length >= w.count)) waiter.resolve()
  })
  return {
    server,
    arrived: (count) => new Promise((resolve) => (held.length >= count ? resolve() : waiters.push({ count, resolve }))),
    release() {
      released = true
      for (const res of held.splice(0)) answer(res)
    },
  }
}

const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
})

/** A pool runtime whose capsules may reach api.test (127.0.0.1) on these ports. */
function poolRuntime(ports: number[], options: Partial<RuntimeOptions> = {}): Runtime {
  const rules = ports.length > 0 ? [{ host: 'api.test', httpsOnly: false, port: ports }] : []
  const runtime = createRuntime({ fetch: testFetch({ rules }), isolation: 'pool', ...options })
  runtimes.push(runtime)
  return runtime
}

const request = (capsule: Capsule, url: string) => capsule.call('request', JSON.stringify({ url }))

describe.skipIf(!hasJspi())('pool isolation', () => {
  let upstream: HoldingServer
  beforeAll(async () => {
    upstream = await holdingServer()
  })
  const url = (path: string) => `http://api.test:${upstream.server.port}${path}`

  test('one worker serves many capsules at once: 20 capsules on a pool of 1 all wait in a host call together', async () => {
    const local = await holdingServer()
    const runtime = poolRuntime([local.server.port], { pool: { size: 1 } })
    const capsules = await Promise.all(Array.from({ length: 20 }, () => runtime.load({ wasm: capsulePath('probe') })))
    const calls = capsules.map((capsule) => capsule.call('request', JSON.stringify({ url: `http://api.test:${local.server.port}/hold` })))
    // Only a worker that suspends each capsule in its host call gets all 20 requests out before any answer.
    await local.arrived(20)
    local.release()
    for (const call of calls) expect((await call).json()).toMatchObject({ status: 200, body: 'released' })
  })

  test('pooled calls in flight are counted in the keep-awake (workers spin and pool threads linger only below one a core), and every end gives its count back', async () => {
    const local = await holdingServer()
    const runtime = poolRuntime([local.server.port], { pool: { size: 1 } })
    const capsules = await Promise.all(Array.from({ length: 3 }, () => runtime.load({ wasm: capsulePath('probe') })))
    const before = keepAwake.inFlight
    const held = capsules.slice(0, 2).map((capsule) => request(capsule, `http://api.test:${local.server.port}/hold`))
    await local.arrived(2)
    expect(keepAwake.inFlight - before).toBe(2)
    await expect(capsules[2]!.call('nope')).rejects.toMatchObject({ code: 'no_such_export' }) // refused before the pool: not counted
    expect(keepAwake.inFlight - before).toBe(2)
    local.release()
    for (const call of held) expect((await call).json()).toMatchObject({ status: 200, body: 'released' })
    expect(keepAwake.inFlight).toBe(before)
    await expect(capsules[2]!.call('crash')).rejects.toMatchObject({ code: 'capsule_failed' }) // a failed call gives its count back too
    expect(keepAwake.inFlight).toBe(before)
  })

  test('a stream that opens for a capsule whose worker was replaced meanwhile is closed: the capsule keeps every stream slot', async () => {
    const held = await holdingServer()
    const runtime = poolRuntime([held.server.port, upstream.server.port], { pool: { size: 1 } })
    const healthy = await runtime.load({ wasm: capsulePath('probe'), id: 'healthy-streams' })
    const spinner = await runtime.load({ wasm: capsulePath('probe'), id: 'spinner-streams', limits: { callTimeoutMs: 300 } })
    // The stream's event is recorded when it ends: here, when the answer nobody will see is discarded.
    const ended = new Promise<AuditEvent>((resolve) => {
      runtime.audit.on('request', (event) => {
        if (event.capsuleId === 'healthy-streams' && event.kind === 'stream') resolve(event)
      })
    })
    const inFlight = healthy.call('stream', JSON.stringify({ url: `http://api.test:${held.server.port}/hold` })).catch((e: unknown) => e)
    await held.arrived(1)
    await expect(spinner.call('spin')).rejects.toMatchObject({ code: 'call_timeout' })
    expect(await inFlight).toMatchObject({ code: 'capsule_failed', hostCode: 'cancelled' })
    held.release()
    expect(await ended).toMatchObject({ kind: 'stream', allowed: true })
    const replies = (await healthy.call('hold_streams', JSON.stringify({ request: { url: url('/quick') }, count: 4 }))).json<Array<{ status?: number }>>()
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200, 200])
  })

  test('a runaway capsule is stopped at its time limit; the capsule beside it on the same worker is cancelled, instantiated again, and its next call works', async () => {
    const held = await holdingServer()
    const runtime = poolRuntime([held.server.port, upstream.server.port], { pool: { size: 1 } })
    const healthy = await runtime.load({ wasm: capsulePath('probe'), id: 'healthy' })
    const spinner = await runtime.load({ wasm: capsulePath('probe'), id: 'spinner', limits: { callTimeoutMs: 300 } })
    const inFlight = healthy.call('request', JSON.stringify({ url: `http://api.test:${held.server.port}/hold` })).catch((e: unknown) => e)
    await held.arrived(1)
    await expect(spinner.call('spin')).rejects.toMatchObject({ code: 'call_timeout' })
    expect(await inFlight).toMatchObject({
      code: 'capsule_failed',
      hostCode: 'cancelled',
      message: expect.stringContaining('another capsule on its pool worker ran past its time limit'),
    })
    held.release()
    expect((await healthy.call('echo', 'still here')).text()).toBe('still here')
    expect((await request(healthy, url('/quick'))).json()).toMatchObject({ status: 200, body: 'quick' })
    await expect(spinner.call('echo', 'x')).rejects.toMatchObject({ code: 'unloaded' })
    expect([...runtime.capsules.keys()]).toEqual(['healthy'])
    const again = await runtime.load({ wasm: capsulePath('probe'), id: 'spinner' })
    expect((await again.call('echo', 'back')).text()).toBe('back')
  })

  test('a capsule whose load waited behind a runaway on the same worker loads on the new worker', async () => {
    const runtime = poolRuntime([], { pool: { size: 1 } })
    const spinner = await runtime.load({ wasm: capsulePath('probe'), limits: { callTimeoutMs: 300 } })
    const spinning = spinner.call('spin')
    // Posted after the call, so the worker takes it only once the spin is over: here, when the worker is replaced.
    const late = runtime.load({ wasm: capsulePath('probe') })
    await expect(spinning).rejects.toMatchObject({ code: 'call_timeout' })
    expect((await (await late).call('echo', 'loaded')).text()).toBe('loaded')
  })

  test('a capsule that times out while it waits in a host call is stopped without replacing its worker: the call beside it completes', async () => {
    const held = await holdingServer()
    const runtime = poolRuntime([held.server.port], { pool: { size: 1 } })
    const neighbour = await runtime.load({ wasm: capsulePath('probe') })
    const waiter = await runtime.load({ wasm: capsulePath('probe'), limits: { callTimeoutMs: 300 } })
    const neighbourCall = request(neighbour, `http://api.test:${held.server.port}/hold`)
    await held.arrived(1)
    const waiting = request(waiter, `http://api.test:${held.server.port}/hold`)
    await held.arrived(2)
    await expect(waiting).rejects.toMatchObject({ code: 'call_timeout' })
    held.release()
    expect((await neighbourCall).json()).toMatchObject({ status: 200, body: 'released' })
  })

  test('a module whose start function loops fails to load in time; a capsule on the same worker is instantiated again and works', async () => {
    const runtime = poolRuntime([], { pool: { size: 1 }, limits: { callTimeoutMs: 300 } })
    const healthy = await runtime.load({ wasm: capsulePath('probe') })
    await expect(runtime.load({ wasm: tinyModule({ exports: ['f'], startLoops: true }) })).rejects.toMatchObject({
      code: 'load_failed',
      message: expect.stringContaining('did not finish instantiating within 300 ms'),
    })
    expect(runtime.capsules.size).toBe(1)
    expect((await healthy.call('echo', 'ok')).text()).toBe('ok')
  })

  test('unloading one capsule frees only its instance; a call in flight fails with unloaded', async () => {
    const held = await holdingServer()
    const runtime = poolRuntime([held.server.port], { pool: { size: 1 } })
    const [a, b] = await Promise.all([runtime.load({ wasm: capsulePath('probe') }), runtime.load({ wasm: capsulePath('probe') })])
    const pending = request(a!, `http://api.test:${held.server.port}/hold`)
    await held.arrived(1)
    await a!.unload()
    await expect(pending).rejects.toMatchObject({ code: 'unloaded' })
    await expect(a!.call('echo', 'x')).rejects.toMatchObject({ code: 'unloaded' })
    expect((await b!.call('echo', 'b')).text()).toBe('b')
    held.release()
  })

  test('capsules go to the least loaded worker, and each worker keeps its own capsules apart', async () => {
    const runtime = poolRuntime([], { pool: { size: 2 } })
    const capsules = await Promise.all(Array.from({ length: 6 }, (_, i) => runtime.load({ wasm: capsulePath('probe'), config: { n: String(i) } })))
    const seen = await Promise.all(capsules.map(async (c) => (await c.call('config_get', 'n')).text()))
    expect(seen).toEqual(['0', '1', '2', '3', '4', '5'])
  })

  test("Extism's kernel HTTP goes through the main thread's rules and audit", async () => {
    const runtime = poolRuntime([upstream.server.port], { pool: { size: 1 } })
    const events: Array<{ abi?: string; allowed: boolean }> = []
    runtime.audit.on('request', (event) => void events.push(event))
    const plugin = await runtime.load({ wasm: capsulePath('extism-http'), id: 'kernel-http' })
    expect((await plugin.call('http_request', JSON.stringify({ url: url('/quick') }))).text()).toBe('quick')
    await expect(plugin.call('http_request', JSON.stringify({ url: 'http://elsewhere.test/' }))).rejects.toMatchObject({ code: 'capsule_failed', hostCode: 'denied' })
    expect(events).toMatchObject([
      { abi: 'extism', allowed: true },
      { abi: 'extism', allowed: false },
    ])
  })

  test.skipIf(process.platform !== 'linux')('runtime.close() ends the pool: its worker threads are gone', async () => {
    const threads = () => readdirSync('/proc/self/task').length
    const runtime = poolRuntime([], { pool: { size: 2 } })
    const [a, b] = await Promise.all([runtime.load({ wasm: capsulePath('probe') }), runtime.load({ wasm: capsulePath('probe') })])
    await Promise.all([a!.call('echo', '1'), b!.call('echo', '2')])
    const running = threads()
    await runtime.close()
    expect(threads()).toBe(running - 2)
    await expect(runtime.load({ wasm: capsulePath('probe') })).rejects.toMatchObject({ code: 'unloaded' })
  })
})

describe('pool options', () => {
  const fetch = testFetch()
  test.each([
    [{ size: 0 }, 'createRuntime: pool.size must be a whole number of worker threads from 1 to 1024, not 0'],
    [{ size: 1.5 }, 'createRuntime: pool.size must be a whole number of worker threads from 1 to 1024, not 1.5'],
    [{ size: 1025 }, 'createRuntime: pool.size must be a whole number of worker threads from 1 to 1024, not 1025'],
    [{ size: '2' }, 'createRuntime: pool.size must be a whole number of worker threads from 1 to 1024, not "2"'],
    [{ sizes: 2 }, 'createRuntime: unknown option "pool.sizes"; did you mean "pool.size"?'],
    ['big', 'createRuntime: pool must be an object, not a string'],
  ])('pool %j is refused', (pool, message) => {
    expect(() => createRuntime({ fetch, pool: pool as never })).toThrow(new TypeError(message))
  })

  test.each([1, 1024])('pool.size %i is accepted', (size) => {
    expect(() => createRuntime({ fetch, isolation: 'pool', pool: { size } }).close()).not.toThrow()
  })

  test('a misspelt isolation proposes the name', () => {
    expect(() => createRuntime({ fetch, isolation: 'pol' as never })).toThrow(
      new TypeError('createRuntime: isolation must be "worker", "inline" or "pool", not "pol"; did you mean "pool"?'),
    )
  })
})

describe.runIf(!hasJspi())('pool isolation without JSPI', () => {
  test('loading is unsupported, naming the Node versions that have JSPI', async () => {
    const runtime = createRuntime({ fetch: testFetch(), isolation: 'pool' })
    runtimes.push(runtime)
    await expect(runtime.load({ wasm: capsulePath('probe') })).rejects.toMatchObject({
      code: 'unsupported',
      message: expect.stringMatching(/^isolation "pool" needs JS Promise Integration .*use Node 25\+ \(or 24 with --experimental-wasm-jspi\), or isolation "worker"$/),
    })
  })
})
