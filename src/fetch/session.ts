// One capsule's session in the safe fetch: its limits, capabilities, connections, concurrency, abort and streams.
import { Agent } from 'undici'
import { CapsuleHostError } from '../errors.js'
import type { Capabilities } from '../gate/capabilities.js'
import type { Limits } from '../limits.js'
import type { CompiledQuota } from '../quota/quotas.js'
import type { RequestControl } from './request-control.js'
import { RequestSlots } from './request-slots.js'

/** An open stream as the session keeps it: how to end it when the capsule is released. */
export interface SessionStream<T> {
  readonly response: T
  /** Ends the stream as cancelled (records its event) and releases its socket. */
  cancel(): void
}

export interface SessionOptions {
  readonly capsuleId: string
  readonly limits: Readonly<Limits>
  /** What the capsule's manifest declared; undefined: no manifest, the host's rules alone. */
  readonly capabilities: Capabilities | undefined
  /** Node's bundled roots plus the host's extra CAs, or undefined for Node's defaults. */
  readonly ca: ReadonlyArray<string | Buffer> | undefined
  /** True for a session made by `registerCapsule` (a runtime's capsule), false for an ad hoc caller's. */
  readonly registered: boolean
  /** The quotas its requests take (the host's and its manifest's), and its manifest's name for key functions. */
  readonly quotas: SessionQuotas
}

export interface SessionQuotas {
  readonly quotas: readonly CompiledQuota[]
  readonly manifestName: string | undefined
}

/**
 * Everything that belongs to one capsule: its undici Agent (no connection is shared between
 * capsules), its concurrency limiter, the controls of its requests in flight, and the stream
 * table with `limits.maxOpenStreams` slots. Releasing the session releases all of it.
 */
export class CapsuleSession<T = unknown> {
  readonly capsuleId: string
  readonly limits: Readonly<Limits>
  readonly capabilities: Capabilities | undefined
  readonly registered: boolean
  readonly quotas: SessionQuotas
  readonly agent: Agent
  /** Bounds the capsule's buffered requests in flight; cleared (ending every wait) on release. */
  readonly slots: RequestSlots
  readonly #released = new AbortController()
  readonly #streams = new Map<string, SessionStream<T> | undefined>()
  #nextHandle = 1
  #releasing: Promise<void> | undefined
  /** Requests and stream starts in flight, so a release ends only once each has recorded its event. */
  readonly #inFlight = new Set<Promise<unknown>>()
  /** The controls of the requests and streams not yet ended: the release aborts each (no listener per request). */
  readonly controls = new Set<RequestControl>()

  constructor(options: SessionOptions) {
    this.capsuleId = options.capsuleId
    this.limits = options.limits
    this.capabilities = options.capabilities
    this.registered = options.registered
    this.quotas = options.quotas
    this.agent = new Agent({
      // Our own timers run every phase; this is the backstop for a connect attempt we gave up on.
      connect: { timeout: options.limits.connectTimeoutMs, ...(options.ca ? { ca: [...options.ca] } : {}) },
      allowH2: false,
      headersTimeout: 0,
      bodyTimeout: 0,
    })
    this.slots = new RequestSlots(options.limits.maxConcurrentRequests)
  }

  /** Aborted when the session is released (its requests' controls are aborted with it). */
  get signal(): AbortSignal {
    return this.#released.signal
  }

  /** Runs `work` as one of the capsule's requests in flight (release waits for it to settle). */
  track<R>(work: Promise<R>): Promise<R> {
    this.#inFlight.add(work)
    const forget = () => this.#inFlight.delete(work)
    work.then(forget, forget)
    return work
  }

  /** Nothing in flight and no stream open: releasing it loses nothing but its idle connections. */
  get idle(): boolean {
    return this.#inFlight.size === 0 && this.#streams.size === 0
  }

  /** Streams open or starting: each holds one of `limits.maxOpenStreams` slots until it is freed. */
  get openStreams(): number {
    return this.#streams.size
  }

  /** Takes a stream slot and names it with a handle never used before; undefined when every slot is taken. */
  reserveStream(): string | undefined {
    if (this.#streams.size >= this.limits.maxOpenStreams || this.signal.aborted) return undefined
    const handle = String(this.#nextHandle++)
    this.#streams.set(handle, undefined)
    return handle
  }

  /** The reserved slot now holds an open stream. */
  attachStream(handle: string, stream: SessionStream<T>): void {
    if (this.#streams.has(handle)) this.#streams.set(handle, stream)
  }

  /** The open stream of a handle, if it is open. */
  stream(handle: string): T | undefined {
    return this.#streams.get(handle)?.response
  }

  /** Frees a slot (the stream closed, failed or never started); idempotent. */
  freeStream(handle: string): void {
    this.#streams.delete(handle)
  }

  /** Aborts everything the capsule has in flight, cancels its streams and closes its sockets; once. */
  release(): Promise<void> {
    this.#releasing ??= this.#release()
    return this.#releasing
  }

  async #release(): Promise<void> {
    // Nothing happens before `#releasing` is set: a listener that releases again gets the same promise.
    await null
    const cancelled = new CapsuleHostError('cancelled', 'the capsule was released')
    this.#released.abort(cancelled)
    for (const control of [...this.controls]) control.abort(cancelled)
    const streams = [...this.#streams.values()]
    this.#streams.clear()
    for (const stream of streams) stream?.cancel()
    this.slots.clear(cancelled)
    await this.agent.destroy(cancelled)
    // Every request aborted above records its event before the release is over.
    await Promise.allSettled([...this.#inFlight])
  }
}
