// The stream queue bound and hand-over: a body reader queues about one read's worth (not a fixed high-water mark), hands a waiting read what one turn of the loop brought, and copies into a caller's buffer; as a unit and on loopback.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { afterAll, describe, expect, test } from 'vitest'
import type { AuditEvent, StreamedResponse } from '../src/index.js'
import { CapsuleHostError } from '../src/errors.js'
import {
  DEFAULT_READ_AHEAD_BYTES,
  MAX_READ_AHEAD_BYTES,
  PullBodyReader,
  type BodySource,
  type PausedMessage,
} from '../src/net/transport/body-reader.js'
import { closeAllFetches, ctx, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

const KiB = 1024
const MiB = 1024 * KiB

/** `total` bytes of a pattern that shows any byte lost, repeated or reordered, cut into `size`-byte chunks. */
function patternChunks(total: number, size: number): Buffer[] {
  const body = Buffer.alloc(total)
  for (let i = 0; i < total; i++) body[i] = (i * 31 + (i >> 8)) & 0xff
  const chunks: Buffer[] = []
  for (let at = 0; at < total; at += size) chunks.push(body.subarray(at, Math.min(total, at + size)))
  return chunks
}

/**
 * undici's side of one hop, as the reader sees it: it delivers the chunks on its "socket" one by
 * one until push() says pause, stops after that chunk, and on resume() delivers again at once
 * (re-entering the reader, as undici's parser does). `ready`: the whole body is on the socket from
 * the start; `trickle`: one chunk arrives (in a microtask) each time a read has to wait.
 */
class FakeExchange implements BodySource {
  readonly reader: PullBodyReader
  /** What the controller was told, in order. */
  readonly calls: Array<'pause' | 'resume'> = []
  /** Every push: bytes queued before and after it, and the chunk's size. */
  readonly pushes: Array<{ before: number; after: number; chunk: number; paused: boolean }> = []
  readonly #socket: Buffer[]
  /** The next chunk on the socket. */
  #next = 0
  readonly #trickle: boolean
  #paused = false
  #ended = false

  constructor(chunks: Buffer[], arrival: 'ready' | 'trickle') {
    this.reader = new PullBodyReader(this)
    this.#socket = chunks
    this.#trickle = arrival === 'trickle'
    if (!this.#trickle) this.#deliver(Number.POSITIVE_INFINITY)
  }

  waiting(): void {
    if (this.#trickle) queueMicrotask(() => this.#deliver(1))
  }

  delivered(): void {}

  resume(): void {
    if (!this.#paused) throw new Error('resume() while not paused')
    this.calls.push('resume')
    this.#paused = false
    this.#deliver(this.#trickle ? 0 : Number.POSITIVE_INFINITY)
  }

  cancel(): void {}

  #deliver(most: number): void {
    for (let n = 0; n < most && !this.#paused && this.#next < this.#socket.length; n++) {
      const chunk = this.#socket[this.#next++]!
      const before = this.reader.buffered
      const accepted = this.reader.push(chunk)
      this.pushes.push({ before, after: this.reader.buffered, chunk: chunk.length, paused: !accepted })
      if (!accepted) {
        this.#paused = true
        this.calls.push('pause')
      }
    }
    if (this.#next === this.#socket.length && !this.#ended) {
      this.#ended = true
      this.reader.end()
    }
  }
}

describe('the reader queues about one read\'s worth', () => {
  test('before the first read: one default read-ahead (128 KiB), then a pause, whatever the chunk size', () => {
    expect(DEFAULT_READ_AHEAD_BYTES).toBe(128 * KiB)
    for (const [size, queued] of [
      [64 * KiB, 128 * KiB], // undici's chunk: two, and it pauses
      [16 * KiB, 128 * KiB], // eight
      [40 * KiB, 160 * KiB], // four: the fourth passes 128 KiB, and the pause comes after it
      [100 * KiB, 200 * KiB], // two larger chunks
      [1, 128 * KiB],
    ] as const) {
      const exchange = new FakeExchange(patternChunks(256 * KiB, size), 'ready')
      expect(exchange.reader.buffered, `chunks of ${size}`).toBe(queued)
      expect(exchange.calls, `chunks of ${size}`).toEqual(['pause'])
    }
  })

  test.each([
    // [read size, the read-ahead it sets]
    ['no size', undefined, DEFAULT_READ_AHEAD_BYTES],
    ['1 byte', 1, 1],
    ['7 bytes', 7, 7],
    ['64 KiB - 1', 64 * KiB - 1, 64 * KiB - 1],
    ['100 KiB', 100 * KiB, 100 * KiB],
    ['256 KiB (the SDK buffer)', 256 * KiB, 256 * KiB],
    ['256 KiB + 1: capped', 256 * KiB + 1, MAX_READ_AHEAD_BYTES],
    ['1 GiB: capped', 1024 * MiB, MAX_READ_AHEAD_BYTES],
  ])('a read of %s lets the queue fill to its read-ahead, then pauses', async (_name, maxBytes, readAhead) => {
    const chunk = 16 * KiB
    const exchange = new FakeExchange(patternChunks(4 * MiB, chunk), 'ready')
    const first = await exchange.reader.read(maxBytes)
    expect(first!.length).toBe(Math.min(maxBytes ?? chunk, DEFAULT_READ_AHEAD_BYTES))
    const left = DEFAULT_READ_AHEAD_BYTES - first!.length
    if (left >= readAhead) {
      // At least the new read-ahead is still queued: no resume, nothing more received.
      expect(exchange.calls).toEqual(['pause'])
      expect(exchange.reader.buffered).toBe(left)
    } else {
      // One resume; the queue refills to the read-ahead, and not one chunk past it.
      expect(exchange.calls).toEqual(['pause', 'resume', 'pause'])
      expect(exchange.reader.buffered).toBeGreaterThanOrEqual(readAhead)
      expect(exchange.reader.buffered).toBeLessThan(readAhead + chunk)
    }
  })

  test('pause and resume come exactly at the read-ahead: a pause on the push that reaches it, a resume on the read that takes the queue below it', async () => {
    const chunk = 64 * KiB
    const exchange = new FakeExchange(patternChunks(1 * MiB, chunk), 'ready')
    const { reader, calls } = exchange
    expect(calls).toEqual(['pause'])
    // One read-ahead queued; reads of 7 leave 7 or more queued: no resume, no push.
    for (let i = 0; i < 100; i++) expect((await reader.read(7))!.length).toBe(7)
    expect(calls).toEqual(['pause'])
    expect(exchange.pushes).toHaveLength(DEFAULT_READ_AHEAD_BYTES / chunk)
    // A read of everything queued takes it below its size: one resume, chunks up to it, one pause again.
    expect((await reader.read(DEFAULT_READ_AHEAD_BYTES))!.length).toBe(DEFAULT_READ_AHEAD_BYTES - 700)
    expect(calls).toEqual(['pause', 'resume', 'pause'])
    expect(reader.buffered).toBe(DEFAULT_READ_AHEAD_BYTES)
    expect(exchange.pushes).toHaveLength((2 * DEFAULT_READ_AHEAD_BYTES) / chunk)
  })

  test.each(
    (['ready', 'trickle'] as const).flatMap((arrival) =>
      [1000, 16 * KiB, 40 * KiB, 64 * KiB, 100 * KiB].flatMap((chunk) =>
        [undefined, 1, 4096, 64 * KiB, 256 * KiB, 1024 * MiB].map((read) => [arrival, chunk, read] as const),
      ),
    ),
  )('%s body in chunks of %i, reads of %s: every byte once, in order; the queue never passes the read-ahead plus one chunk', async (arrival, chunk, read) => {
    // Byte-sized reads get a short body (each read is a turn of the loop); the others pass the largest read-ahead a few times.
    const total = read === 1 ? 8 * KiB + 3 : 1 * MiB + 123
    const chunks = patternChunks(total, chunk)
    const exchange = new FakeExchange(chunks, arrival)
    const pieces: Uint8Array[] = []
    let readAhead = DEFAULT_READ_AHEAD_BYTES
    let checked = 0
    const checkPushes = () => {
      for (; checked < exchange.pushes.length; checked++) {
        const push = exchange.pushes[checked]!
        // A push comes only while the queue is below the read-ahead (the exchange was not paused),
        // and it pauses exactly when it reaches it.
        expect(push.before).toBeLessThan(readAhead)
        expect(push.after).toBeLessThan(readAhead + push.chunk)
        expect(push.paused).toBe(push.after >= readAhead)
      }
    }
    checkPushes()
    for (let n = 0; n < 2 * total + 10; n++) {
      readAhead = read === undefined ? DEFAULT_READ_AHEAD_BYTES : Math.min(read, MAX_READ_AHEAD_BYTES)
      const piece = await exchange.reader.read(read)
      checkPushes()
      if (piece === null) break
      expect(piece.length).toBeGreaterThan(0)
      expect(piece.length).toBeLessThanOrEqual(read ?? chunk)
      pieces.push(piece)
    }
    expect(Buffer.concat(pieces).equals(Buffer.concat(chunks))).toBe(true)
    // Every pause was followed by exactly one resume, in turn.
    expect(exchange.calls.every((call, i) => call === (i % 2 === 0 ? 'pause' : 'resume'))).toBe(true)
    expect(exchange.calls.length % 2).toBe(0)
  })

  test('a waiting read smaller than the chunk that comes: the rest is queued and pauses at once when it fills the read-ahead', async () => {
    const exchange = new FakeExchange(patternChunks(1 * MiB, 64 * KiB), 'trickle')
    expect((await exchange.reader.read(1000))!.length).toBe(1000)
    expect(exchange.reader.buffered).toBe(64 * KiB - 1000)
    expect(exchange.calls).toEqual(['pause'])
  })

  test('each pause is published on the diagnostics channel with what is queued', () => {
    const seen: PausedMessage[] = []
    const listener = (message: unknown) => seen.push(message as PausedMessage)
    subscribe('capsule-host:body-reader:paused', listener)
    try {
      const exchange = new FakeExchange(patternChunks(1 * MiB, 40 * KiB), 'ready')
      expect(seen).toEqual([{ reader: exchange.reader, buffered: 160 * KiB, readAhead: DEFAULT_READ_AHEAD_BYTES }])
    } finally {
      unsubscribe('capsule-host:body-reader:paused', listener)
    }
  })
})

describe('200 open, unread streams on loopback (the issue\'s check)', () => {
  const CAPSULES = 50
  const STREAMS_PER_CAPSULE = 4 // the default maxOpenStreams
  const STREAMS = CAPSULES * STREAMS_PER_CAPSULE
  const BODY_BYTES = 16 * MiB
  const BLOCK = Buffer.alloc(64 * KiB, 0x61)

  /** Resolves when every reader in `readers` (once STREAMS of them exist) has paused `times` times. */
  function pausesOf() {
    const byReader = new Map<PullBodyReader, PausedMessage[]>()
    let wanted: { times: number; resolve: () => void } | undefined
    const settled = () => byReader.size === STREAMS && [...byReader.values()].every((m) => m.length >= wanted!.times)
    const listener = (message: unknown) => {
      const paused = message as PausedMessage
      const list = byReader.get(paused.reader) ?? []
      list.push(paused)
      byReader.set(paused.reader, list)
      if (wanted && settled()) wanted.resolve()
    }
    subscribe('capsule-host:body-reader:paused', listener)
    return {
      byReader,
      until: (times: number) =>
        new Promise<void>((resolve) => {
          wanted = { times, resolve }
          if (settled()) resolve()
        }),
      stop: () => unsubscribe('capsule-host:body-reader:paused', listener),
    }
  }

  test('each stream queues one read-ahead and stops reading the socket: before any read, and after a 256 KiB read', { timeout: 60_000 }, async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES })
      let sent = 0
      const pump = () => {
        while (sent < BODY_BYTES) {
          sent += BLOCK.length
          if (!res.write(BLOCK)) return void res.once('drain', pump)
        }
        res.end()
      }
      pump()
    })
    const events: AuditEvent[] = []
    const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, onRequest: (e) => events.push(e) })
    const pauses = pausesOf()
    try {
      const rssBefore = process.memoryUsage.rss()
      const opened = await Promise.all(
        Array.from({ length: STREAMS }, async (_, i) => {
          const stream = await fetch.stream({ url: `http://api.test:${server.port}/big/${i}` }, ctx(`capsule-${i % CAPSULES}`))
          if ('error' in stream) throw new Error(`stream ${i}: ${JSON.stringify(stream.error)}`)
          return stream as StreamedResponse
        }),
      )
      await pauses.until(1)
      const rssUnread = process.memoryUsage.rss()
      const first = [...pauses.byReader.values()].map((m) => m[0]!)
      for (const paused of first) {
        expect(paused.readAhead).toBe(DEFAULT_READ_AHEAD_BYTES)
        expect(paused.buffered).toBeGreaterThanOrEqual(DEFAULT_READ_AHEAD_BYTES)
        // Paused on the chunk that reached the read-ahead: less than one more chunk (of at most 256 KiB) past it.
        expect(paused.buffered).toBeLessThan(DEFAULT_READ_AHEAD_BYTES + 256 * KiB)
      }
      // One 256 KiB read from each (as a capsule's http_stream_read_into does), then the second pause.
      const taken = await Promise.all(opened.map((s) => s.read(256 * KiB)))
      for (const piece of taken) expect(piece!.length).toBeLessThanOrEqual(256 * KiB)
      await pauses.until(2)
      for (const messages of pauses.byReader.values()) {
        // Exactly two pauses: nothing is delivered between a pause and the next read.
        expect(messages).toHaveLength(2)
        expect(messages[1]!.readAhead).toBe(256 * KiB)
        expect(messages[1]!.buffered).toBeGreaterThanOrEqual(256 * KiB)
        expect(messages[1]!.buffered).toBeLessThan(256 * KiB + 256 * KiB)
      }
      const queued = [...pauses.byReader.values()].reduce((sum, m) => sum + m[1]!.buffered, 0)
      for (const stream of opened) stream.close()
      await waitTurns(() => events.length === STREAMS)
      // The bytes the readers took off the sockets are what was read plus what was queued at the
      // last pause: not one byte came after a pause (the socket really stopped).
      const received = events.reduce((sum, e) => sum + e.bytesIn, 0)
      const read = taken.reduce((sum, piece) => sum + piece!.length, 0)
      expect(received).toBe(read + queued)
      expect(received / STREAMS).toBeLessThan(768 * KiB)
      // For information only (RSS is noisy: GC timing, socket buffers, other tests): not asserted.
      console.log(
        `200 unread streams: ${(rssUnread - rssBefore) / MiB | 0} MiB RSS growth; after one 256 KiB read each, ` +
          `${(queued / STREAMS / KiB).toFixed(0)} KiB queued per stream (${(received / MiB).toFixed(1)} MiB received in all)`,
      )
    } finally {
      pauses.stop()
    }
  })
})

describe('the last bytes of a declared body', () => {
  test('are not paused on: the body ends without a read, and a server that then closes the idle connection fails nothing', async () => {
    const body = Buffer.alloc(DEFAULT_READ_AHEAD_BYTES, 0x62) // fills the read-ahead exactly with its last byte
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': body.length })
      res.end(body)
    })
    server.server.keepAliveTimeout = 1
    const serverClosed = new Promise<void>((resolve) => server.server.once('connection', (socket) => socket.once('close', () => resolve())))
    // undici publishes the trailers when the message is complete: only after the end was seen.
    const completed = new Promise<void>((resolve) => {
      const listener = (message: unknown) => {
        if ((message as { request: { path: string } }).request.path !== '/exact') return
        unsubscribe('undici:request:trailers', listener)
        resolve()
      }
      subscribe('undici:request:trailers', listener)
    })
    const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    const stream = await fetch.stream({ url: `http://api.test:${server.port}/exact` }, ctx('exact'))
    if ('error' in stream) throw new Error(JSON.stringify(stream.error))
    await completed
    await serverClosed
    const pieces: Uint8Array[] = []
    for (let piece = await stream.read(); piece !== null; piece = await stream.read()) pieces.push(piece)
    expect(Buffer.concat(pieces).equals(body)).toBe(true)
  })
})

describe('a body that ends when the server closes (no length, not chunked)', () => {
  test('is never paused: the server sends it all and closes before any read, and it arrives whole', async () => {
    const body = Buffer.alloc(4 * DEFAULT_READ_AHEAD_BYTES, 0x63) // far more than one read-ahead
    let serverClosed!: Promise<void>
    const server = createNetServer((socket) => {
      serverClosed = new Promise((resolve) => socket.once('close', () => resolve()))
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n')
        socket.end(body)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    try {
      const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port } })
      const stream = await fetch.stream({ url: `http://api.test:${port}/close-delimited` }, ctx('close-delimited'))
      if ('error' in stream) throw new Error(JSON.stringify(stream.error))
      // Paused on its last chunk when the server closed, undici 7 would fail an assertion and end the process.
      await serverClosed
      const pieces: Uint8Array[] = []
      for (let piece = await stream.read(); piece !== null; piece = await stream.read()) pieces.push(piece)
      expect(Buffer.concat(pieces).equals(body)).toBe(true)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

/** Waits, one event-loop turn at a time (bounded), until `done()`; throws when it never is. */
async function waitTurns(done: () => boolean, turns = 10_000): Promise<void> {
  for (let n = 0; n < turns; n++) {
    if (done()) return
    await new Promise(setImmediate)
  }
  throw new Error(`not done after ${turns} event-loop turns`)
}

describe('a read of nothing', () => {
  test.each([0, -1, Number.NaN])('read(%s) is a RangeError, the stream stays readable', async (maxBytes) => {
    const server = await startServer((_req, res) => res.end('hello'))
    const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    const stream = await fetch.stream({ url: `http://api.test:${server.port}/` }, ctx('read-nothing'))
    if ('error' in stream) throw new Error(JSON.stringify(stream.error))
    await expect(stream.read(maxBytes)).rejects.toThrow(new RangeError(`maxBytes must be at least 1, not ${maxBytes}`))
    expect(Buffer.from((await stream.read())!).toString()).toBe('hello')
    stream.close()
  })
})

/** A source that records what the reader asks of it and delivers nothing by itself: the test pushes. */
function quietReader() {
  const asked: string[] = []
  const source: BodySource = {
    waiting: () => void asked.push('waiting'),
    delivered: () => void asked.push('delivered'),
    resume: () => void asked.push('resume'),
    cancel: () => void asked.push('cancel'),
  }
  return { reader: new PullBodyReader(source), asked }
}

/** True once `promise` has settled; checked after the microtasks queued so far have run (no timer). */
function settledFlag(promise: Promise<unknown>) {
  const state = { settled: false }
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  )
  return state
}

const drainMicrotasks = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

describe('a waiting read is handed what arrives in the same turn of the event loop', () => {
  test('a sized read takes every chunk pushed before the turn ends, in one piece; the idle phase ends once', async () => {
    const { reader, asked } = quietReader()
    const read = reader.read(256 * KiB)
    const [a, b, c] = patternChunks(3 * 1000, 1000)
    reader.push(a!)
    reader.push(b!)
    reader.push(c!)
    const piece = await read
    expect(Buffer.from(piece!).equals(Buffer.concat([a!, b!, c!]))).toBe(true)
    expect(reader.buffered).toBe(0)
    expect(asked).toEqual(['waiting', 'delivered'])
  })

  test('a read of no size gets the first chunk at once and leaves the next queued', async () => {
    const { reader } = quietReader()
    const read = reader.read()
    const [a, b] = patternChunks(2000, 1000)
    reader.push(a!)
    reader.push(b!)
    expect(await read).toBe(a)
    expect(reader.buffered).toBe(1000)
  })

  test.each([
    ['exactly fills it', 100, 100],
    ['passes it', 150, 100],
  ])('a sized read is settled at once (before the turn ends) by a chunk that %s', async (_name, chunk, taken) => {
    const { reader } = quietReader()
    const read = reader.read(100)
    const state = settledFlag(read)
    reader.push(patternChunks(chunk, chunk)[0]!)
    await drainMicrotasks()
    expect(state.settled).toBe(true)
    expect((await read)!.length).toBe(taken)
    expect(reader.buffered).toBe(chunk - taken)
  })

  test('a sized read not yet filled is not settled before the turn ends', async () => {
    const { reader } = quietReader()
    const read = reader.read(100)
    const state = settledFlag(read)
    reader.push(patternChunks(99, 99)[0]!)
    await drainMicrotasks()
    expect(state.settled).toBe(false)
    expect((await read)!.length).toBe(99)
  })

  test('the body ends while a hand-over is pending: the read gets what is queued, the next read the end', async () => {
    const { reader } = quietReader()
    const read = reader.read(1000)
    reader.push(patternChunks(10, 10)[0]!)
    reader.end()
    expect((await read)!.length).toBe(10)
    expect(await reader.read(1000)).toBeNull()
  })

  test('the body fails while a hand-over is pending: the read rejects, and nothing is handed over afterwards', async () => {
    const { reader } = quietReader()
    const read = reader.read(1000)
    reader.push(patternChunks(10, 10)[0]!)
    const failure = new CapsuleHostError('network', 'reset')
    reader.fail(failure)
    await expect(read).rejects.toBe(failure)
    await new Promise(setImmediate)
    expect(reader.buffered).toBe(0)
    await expect(reader.read(1000)).rejects.toBe(failure)
  })
})

describe('readInto copies what is queued straight into the target', () => {
  test.each(
    (['ready', 'trickle'] as const).flatMap((arrival) =>
      [1000, 64 * KiB, 100 * KiB].flatMap((chunk) => [1, 4096, 64 * KiB, 256 * KiB, 1024 * KiB].map((size) => [arrival, chunk, size] as const)),
    ),
  )('%s body in chunks of %i, a target of %i bytes: every byte once, in order, then 0', async (arrival, chunk, size) => {
    const total = size === 1 ? 8 * KiB + 3 : 1 * MiB + 123
    const chunks = patternChunks(total, chunk)
    const { reader } = new FakeExchange(chunks, arrival)
    const target = new Uint8Array(size)
    const pieces: Buffer[] = []
    for (let n = 0; n < 2 * total + 10; n++) {
      const count = await reader.readInto(target)
      if (count === 0) break
      expect(count).toBeLessThanOrEqual(size)
      pieces.push(Buffer.from(target.subarray(0, count)))
    }
    expect(Buffer.concat(pieces).equals(Buffer.concat(chunks))).toBe(true)
    expect(await reader.readInto(target)).toBe(0)
  })

  test('several queued chunks fill the target in one read, the last one split', async () => {
    const chunks = patternChunks(4 * 1000, 1000)
    const { reader } = quietReader()
    for (const chunk of chunks) reader.push(chunk)
    const target = new Uint8Array(2500)
    expect(await reader.readInto(target)).toBe(2500)
    expect(Buffer.from(target).equals(Buffer.concat(chunks).subarray(0, 2500))).toBe(true)
    expect(reader.buffered).toBe(1500)
  })

  test('an empty target is refused', async () => {
    const { reader } = quietReader()
    await expect(reader.readInto(new Uint8Array(0))).rejects.toThrow(new RangeError('maxBytes must be at least 1, not 0'))
  })

  test('a second read while one waits is refused, the first goes on', async () => {
    const { reader } = quietReader()
    const first = reader.readInto(new Uint8Array(10))
    await expect(reader.readInto(new Uint8Array(10))).rejects.toThrow(TypeError)
    await expect(reader.read(10)).rejects.toThrow(TypeError)
    reader.push(Buffer.from('abc'))
    expect(await first).toBe(3)
  })
})

describe('StreamedResponse.readInto on loopback', () => {
  test('reads the whole body into a small buffer, then 0, and records one event with every byte', async () => {
    const body = Buffer.concat(patternChunks(300 * KiB + 7, 64 * KiB))
    const server = await startServer((_req, res) => res.end(body))
    const events: AuditEvent[] = []
    const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, onRequest: (event) => void events.push(event) })
    const stream = await fetch.stream({ url: `http://api.test:${server.port}/` }, ctx('read-into'))
    if ('error' in stream) throw new Error(JSON.stringify(stream.error))
    const target = new Uint8Array(10_000)
    const pieces: Buffer[] = []
    for (let count = await stream.readInto(target); count > 0; count = await stream.readInto(target)) pieces.push(Buffer.from(target.subarray(0, count)))
    expect(Buffer.concat(pieces).equals(body)).toBe(true)
    expect(await stream.readInto(target)).toBe(0)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ allowed: true, status: 200, bytesIn: body.length })
  })

  test.each([
    ['a target that is not a Uint8Array', () => [1, 2, 3] as unknown as Uint8Array, new TypeError('readInto needs a Uint8Array to read into')],
    ['an empty target', () => new Uint8Array(0), new RangeError("the target's byteLength must be at least 1, not 0")],
  ])('%s is refused and the stream stays readable', async (_name, target, error) => {
    const server = await startServer((_req, res) => res.end('hello'))
    const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    const stream = await fetch.stream({ url: `http://api.test:${server.port}/` }, ctx('read-into-bad'))
    if ('error' in stream) throw new Error(JSON.stringify(stream.error))
    await expect(stream.readInto(target())).rejects.toThrow(error)
    const into = new Uint8Array(16)
    expect(Buffer.from(into.subarray(0, await stream.readInto(into))).toString()).toBe('hello')
    stream.close()
  })
})
