// A loaded capsule: one call at a time, its output helpers, and unloading that leaves nothing behind.
import { CapsuleError } from '../errors.js'
import { utf8Bytes } from '../utf8-bytes.js'

const decoder = new TextDecoder()

/** Runs a capsule's exports somewhere (a worker thread, or the host's thread). */
export interface CapsuleEngine {
  /** Runs one export to completion; rejects with a CapsuleError. */
  call(name: string, input: Uint8Array, timeoutMs: number): Promise<Uint8Array>
  /** Stops the engine for good and releases everything it holds. Idempotent. */
  close(): Promise<void>
  /** False once the engine has stopped, by `close()` or on its own (a worker that died). */
  readonly alive: boolean
}

/** A capsule call in progress, as its capsule sees it: ended once, with the error that failed it, if any. */
export interface CallInProgress {
  end(error?: unknown): void
}

/**
 * Watches a capsule's calls: what `Capsule.call` starts around each one (the capsule's CapsuleHttp,
 * which makes the call the parent of the requests it makes).
 */
export interface CallTracker {
  startCall(exportName: string): CallInProgress
}

/** What an export returned. */
export class CallOutput {
  readonly #bytes: Uint8Array
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes
  }
  bytes(): Uint8Array {
    return this.#bytes
  }
  text(): string {
    return decoder.decode(this.#bytes)
  }
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T
  }
}

/**
 * An export's input: text (sent as UTF-8), bytes (any typed array, DataView, ArrayBuffer or
 * SharedArrayBuffer, sent as they are), nothing (empty), or any other JSON-serialisable value.
 */
export type CallInput = string | ArrayBufferView | ArrayBuffer | SharedArrayBuffer | object | number | boolean | null | undefined

/** True for ArrayBuffer and SharedArrayBuffer, from this realm or another (a vm context, a worker). */
function isBuffer(value: unknown): value is ArrayBuffer | SharedArrayBuffer {
  const tag = Object.prototype.toString.call(value)
  return tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]'
}

function encodeInput(input: unknown): Uint8Array {
  if (input === undefined) return new Uint8Array(0)
  if (typeof input === 'string') return utf8Bytes(input)
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  if (isBuffer(input)) return new Uint8Array(input)
  let text: string | undefined
  try {
    text = JSON.stringify(input)
  } catch (cause) {
    throw new CapsuleError('invalid_input', `the input has no JSON form (${(cause as Error).message}); give a string, bytes or a JSON-serialisable value`, { cause })
  }
  if (text === undefined) {
    throw new CapsuleError('invalid_input', `a ${typeof input} has no JSON form; give a string, bytes or a JSON-serialisable value`)
  }
  return utf8Bytes(text)
}

/** Errors after which the capsule's state cannot be trusted: it is stopped and must be loaded again. */
const FATAL = new Set(['call_timeout', 'memory_limit'])

export class Capsule {
  readonly id: string
  readonly #engine: CapsuleEngine
  readonly #exports: ReadonlySet<string>
  readonly #callTimeoutMs: number
  readonly #onUnload: () => Promise<void>
  readonly #calls: CallTracker | undefined
  /** Settles after the last call started so far; a queued call starts after it. */
  #queue: Promise<unknown> = Promise.resolve()
  /** Calls started and not yet settled (the one running, and those queued behind it). */
  #inFlight = 0
  #stopped: string | undefined
  #stopping: Promise<void> | undefined

  /** @internal Created by `Runtime.load`. */
  constructor(id: string, engine: CapsuleEngine, exports: ReadonlySet<string>, callTimeoutMs: number, onUnload: () => Promise<void>, calls?: CallTracker) {
    this.id = id
    this.#calls = calls
    this.#engine = engine
    this.#exports = exports
    this.#callTimeoutMs = callTimeoutMs
    this.#onUnload = onUnload
  }

  /** The function exports of the module. */
  get exports(): ReadonlySet<string> {
    return this.#exports
  }

  /**
   * Calls an export. Calls to one capsule run one at a time, in order (an Extism instance
   * corrupts its state when calls overlap); a call to an idle capsule starts at once.
   */
  call(name: string, input?: CallInput): Promise<CallOutput> {
    const run = () => this.#run(name, input)
    const result = this.#inFlight++ === 0 ? run() : this.#queue.then(run, run)
    this.#queue = result.then(this.#settled, this.#settled)
    return result
  }

  /** Runs after each call settles, before its caller resumes: the next call of an idle capsule starts at once. */
  readonly #settled = () => {
    this.#inFlight--
  }

  /** Runs one call, as a span when the capsule has telemetry (its requests are the span's children). */
  async #run(name: string, input: CallInput): Promise<CallOutput> {
    const call = this.#calls?.startCall(name)
    let output: CallOutput
    try {
      output = new CallOutput(await this.#engine.call(name, this.#inputFor(name, input), this.#callTimeoutMs))
    } catch (error) {
      await this.#stopIfSpoilt(error)
      call?.end(error)
      throw error
    }
    call?.end()
    return output
  }

  /** The call's input as bytes, once the capsule is known to be loaded and to export `name`. */
  #inputFor(name: string, input: CallInput): Uint8Array {
    if (this.#stopped) throw new CapsuleError('unloaded', `capsule ${this.id} ${this.#stopped}`)
    if (!this.#exports.has(name)) {
      throw new CapsuleError('no_such_export', `capsule ${this.id} has no export "${name}"; it exports ${[...this.#exports].join(', ')}`)
    }
    return encodeInput(input)
  }

  /** After a failed call: stops the capsule when its state cannot be trusted (FATAL) or its engine died. */
  async #stopIfSpoilt(error: unknown): Promise<void> {
    const code = error instanceof CapsuleError ? error.code : 'capsule_failed'
    if (FATAL.has(code) || !this.#engine.alive) await this.#stop(`was stopped (${code}); load it again`)
  }

  /** Stops once; every caller waits for the same, complete stop. */
  #stop(why: string): Promise<void> {
    if (!this.#stopping) {
      this.#stopped = why
      this.#stopping = (async () => {
        await this.#engine.close()
        await this.#onUnload()
      })()
    }
    return this.#stopping
  }

  /** Aborts everything the capsule has in flight, stops it and frees it. Idempotent. */
  unload(): Promise<void> {
    return this.#stop('was unloaded')
  }
}
