// The worker channel: framing across segments, calls and results through it, the keep-awake chain and the adaptive spin.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRuntime, type Capsule, type Runtime } from '../src/index.js'
import { ChannelClosedError, ChannelHost, createChannelBuffer, serveChannel } from '../src/runtime/channel.js'
import { RecentWaits, SpinPolicy, SPIN_LIMITS, spinUntil, type SpinEnd } from '../src/runtime/spin.js'
import { KeepAwake, keepAwake, type Watch } from '../src/runtime/wake.js'
import { CHANNEL_DATA_BYTES } from '../src/runtime/worker-protocol.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

const CHANNEL_URL = new URL('../dist/runtime/channel.js', import.meta.url).href
const SPIN_URL = new URL('../dist/runtime/spin.js', import.meta.url).href
const HOST_OP = 1
const CALL = 16
const RESULT = 20

/**
 * A worker on the built channel: each call's bytes go back to the main thread as a host call,
 * and the host's reply (and status) is the call's result. `legacy`: host calls only, as a
 * serveChannel client does, each reply posted back by postMessage. `greet`: first two messages
 * the host does not answer. `busy` is the spin policy's busy word; in `greet` mode also the flag
 * the worker sets before its second message.
 */
function echoWorker(buffer: SharedArrayBuffer, mode: 'calls' | 'legacy' | 'greet', busy = new SharedArrayBuffer(4)): Worker {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads')
    Promise.all([import(workerData.channelUrl), import(workerData.spinUrl)]).then(([{ ChannelClient }, { SpinPolicy }]) => {
      const client = new ChannelClient(workerData.buffer, new SpinPolicy(new Int32Array(workerData.busy), 2))
      if (workerData.mode === 'legacy') {
        parentPort.on('message', (bytes) => parentPort.postMessage(client.call(${HOST_OP}, bytes).bytes.slice()))
        return
      }
      if (workerData.mode === 'greet') {
        client.post(17, new TextEncoder().encode('one'))
        const reached = new Int32Array(workerData.busy)
        Atomics.store(reached, 0, 1) // about to post the second
        Atomics.notify(reached, 0)
        client.post(18, new TextEncoder().encode('two'))
      }
      for (;;) {
        let call
        try { call = client.nextCall() } catch { return }
        const reply = client.call(${HOST_OP}, call.bytes)
        client.post(${RESULT}, reply.bytes, reply.status)
      }
    })`
  return new Worker(code, { eval: true, workerData: { buffer, busy, mode, channelUrl: CHANNEL_URL, spinUrl: SPIN_URL } })
}

const pattern = (size: number) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + (i >> 3)) & 0xff)
const reversed = (bytes: Uint8Array) => Uint8Array.from(bytes).reverse()
/** The host side of echoWorker: answers with the bytes reversed and their length as the status. */
const reverse = async (_op: number, payload: Uint8Array) => ({ status: payload.byteLength, bytes: reversed(payload) })

describe('framing over a 16-byte data segment', () => {
  const buffer = createChannelBuffer(16)
  const host = new ChannelHost(buffer, reverse, (op) => op === RESULT)
  const worker = echoWorker(buffer, 'calls')
  afterAll(async () => {
    host.close()
    await worker.terminate()
  })

  test.each([0, 1, 15, 16, 17, 32, 33, 1000])('a %i-byte call: start, host call, reply and result each cross intact', async (size) => {
    const input = pattern(size)
    const result = await host.exchange(CALL, input)
    expect(result.op).toBe(RESULT)
    expect(result.status).toBe(size)
    expect(Buffer.from(result.bytes).equals(Buffer.from(reversed(input)))).toBe(true)
  })

  test('a result is a copy, not a view of the shared buffer', async () => {
    const result = await host.exchange(CALL, pattern(8))
    expect(result.bytes.buffer).not.toBe(buffer)
    expect(result.bytes.buffer instanceof SharedArrayBuffer).toBe(false)
  })
})

describe('messages the host does not answer', () => {
  test('two in a row both arrive, in order: the second waits until the first is taken', async () => {
    const buffer = createChannelBuffer(64)
    const host = new ChannelHost(buffer, reverse, (op) => op === 17 || op === 18 || op === RESULT)
    const reached = new Int32Array(new SharedArrayBuffer(4))
    const worker = echoWorker(buffer, 'greet', reached.buffer as SharedArrayBuffer)
    const waited = Atomics.waitAsync(reached, 0, 0) // until the worker is at its second post
    if (waited.async) await waited.value
    const first = await host.exchange()
    const second = await host.exchange()
    expect([first.op, Buffer.from(first.bytes).toString(), second.op, Buffer.from(second.bytes).toString()]).toEqual([17, 'one', 18, 'two'])
    expect(Buffer.from((await host.exchange(CALL, pattern(20))).bytes)).toEqual(Buffer.from(reversed(pattern(20))))
    host.close()
    await worker.terminate()
  })
})

describe('closing', () => {
  test('a pending exchange rejects with ChannelClosedError, and the worker waiting for a call stops', async () => {
    const buffer = createChannelBuffer(64)
    const host = new ChannelHost(buffer, reverse, (op) => op === RESULT)
    const worker = echoWorker(buffer, 'calls')
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
    expect(Buffer.from((await host.exchange(CALL, pattern(3))).bytes)).toEqual(Buffer.from(reversed(pattern(3))))
    const waiting = host.exchange() // the worker sends nothing until a call starts
    host.close()
    await expect(waiting).rejects.toBeInstanceOf(ChannelClosedError)
    await expect(host.exchange(CALL, pattern(1))).rejects.toBeInstanceOf(ChannelClosedError)
    expect(await exited).toBe(0)
  })
})

describe('serveChannel (host calls only) keeps working', () => {
  test.each([0, 5, 16, 40])('a %i-byte host call and its reply', async (size) => {
    const buffer = createChannelBuffer(16)
    const stop = serveChannel(buffer, reverse)
    const worker = echoWorker(buffer, 'legacy')
    const reply = new Promise<Uint8Array>((resolve) => worker.once('message', resolve))
    worker.postMessage(pattern(size))
    expect(Buffer.from(await reply)).toEqual(Buffer.from(reversed(pattern(size))))
    stop()
    await worker.terminate()
  })
})

/** A watch that never ends: it counts parks and unparks. */
function neverEnding(): Watch & { parked: Promise<void>; parks: number; unparks: number } {
  let parked!: () => void
  const watch = {
    parks: 0,
    unparks: 0,
    parked: new Promise<void>((resolve) => (parked = resolve)),
    poll: () => false,
    park: () => void (watch.parks++, parked()),
    unpark: () => void watch.unparks++,
  }
  return watch
}

const immediates = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Immediate').length

describe('the keep-awake chain', () => {
  test('runs while a call is held and stops once none is; no Immediate is left behind', async () => {
    const awake = new KeepAwake()
    const before = immediates()
    awake.hold()
    expect(awake.running).toBe(true)
    expect(awake.inFlight).toBe(1)
    awake.release()
    await awake.whenStopped()
    expect(awake.running).toBe(false)
    expect(awake.inFlight).toBe(0)
    expect(awake.counts.ticks).toBeGreaterThan(0)
    expect(immediates()).toBe(before)
  })

  test('a watch is polled while the chain runs, and parked when the chain stops', async () => {
    const awake = new KeepAwake()
    const watch = neverEnding()
    awake.watch(watch)
    expect(watch.parks).toBe(1) // no call in flight: sleep on the bell at once
    awake.hold()
    expect(watch.unparks).toBe(1)
    awake.release()
    await awake.whenStopped()
    expect(watch.parks).toBe(2)
    awake.unwatch(watch)
  })

  test('with a call in flight but nothing happening, the chain stops on its own and parks the watch', async () => {
    const awake = new KeepAwake()
    awake.hold()
    const watch = neverEnding()
    awake.watch(watch)
    expect(watch.unparks).toBe(1)
    await watch.parked
    expect(awake.running).toBe(false)
    expect(awake.inFlight).toBe(1)
    expect(awake.counts.stops).toBe(1)
    awake.woken(watch) // the worker rang: the chain runs again while the call is in flight
    expect(awake.running).toBe(true)
    awake.release()
    await awake.whenStopped()
    awake.unwatch(watch)
  })
})

describe('the worker spin policy', () => {
  const cores = 2
  const policy = (busy: number) => new SpinPolicy(Int32Array.of(busy), cores)

  test.each([
    [0, true],
    [1, true],
    [2, false],
    [17, false],
  ])('with %i busy calls on 2 cores, spinning allowed: %s', (busy, allowed) => {
    const spin = policy(busy)
    expect(spin.allowed()).toBe(allowed)
    expect(spin.budgetMs('reply') > 0).toBe(allowed)
  })

  test.each([
    ['no waits yet: the cap', [], SPIN_LIMITS.capMs],
    ['twice the median', [0.1, 0.2, 0.3], 0.4],
    ['median exactly half the cap', [0.5, 0.5, 0.5], SPIN_LIMITS.capMs],
    ['median over half the cap: no spin', [0.5, 0.6, 0.7], 0],
    ['long waits: no spin', [5, 9, 20], 0],
  ])('budget with %s', (_, waits, budget) => {
    const spin = policy(0)
    for (const ms of waits as number[]) spin.record('reply', ms)
    expect(spin.budgetMs('reply')).toBeCloseTo(budget as number, 9)
    expect(spin.budgetMs('call')).toBe(SPIN_LIMITS.capMs) // each kind keeps its own history
  })

  /** How many waits in a row sleep at once from now on. */
  const skippedWaits = (spin: SpinPolicy) => {
    let waits = 0
    while (spin.budgetMs('call') === 0) waits++
    return waits
  }

  test.each([
    ['timed out', ['timeout'], 2],
    ['timed out twice in a row', ['timeout', 'timeout'], 4],
    ['timed out three times in a row', ['timeout', 'timeout', 'timeout'], 8],
    ['were preempted once', ['preempted'], 2],
    ['were preempted, then timed out', ['preempted', 'timeout'], 4],
    ['timed out, then paid, then timed out', ['timeout', 'changed', 'timeout'], 2],
    ['were preempted, then paid, then were preempted', ['preempted', 'changed', 'preempted'], 2],
    ['paid', ['changed'], 0],
    ['were ended by busy calls', ['busy'], 0],
    ['were preempted seven times in a row', Array(7).fill('preempted'), 128],
    ['were preempted eight times in a row (backoffWaits)', Array(8).fill('preempted'), SPIN_LIMITS.backoffWaits],
    ['were preempted twenty times in a row (still backoffWaits)', Array(20).fill('preempted'), SPIN_LIMITS.backoffWaits],
  ])('after spins that %s, %i waits sleep at once', (_, ends, waits) => {
    const spin = policy(0)
    for (const end of ends as SpinEnd[]) spin.ended(end)
    expect(skippedWaits(spin)).toBe(waits)
    expect(spin.budgetMs('call')).toBe(SPIN_LIMITS.capMs) // then it spins again
  })

  test('every wait that sleeps during a backoff is counted as skipped', () => {
    const spin = policy(0)
    spin.ended('preempted')
    spin.ended('preempted')
    expect(skippedWaits(spin)).toBe(4)
    expect(spin.counts).toMatchObject({ preempted: 2, skipped: 4 })
  })

  test.each([
    ['the word is already there', 7, 0, 'changed'],
    ['the word is the other value', 3, 0, 'changed'],
    ['too many calls are busy', 0, 2, 'busy'],
  ])('spinUntil ends at once when %s', (_, value, busy, end) => {
    const spin = policy(busy as number)
    expect(spinUntil(Int32Array.of(value as number), 0, 7, 3, 1000, spin)).toBe(end)
    expect(spin.counts[end as 'changed']).toBe(1)
  })

  test('the median is of the last 16 waits only', () => {
    const waits = new RecentWaits()
    expect(waits.median()).toBe(Infinity)
    for (let i = 0; i < 16; i++) waits.add(100)
    for (let i = 0; i < 9; i++) waits.add(1)
    expect(waits.median()).toBe(1)
  })
})

describe('worker capsules on the channel', () => {
  let server: TestServer
  let runtime: Runtime
  const capsules: Capsule[] = []
  /** keepAwake.inFlight as each request to /hold saw it, released when `holding` requests have arrived. */
  const seen: number[] = []
  let holding = 1
  let waiters: Array<() => void> = []

  beforeAll(async () => {
    server = await startServer((_req: IncomingMessage, res: ServerResponse) => {
      seen.push(keepAwake.inFlight)
      waiters.push(() => res.end('held'))
      if (waiters.length < holding) return
      for (const release of waiters.splice(0)) release()
    })
    runtime = createRuntime({ fetch: testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } }), isolation: 'worker' })
    for (let i = 0; i < 3; i++) capsules.push(await runtime.load({ wasm: capsulePath('probe'), id: `channel-${i}` }))
  })
  afterAll(async () => {
    await runtime.close()
    await closeAllFetches()
    await closeAllServers()
  })

  test.each([
    ['empty', 0],
    ['one byte', 1],
    ['a call that fills the data segment exactly', CHANNEL_DATA_BYTES - 8],
    ['one byte more', CHANNEL_DATA_BYTES - 7],
    ['three segments and a bit', 3 * CHANNEL_DATA_BYTES + 5],
  ])('echo of %s (%i bytes) comes back intact', async (_, size) => {
    const input = pattern(size)
    const output = (await capsules[0]!.call('echo', input)).bytes()
    expect(output.byteLength).toBe(size)
    expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true)
  })

  test.each([1, 3])('%i concurrent calls count as busy while in flight (what the workers read before they spin)', async (count) => {
    seen.length = 0
    holding = count
    waiters = []
    const url = `http://api.test:${server.port}/hold`
    const replies = await Promise.all(capsules.slice(0, count).map(async (capsule) => (await capsule.call('request', JSON.stringify({ url }))).json<{ status: number }>()))
    expect(replies.map((reply) => reply.status)).toEqual(Array(count).fill(200))
    expect(Math.max(...seen)).toBe(count)
    expect(keepAwake.inFlight).toBe(0)
  })

  test('a call keeps the main loop awake, and the chain stops when no call is in flight', async () => {
    const ticks = keepAwake.counts.ticks
    const before = immediates()
    expect((await capsules[1]!.call('echo', 'awake')).text()).toBe('awake')
    await keepAwake.whenStopped()
    expect(keepAwake.counts.ticks).toBeGreaterThan(ticks) // the chain ran for the call (at least the turn that stopped it)
    expect(keepAwake.running).toBe(false)
    expect(immediates()).toBeLessThanOrEqual(before)
  })
})
