// The pool isolation on the main thread: a fixed set of worker threads, each capsule on the least loaded one, reloaded there when its worker is replaced.
import { availableParallelism } from 'node:os'
import { CapsuleError } from '../errors.js'
import type { CapsuleEngine } from './capsule.js'
import { requireJspi } from './inline-engine.js'
import type { EngineLogs } from './logs.js'
import { PoolHost } from './pool-host.js'
import { newStateWord, stopUnlessRunning, type PoolCapsuleSpec } from './pool-protocol.js'
import { PoolThread, type ThreadSlot } from './pool-thread.js'
import type { WorkerEngineOptions } from './worker-engine.js'
import { resolveWorkerScript } from './worker-script.js'

/** The pool's size when `pool.size` is not given: one worker per core Node reports. */
export function defaultPoolSize(): number {
  return availableParallelism()
}

/**
 * The pool worker's script: beside this module when built; from src/ (tests), the build in dist/,
 * refused when it is missing or older than any source it loads (as worker-script.ts does for the worker).
 */
export function poolScript(engineUrl = new URL(import.meta.url)): URL {
  return resolveWorkerScript(engineUrl, 'pool-worker', 'pool worker script')
}

/** The same options as a worker capsule's: `loadTimeoutMs` also bounds how long an unloaded capsule may keep running. */
export type PoolEngineOptions = WorkerEngineOptions

/** One capsule on the pool: its engine, and what its thread needs to instantiate it again. */
class PoolSlot implements ThreadSlot, CapsuleEngine {
  readonly host: PoolHost
  readonly logs: EngineLogs | undefined
  state = newStateWord()
  #spec: Omit<PoolCapsuleSpec, 'state'>
  #ready: Promise<void> = Promise.resolve()
  #load: { resolve: () => void; reject: (error: CapsuleError) => void } | undefined
  #loadTimer: NodeJS.Timeout | undefined
  #dead: CapsuleError | undefined
  #acked = false

  constructor(
    readonly thread: PoolThread,
    readonly id: number,
    readonly options: PoolEngineOptions,
  ) {
    this.host = new PoolHost(options.http)
    this.logs = options.logs
    this.#spec = {
      module: options.compiled.module,
      config: options.config,
      memoryBytes: options.memoryBytes,
      maxOutputBytes: options.maxOutputBytes,
      maxRequestBytes: options.maxRequestBytes,
      ...(options.logs ? { logLevel: options.logs.level } : {}),
      ...(options.wasi ? { wasi: options.wasi } : {}),
    }
  }

  /** Settles when the current instance is loaded; rejects (load_failed) when it cannot be. */
  get ready(): Promise<void> {
    return this.#ready
  }

  get alive(): boolean {
    return this.#dead === undefined
  }

  instantiate(): void {
    this.host.closeStreams()
    clearTimeout(this.#loadTimer)
    this.state = newStateWord()
    // A load still waiting (its worker was replaced meanwhile) keeps its promise: the new instance settles it.
    if (!this.#load) {
      this.#ready = new Promise((resolve, reject) => (this.#load = { resolve, reject }))
      this.#ready.catch(() => undefined)
    }
    this.thread.post({ type: 'load', slot: this.id, spec: { ...this.#spec, state: this.state } })
  }

  instantiating(): void {
    this.#loadTimer = setTimeout(() => this.#loadTimedOut(), this.options.loadTimeoutMs)
  }

  loaded(): void {
    clearTimeout(this.#loadTimer)
    this.#load?.resolve()
    this.#load = undefined
  }

  loadFailed(message: string): void {
    clearTimeout(this.#loadTimer)
    if (this.thread.slots.get(this.id) === this) this.thread.slots.delete(this.id)
    const error = new CapsuleError('load_failed', message)
    this.#dead ??= error
    this.#load?.reject(error)
    this.#load = undefined
  }

  #loadTimedOut(): void {
    this.loadFailed(`the capsule did not finish instantiating within ${this.options.loadTimeoutMs} ms`)
    if (stopUnlessRunning(this.state)) this.thread.post({ type: 'unload', slot: this.id })
    else this.thread.replace('another capsule on its pool worker did not finish instantiating in time')
  }

  unloaded(): void {
    this.#acked = true
  }

  async call(name: string, input: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#dead) throw this.#dead
    await this.#ready
    if (this.#dead) throw this.#dead
    return this.thread.call(this, name, input, timeoutMs)
  }

  async close(): Promise<void> {
    if (this.#dead?.code === 'unloaded') return
    this.#dead = new CapsuleError('unloaded', 'the capsule was unloaded')
    clearTimeout(this.#loadTimer)
    this.options.http.closeAll()
    if (this.thread.slots.get(this.id) !== this) return
    this.thread.slots.delete(this.id)
    const running = !stopUnlessRunning(this.state)
    this.thread.failCallOf(this, new CapsuleError('unloaded', 'the capsule was unloaded during the call'))
    this.thread.post({ type: 'unload', slot: this.id })
    if (running) this.#watch()
  }

  /** It was running Wasm when unloaded: if its worker has not dropped it within its time limit, the worker is replaced. */
  #watch(): void {
    this.thread.unloading.set(this.id, this)
    const generation = this.thread.replacements
    setTimeout(() => {
      if (!this.#acked && this.thread.replacements === generation) this.thread.replace('a capsule unloaded on its pool worker did not stop')
    }, this.options.loadTimeoutMs).unref()
  }
}

/** A fixed number of worker threads, started with the first capsule; each capsule goes to the least loaded. */
export class CapsulePool {
  readonly #threads: PoolThread[] = []
  #nextSlot = 1

  constructor(readonly size: number) {}

  /** The least loaded thread; the first capsule starts them all at once (a thread takes ~0.1-0.5 s to start, mostly imports). */
  #pick(): PoolThread {
    if (this.#threads.length === 0) {
      const script = poolScript()
      for (let i = 0; i < this.size; i++) this.#threads.push(new PoolThread(script, true))
    }
    return this.#threads.reduce((best, thread) => (thread.slots.size < best.slots.size ? thread : best))
  }

  /** Instantiates a capsule on the least loaded worker. */
  async add(options: PoolEngineOptions): Promise<CapsuleEngine> {
    requireJspi('pool')
    const thread = this.#pick()
    const slot = new PoolSlot(thread, this.#nextSlot++, options)
    thread.slots.set(slot.id, slot)
    slot.instantiate()
    await slot.ready
    return slot
  }

  /** Ends every worker. */
  async close(): Promise<void> {
    await Promise.all(this.#threads.splice(0).map((thread) => thread.close()))
  }
}
