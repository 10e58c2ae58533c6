// One worker thread of the pool and the capsules on it: their calls and host calls, and the thread's replacement when one of them runs away.
import { Worker } from 'node:worker_threads'
import { CapsuleError } from '../errors.js'
import type { EngineLogs } from './logs.js'
import { internalAnswer, type PoolHost } from './pool-host.js'
import { stopUnlessRunning, type FromPool, type HostAsk, type ToPool } from './pool-protocol.js'
import { keepAwake } from './wake.js'

/** What the thread needs of one capsule on it (pool-engine.ts PoolSlot). */
export interface ThreadSlot {
  readonly id: number
  readonly host: PoolHost
  readonly logs: EngineLogs | undefined
  /** The current instance's state word (pool-protocol.ts STATE). */
  readonly state: Int32Array
  instantiating(): void
  loaded(): void
  loadFailed(message: string): void
  /** Its worker dropped its instance (after an unload). */
  unloaded(): void
  /** Sends its load to this thread's (new) worker: its instance is made again. */
  instantiate(): void
}

interface PendingCall {
  readonly slot: ThreadSlot
  readonly resolve: (output: Uint8Array) => void
  readonly reject: (error: CapsuleError) => void
  readonly timer: NodeJS.Timeout
}

export class PoolThread {
  readonly slots = new Map<number, ThreadSlot>()
  /** Capsules unloaded while their Wasm was running, until their worker says it dropped them. */
  readonly unloading = new Map<number, ThreadSlot>()
  readonly #calls = new Map<number, PendingCall>()
  readonly #script: URL
  #worker: Worker | undefined
  /** Whether the current worker has sent anything: one that fails before that is not replaced (it would fail again). */
  #started = false
  #nextCall = 1
  #closed = false
  /** How many times its worker was replaced (for tests and the docs' claims). */
  replacements = 0

  /** `start`: start the worker now, before any capsule needs it. */
  constructor(script: URL, start = false) {
    this.#script = script
    if (start) this.#worker = this.#start()
  }

  #start(): Worker {
    this.#started = false
    // The worker lingers (linger.ts) only while fewer worker and pool calls are busy than there are cores.
    const worker = new Worker(this.#script, { stdout: false, stderr: false, workerData: { busy: keepAwake.busy.buffer, cores: keepAwake.cores } })
    worker.unref()
    worker.on('message', (message: FromPool) => this.#receive(worker, message))
    worker.on('error', (error: Error) => this.#lost(worker, `its pool worker failed (${error.message})`))
    worker.on('exit', () => this.#lost(worker, 'its pool worker exited'))
    return worker
  }

  #lost(worker: Worker, why: string): void {
    if (worker !== this.#worker || this.#closed) return
    if (this.#started) return this.replace(why)
    // It never started (its script failed): the loads waiting on it fail, and the next load starts another.
    this.#worker = undefined
    for (const slot of [...this.slots.values()]) slot.loadFailed(why)
    this.slots.clear()
  }

  #current(): Worker {
    return (this.#worker ??= this.#start())
  }

  /** Sends to the worker (starting it if it has not started); nothing once the pool is closed. */
  post(message: ToPool, transfer: ArrayBuffer[] = []): void {
    if (this.#closed) return
    this.#current().postMessage(message, transfer)
  }

  /** Runs one export of `slot`; at `timeoutMs` the capsule is stopped, and its worker replaced if it is still running. */
  call(slot: ThreadSlot, name: string, input: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new CapsuleError('unloaded', 'the runtime was closed'))
    return new Promise((resolve, reject) => {
      const id = this.#nextCall++
      const timer = setTimeout(() => this.#expire(id, name, timeoutMs), timeoutMs)
      this.#calls.set(id, { slot, resolve, reject, timer })
      keepAwake.hold()
      if (this.#calls.size === 1) this.#current().ref()
      // A copy of exactly the input, moved: Extism adopts the whole buffer as the input block.
      const copy = new Uint8Array(input)
      this.post({ type: 'call', slot: slot.id, call: id, name, input: copy }, [copy.buffer])
    })
  }

  #settle(id: number): PendingCall | undefined {
    const call = this.#calls.get(id)
    if (!call) return undefined
    this.#calls.delete(id)
    keepAwake.release()
    clearTimeout(call.timer)
    if (this.#calls.size === 0) this.#worker?.unref()
    return call
  }

  /** Fails the call in flight of `slot`, if any. */
  failCallOf(slot: ThreadSlot, error: CapsuleError): boolean {
    for (const [id, call] of this.#calls) {
      if (call.slot === slot) {
        this.#settle(id)
        call.reject(error)
        return true
      }
    }
    return false
  }

  #expire(id: number, name: string, timeoutMs: number): void {
    const call = this.#settle(id)
    if (!call) return
    const { slot } = call
    this.slots.delete(slot.id)
    if (stopUnlessRunning(slot.state)) this.post({ type: 'unload', slot: slot.id })
    else this.replace('another capsule on its pool worker ran past its time limit')
    call.reject(new CapsuleError('call_timeout', `the call to "${name}" ran past ${timeoutMs} ms; the capsule was stopped`))
  }

  /**
   * Terminates the worker and starts a new one: the calls in flight on it fail with
   * `capsule_failed` (hostCode `cancelled`), and every capsule still on it is instantiated again there.
   */
  replace(why: string): void {
    if (this.#closed) return
    const old = this.#worker
    old?.removeAllListeners()
    old?.on('error', () => undefined)
    void old?.terminate()
    this.replacements++
    const calls = [...this.#calls.keys()].map((id) => this.#settle(id)!)
    this.unloading.clear()
    this.#worker = this.#start()
    for (const slot of this.slots.values()) slot.instantiate()
    for (const call of calls) {
      const message = `the call was cancelled: ${why}, so the worker was replaced; this capsule was instantiated again and its next call runs on the new instance`
      call.reject(new CapsuleError('capsule_failed', message, { hostCode: 'cancelled' }))
    }
  }

  #receive(worker: Worker, message: FromPool): void {
    if (worker !== this.#worker) return
    this.#started = true
    keepAwake.stir()
    if (message.type === 'result' || message.type === 'failure') return this.#finish(message)
    if (message.type === 'unloaded') {
      this.unloading.get(message.slot)?.unloaded()
      return void this.unloading.delete(message.slot)
    }
    const slot = this.slots.get(message.slot)
    if (!slot) return
    switch (message.type) {
      case 'ask':
        return void this.#serve(worker, slot, message.ask, message.call)
      case 'notice':
        return slot.host.notice(message.call)
      case 'log':
        return slot.logs?.write(message.level, message.message)
      case 'instantiating':
        return slot.instantiating()
      case 'loaded':
        return slot.loaded()
      case 'load_error':
        return slot.loadFailed(message.message)
    }
  }

  #finish(message: Extract<FromPool, { type: 'result' | 'failure' }>): void {
    const call = this.#settle(message.call)
    if (!call) return
    if (message.type === 'result') return call.resolve(message.output)
    const { code, message: text, hostCode, rawText } = message
    call.reject(new CapsuleError(code, text, { ...(hostCode ? { hostCode } : {}), ...(rawText ? { rawText } : {}) }))
  }

  /** Answers to the worker that asked: a reply never reaches the worker that replaced it. */
  async #serve(worker: Worker, slot: ThreadSlot, ask: number, call: HostAsk): Promise<void> {
    const { value, transfer } = await slot.host.answer(call)
    if (worker !== this.#worker) return slot.host.discard(call, value)
    try {
      worker.postMessage({ type: 'reply', ask, value } satisfies ToPool, transfer)
    } catch {
      // A value that cannot be posted is a bug of ours: the capsule still gets an answer, never a hang.
      worker.postMessage({ type: 'reply', ask, value: internalAnswer(call.op) } satisfies ToPool)
    }
  }

  /** Ends the worker (the pool is closing). */
  async close(): Promise<void> {
    this.#closed = true
    for (const id of [...this.#calls.keys()]) this.#settle(id)?.reject(new CapsuleError('unloaded', 'the runtime was closed'))
    for (const slot of [...this.slots.values()]) slot.loadFailed('the runtime was closed while the capsule was loading')
    await this.#worker?.terminate()
  }
}
