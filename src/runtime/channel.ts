// A call channel over a SharedArrayBuffer: a worker blocks on Atomics while the main thread answers, without ever blocking.
import { spinUntil, type SpinPolicy, type WaitKind } from './spin.js'
import { keepAwake, type KeepAwake, type Watch } from './wake.js'

// Control words (Int32) at the start of the buffer, then the data area.
const STATE = 0
const OP = 1
const LENGTH = 2
const MORE = 3
/** A message's status, set by its writer (0 unless it says otherwise). */
const STATUS = 4
/** Bumped by the worker whenever it hands the turn to the main thread; the main thread sleeps on it. */
const BELL = 5
/** 1 while the main thread sleeps on BELL (the worker then notifies it), 0 while it polls. */
const PARKED = 6
const CONTROL_BYTES = 32

// Whose turn it is. The side that writes a segment hands the turn to the other.
const IDLE = 0
const TO_MAIN = 1
const TO_WORKER = 2
const CLOSED = 3

export class ChannelClosedError extends Error {
  override name = 'ChannelClosedError'
}

/** Allocates the shared buffer both sides use; `dataBytes` is the largest segment. */
export function createChannelBuffer(dataBytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_BYTES + dataBytes)
}

/** The largest segment a channel buffer moves at once. */
export function channelDataBytes(buffer: SharedArrayBuffer): number {
  return buffer.byteLength - CONTROL_BYTES
}

class Segments {
  readonly control: Int32Array
  readonly data: Uint8Array
  constructor(buffer: SharedArrayBuffer) {
    this.control = new Int32Array(buffer, 0, CONTROL_BYTES / 4)
    this.data = new Uint8Array(buffer, CONTROL_BYTES)
  }

  /** Writes the segment of `payload` at `offset`; returns the offset after it. */
  write(op: number, payload: Uint8Array, offset: number, turn: number, status = 0): number {
    const length = Math.min(this.data.byteLength, payload.byteLength - offset)
    this.data.set(payload.subarray(offset, offset + length))
    const end = offset + length
    this.control[OP] = op
    this.control[LENGTH] = length
    this.control[MORE] = end < payload.byteLength ? 1 : 0
    this.control[STATUS] = status
    this.#pass(turn)
    return end
  }

  /** The segment in place: a view of the shared data area, valid until the turn passes back. */
  read(): ChannelMessage & { more: boolean } {
    const length = this.control[LENGTH]!
    return { bytes: this.data.subarray(0, length), more: this.control[MORE] === 1, op: this.control[OP]!, status: this.control[STATUS]! }
  }

  /** Hands the turn back without data, to ask for the next segment. */
  ack(turn: number): void {
    this.control[LENGTH] = 0
    this.#pass(turn)
  }

  /** The worker sleeps on STATE; the main thread, only when parked, on BELL (so a polling main thread costs the worker no notify). */
  #pass(turn: number): void {
    Atomics.store(this.control, STATE, turn)
    if (turn !== TO_MAIN) return void Atomics.notify(this.control, STATE)
    Atomics.add(this.control, BELL, 1)
    if (Atomics.load(this.control, PARKED) === 1) Atomics.notify(this.control, BELL)
  }
}

function join(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts))
}

/** A reply: the handler's status, and bytes that may be a view of the shared buffer (see `call`). */
export interface ChannelReply {
  readonly status: number
  readonly bytes: Uint8Array
}

/** A whole message (all its segments): its operation, its writer's status and its bytes. */
export interface ChannelMessage extends ChannelReply {
  readonly op: number
}

/**
 * The worker's end: `call` blocks the thread until the main thread has answered, `nextCall` until
 * the main thread starts a call, `post` sends a message that gets no answer. With a spin policy,
 * each wait spins a while (spin.ts) before it sleeps in Atomics.wait.
 */
export class ChannelClient {
  readonly #segments: Segments

  constructor(
    buffer: SharedArrayBuffer,
    private readonly spin?: SpinPolicy,
  ) {
    this.#segments = new Segments(buffer)
  }

  #waitFor(turn: number, kind: WaitKind): void {
    const control = this.#segments.control
    if (Atomics.load(control, STATE) === turn) return this.spin?.record(kind, 0)
    const began = performance.now()
    const budget = this.spin?.budgetMs(kind) ?? 0
    if (budget > 0) spinUntil(control, STATE, turn, CLOSED, budget, this.spin!)
    for (;;) {
      const state = Atomics.load(control, STATE)
      if (state === turn) break
      if (state === CLOSED) throw new ChannelClosedError('the host closed the channel')
      Atomics.wait(control, STATE, state)
    }
    this.spin?.record(kind, performance.now() - began)
  }

  /** A message the main thread does not answer (`post`) is taken once it sets IDLE: two in a row must not overwrite each other. */
  #waitWhileMainReads(): void {
    const control = this.#segments.control
    for (let state = Atomics.load(control, STATE); state !== IDLE && state !== TO_WORKER; state = Atomics.load(control, STATE)) {
      if (state === CLOSED) throw new ChannelClosedError('the host closed the channel')
      Atomics.wait(control, STATE, state)
    }
  }

  /** Sends every segment of `payload` (each after the other side took the one before). */
  #send(op: number, payload: Uint8Array, status: number): void {
    this.#waitWhileMainReads()
    let offset = 0
    for (;;) {
      offset = this.#segments.write(op, payload, offset, TO_MAIN, status)
      if (offset >= payload.byteLength) return
      this.#waitFor(TO_WORKER, 'reply')
    }
  }

  /** Reads the message whose first segment has arrived, asking for the rest; one segment stays a view. */
  #receive(): ChannelMessage {
    const first = this.#segments.read()
    if (!first.more) return first
    const parts: Uint8Array[] = [first.bytes.slice()]
    for (let more = true; more; ) {
      this.#segments.ack(TO_MAIN)
      this.#waitFor(TO_WORKER, 'reply')
      const segment = this.#segments.read()
      parts.push(segment.bytes.slice())
      more = segment.more
    }
    return { op: first.op, status: first.status, bytes: join(parts) }
  }

  /**
   * Sends `payload` and blocks until the reply has arrived. A reply that fits one segment comes
   * back as a view of the shared buffer, without a copy: use it before the next call.
   */
  call(op: number, payload: Uint8Array): ChannelReply {
    this.#send(op, payload, 0)
    this.#waitFor(TO_WORKER, 'reply')
    const reply = this.#receive()
    Atomics.store(this.#segments.control, STATE, IDLE)
    return reply
  }

  /** Sends a message the main thread does not answer (a call's result, a load's outcome). */
  post(op: number, payload: Uint8Array, status = 0): void {
    this.#send(op, payload, status)
  }

  /** Blocks until the main thread starts a call; the message is a copy, safe across host calls. */
  nextCall(): ChannelMessage {
    this.#waitFor(TO_WORKER, 'call')
    const message = this.#receive()
    return message.bytes.buffer instanceof SharedArrayBuffer ? { ...message, bytes: message.bytes.slice() } : message
  }
}

export type ChannelHandler = (op: number, payload: Uint8Array) => Promise<ChannelReply>

/** A main-thread wait for the worker to hand over the turn. */
interface Waiting {
  readonly turn: number
  readonly resolve: () => void
  readonly reject: (error: Error) => void
}

/**
 * The main thread's end. `exchange` optionally sends a message, then answers the worker's host
 * calls with `handler` until a message `isFinal` says ends the exchange, and returns that message.
 * It never blocks the thread: waits are polled by the keep-awake chain or slept on with
 * Atomics.waitAsync (wake.ts). Messages are copies, never views of the shared buffer.
 */
export class ChannelHost implements Watch {
  readonly #segments: Segments
  #waiting: Waiting | undefined
  #armed = false
  #stopped = false

  constructor(
    buffer: SharedArrayBuffer,
    private readonly handler: ChannelHandler,
    private readonly isFinal: (op: number) => boolean,
    private readonly awake: KeepAwake = keepAwake,
  ) {
    this.#segments = new Segments(buffer)
  }

  async exchange(op?: number, payload?: Uint8Array): Promise<ChannelMessage> {
    if (op !== undefined) await this.#send(op, payload ?? new Uint8Array(0), 0)
    for (;;) {
      const message = await this.#receive()
      if (this.isFinal(message.op)) {
        Atomics.store(this.#segments.control, STATE, IDLE)
        Atomics.notify(this.#segments.control, STATE) // the worker may be waiting to post its next message
        return message
      }
      const reply = await this.handler(message.op, message.bytes)
      await this.#send(message.op, reply.bytes, reply.status)
    }
  }

  /** Stops for good: the worker's waits throw, and so does a pending exchange. */
  close(): void {
    this.#stopped = true
    const control = this.#segments.control
    Atomics.store(control, STATE, CLOSED)
    Atomics.notify(control, STATE)
    Atomics.notify(control, BELL)
    if (this.poll()) this.awake.unwatch(this)
  }

  async #send(op: number, payload: Uint8Array, status: number): Promise<void> {
    let offset = 0
    for (;;) {
      if (this.#stopped) throw new ChannelClosedError('stopped')
      offset = this.#segments.write(op, payload, offset, TO_WORKER, status)
      if (offset >= payload.byteLength) return
      await this.#waitFor(TO_MAIN)
    }
  }

  async #receive(): Promise<ChannelMessage> {
    await this.#waitFor(TO_MAIN)
    const first = this.#segments.read()
    const parts: Uint8Array[] = [first.bytes.slice()] // the shared area is reused once the turn passes
    for (let more = first.more; more; ) {
      this.#segments.ack(TO_WORKER)
      await this.#waitFor(TO_MAIN)
      const segment = this.#segments.read()
      parts.push(segment.bytes.slice())
      more = segment.more
    }
    return { op: first.op, status: first.status, bytes: join(parts) }
  }

  #waitFor(turn: number): Promise<void> | undefined {
    if (this.#stopped) throw new ChannelClosedError('stopped')
    const state = Atomics.load(this.#segments.control, STATE)
    if (state === turn) return undefined
    if (state === CLOSED) throw new ChannelClosedError('the channel is closed')
    return new Promise((resolve, reject) => {
      this.#waiting = { turn, resolve, reject }
      this.awake.watch(this)
    })
  }

  /** Watch: ends the wait when the turn has come (or the channel closed). */
  poll(): boolean {
    const waiting = this.#waiting
    if (!waiting) return true
    const state = Atomics.load(this.#segments.control, STATE)
    if (state !== waiting.turn && state !== CLOSED && !this.#stopped) return false
    this.#waiting = undefined
    if (state === waiting.turn && !this.#stopped) waiting.resolve()
    else waiting.reject(new ChannelClosedError('the channel is closed'))
    return true
  }

  /** Watch: sleeps on BELL. At most one Atomics.waitAsync is outstanding; the state is checked after PARKED is set, so no ring is missed. */
  park(): void {
    const control = this.#segments.control
    Atomics.store(control, PARKED, 1)
    const bell = Atomics.load(control, BELL)
    const state = Atomics.load(control, STATE)
    if (state === this.#waiting?.turn || state === CLOSED) return void queueMicrotask(() => this.awake.woken(this))
    if (this.#armed) return
    this.#armed = true
    const waited = Atomics.waitAsync(control, BELL, bell)
    const rang = waited.async ? waited.value : Promise.resolve()
    void rang.then(() => {
      this.#armed = false
      this.awake.woken(this)
    })
  }

  /** Watch: the keep-awake chain polls; the worker need not notify. */
  unpark(): void {
    Atomics.store(this.#segments.control, PARKED, 0)
  }
}

/**
 * Answers the worker's calls one at a time with `handler`, until stopped (a channel without final
 * messages). Returns a function that stops serving.
 */
export function serveChannel(buffer: SharedArrayBuffer, handler: ChannelHandler): () => void {
  const host = new ChannelHost(buffer, handler, () => false)
  host.exchange().catch(() => undefined)
  return () => host.close()
}
