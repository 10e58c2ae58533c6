// A synchronous call channel over a SharedArrayBuffer: a worker blocks on Atomics while the main thread answers.

// Control words (Int32) at the start of the buffer, then the data area.
const STATE = 0
const OP = 1
const LENGTH = 2
const MORE = 3
/** A reply's status, set by the main thread's handler (0 unless it says otherwise). */
const STATUS = 4
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
    Atomics.store(this.control, STATE, turn)
    Atomics.notify(this.control, STATE)
    return end
  }

  /** The segment in place: a view of the shared data area, valid until the turn passes back. */
  read(): { view: Uint8Array; more: boolean; op: number; status: number } {
    const length = this.control[LENGTH]!
    return { view: this.data.subarray(0, length), more: this.control[MORE] === 1, op: this.control[OP]!, status: this.control[STATUS]! }
  }

  /** Hands the turn back without data, to ask for the next segment. */
  ack(turn: number): void {
    this.control[LENGTH] = 0
    Atomics.store(this.control, STATE, turn)
    Atomics.notify(this.control, STATE)
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

/** The worker's end: `call` blocks the thread until the main thread has answered. */
export class ChannelClient {
  readonly #segments: Segments

  constructor(buffer: SharedArrayBuffer) {
    this.#segments = new Segments(buffer)
  }

  #waitFor(turn: number): void {
    const control = this.#segments.control
    for (;;) {
      const state = Atomics.load(control, STATE)
      if (state === turn) return
      if (state === CLOSED) throw new ChannelClosedError('the host closed the channel')
      Atomics.wait(control, STATE, state)
    }
  }

  /**
   * Sends `payload` and blocks until the reply has arrived. A reply that fits one segment comes
   * back as a view of the shared buffer, without a copy: use it before the next call.
   */
  call(op: number, payload: Uint8Array): ChannelReply {
    let offset = 0
    do {
      offset = this.#segments.write(op, payload, offset, TO_MAIN)
      this.#waitFor(TO_WORKER)
    } while (offset < payload.byteLength)
    const first = this.#segments.read()
    if (!first.more) {
      Atomics.store(this.#segments.control, STATE, IDLE)
      return { status: first.status, bytes: first.view }
    }
    const parts: Uint8Array[] = [first.view.slice()]
    for (;;) {
      this.#segments.ack(TO_MAIN)
      this.#waitFor(TO_WORKER)
      const segment = this.#segments.read()
      parts.push(segment.view.slice())
      if (!segment.more) break
    }
    Atomics.store(this.#segments.control, STATE, IDLE)
    return { status: first.status, bytes: join(parts) }
  }
}

export type ChannelHandler = (op: number, payload: Uint8Array) => Promise<ChannelReply>

/**
 * The main thread's end: answers the worker's calls one at a time with `handler`, without ever
 * blocking the main thread (Atomics.waitAsync). Returns a function that stops serving.
 */
export function serveChannel(buffer: SharedArrayBuffer, handler: ChannelHandler): () => void {
  const segments = new Segments(buffer)
  const control = segments.control
  let stopped = false

  const waitFor = async (turn: number): Promise<void> => {
    for (;;) {
      if (stopped) throw new ChannelClosedError('stopped')
      const state = Atomics.load(control, STATE)
      if (state === turn) return
      const waited = Atomics.waitAsync(control, STATE, state)
      if (waited.async) await waited.value
    }
  }

  const loop = async () => {
    for (;;) {
      await waitFor(TO_MAIN)
      const parts: Uint8Array[] = []
      let op = 0
      for (;;) {
        const segment = segments.read()
        op = segment.op
        parts.push(segment.view.slice()) // the handler is async: the shared area will be reused
        if (!segment.more) break
        segments.ack(TO_WORKER)
        await waitFor(TO_MAIN)
      }
      const { status, bytes } = await handler(op, join(parts))
      let offset = 0
      do {
        if (stopped) return
        offset = segments.write(op, bytes, offset, TO_WORKER, status)
        if (offset < bytes.byteLength) await waitFor(TO_MAIN)
      } while (offset < bytes.byteLength)
    }
  }
  loop().catch(() => undefined)

  return () => {
    stopped = true
    Atomics.store(control, STATE, CLOSED)
    Atomics.notify(control, STATE)
  }
}
