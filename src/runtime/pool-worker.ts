// The entry of a pool worker thread: many capsules' JSPI instances, their host calls sent to the main thread as numbered messages.
import { parentPort, workerData } from 'node:worker_threads'
import { CapsuleError } from '../errors.js'
import type { JspiCapsule, JspiHostIo } from './inline-engine.js'
import type { ReadResult } from './capsule-http.js'
import type { KernelReply } from './kernel-http.js'
import { Linger } from './linger.js'
import { LogLines } from './log-lines.js'
import { STATE, type FromPool, type HostAnswer, type HostAsk, type PoolCapsuleSpec, type ToPool } from './pool-protocol.js'

// Extism loads node:wasi, whose ExperimentalWarning means nothing here (node:wasi is never used: wasi.ts serves WASI).
process.removeAllListeners('warning')
const { JspiCapsule: Capsules } = await import('./inline-engine.js')

const port = parentPort!
const { busy, cores } = workerData as { busy: SharedArrayBuffer; cores: number }
const linger = new Linger(new Int32Array(busy), cores)
const post = (message: FromPool, transfer: ArrayBuffer[] = []) => {
  port.postMessage(message, transfer)
  linger.posted()
}

/** Bytes to post: a view of a larger buffer (an Extism block) is copied out, and that copy moved, not copied again. */
function sendable(bytes: Uint8Array): { bytes: Uint8Array; transfer: ArrayBuffer[] } {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return { bytes, transfer: [] }
  const copy = new Uint8Array(bytes)
  return { bytes: copy, transfer: [copy.buffer] }
}

/** Host calls waiting for the main thread's answer, by number. */
const asks = new Map<number, (value: HostAnswer) => void>()
let nextAsk = 1

function ask(slot: number, call: HostAsk, transfer: ArrayBuffer[] = []): Promise<HostAnswer> {
  const id = nextAsk++
  return new Promise((resolve) => {
    asks.set(id, resolve)
    post({ type: 'ask', slot, ask: id, call }, transfer)
  })
}

/** A wait that never ends: what a stopped capsule gets, so it never runs again (its stack is collected with its instance). */
const never = <T>() => new Promise<T>(() => undefined)

/**
 * Marks the capsule SUSPENDED while `pending` waits and RUNNING again when it ends, unless the
 * main thread stopped it meanwhile (pool-protocol.ts STATE): then it is never resumed.
 */
function waitOn(word: Int32Array) {
  const resume = () => Atomics.compareExchange(word, 0, STATE.suspended, STATE.running) === STATE.suspended
  return <T>(pending: Promise<T>): Promise<T> => {
    if (Atomics.compareExchange(word, 0, STATE.running, STATE.suspended) !== STATE.running) return never<T>()
    return pending.then(
      (value) => (resume() ? value : never<T>()),
      (error: unknown) => (resume() ? Promise.reject(error) : never<T>()),
    )
  }
}

/** A capsule's host calls, as messages to the main thread, where its CapsuleHttp serves them. */
function hostIo(slot: number, spec: PoolCapsuleSpec): JspiHostIo {
  const bytesCall = (op: 'request' | 'streamStart', input: Uint8Array) => {
    const { bytes, transfer } = sendable(input)
    return ask(slot, { op, input: bytes }, transfer) as Promise<Uint8Array>
  }
  const handleOf = (handle: Uint8Array | string) => (typeof handle === 'string' ? handle : sendable(handle).bytes)
  const streamRead = (handle: Uint8Array | string, capacity: number) => ask(slot, { op: 'streamRead', handle: handleOf(handle), capacity }) as Promise<ReadResult>
  return {
    request: (input) => bytesCall('request', input),
    streamStart: (input) => bytesCall('streamStart', input),
    streamRead,
    // The bytes arrive by message: copied into the capsule's memory here.
    streamReadInto: async (handle, target) => {
      const result = await streamRead(handle, target.byteLength)
      if (!result.ok) return result
      target.set(result.bytes)
      return { ok: true, count: result.bytes.byteLength }
    },
    streamClose: (handle) => post({ type: 'notice', slot, call: { op: 'streamClose', handle: handleOf(handle) } }),
    kernelRequest: (checked) => ask(slot, { op: 'kernelRequest', frame: sendable(checked.frame).bytes }) as Promise<KernelReply>,
    recordInvalid: (notice) => post({ type: 'notice', slot, call: { op: 'refused', notice } }),
    maxRequestBytes: spec.maxRequestBytes,
  }
}

interface PooledCapsule {
  readonly word: Int32Array
  capsule?: JspiCapsule
}

const capsules = new Map<number, PooledCapsule>()

async function load(slot: number, spec: PoolCapsuleSpec): Promise<void> {
  const entry: PooledCapsule = { word: spec.state }
  capsules.set(slot, entry)
  post({ type: 'instantiating', slot })
  const lines = new LogLines(spec.logLevel && ((level, message) => post({ type: 'log', slot, level, message })), spec.logLevel ?? 'error')
  try {
    const { module, config, memoryBytes, maxOutputBytes, wasi } = spec
    const options = { module, config, memoryBytes, maxOutputBytes, lines, wait: waitOn(spec.state), ...(wasi ? { wasi } : {}) }
    entry.capsule = await Capsules.open(options, hostIo(slot, spec))
  } catch (error) {
    if (capsules.get(slot) === entry) capsules.delete(slot)
    const message = error instanceof CapsuleError ? error.message : `the capsule could not be instantiated: ${(error as Error).message}`
    return post({ type: 'load_error', slot, message })
  }
  Atomics.compareExchange(spec.state, 0, STATE.running, STATE.idle)
  if (capsules.get(slot) !== entry) return void entry.capsule.close()
  post({ type: 'loaded', slot })
}

function failure(call: number, error: CapsuleError): FromPool {
  return {
    type: 'failure',
    call,
    code: error.code,
    message: error.message,
    ...(error.hostCode ? { hostCode: error.hostCode } : {}),
    ...(error.rawText ? { rawText: error.rawText } : {}),
  }
}

async function call(slot: number, id: number, name: string, input: Uint8Array): Promise<void> {
  const entry = capsules.get(slot)
  // Stopped by the main thread before it started (its time limit passed while it was queued): it never runs.
  if (!entry?.capsule || Atomics.compareExchange(entry.word, 0, STATE.idle, STATE.running) !== STATE.idle) {
    return post(failure(id, new CapsuleError('unloaded', 'the capsule was stopped before the call started')))
  }
  try {
    const output = new Uint8Array(await entry.capsule.call(name, input)) // a copy of its own, to move
    post({ type: 'result', call: id, output }, [output.buffer])
  } catch (error) {
    post(failure(id, error instanceof CapsuleError ? error : new CapsuleError('capsule_failed', String(error))))
  } finally {
    Atomics.compareExchange(entry.word, 0, STATE.running, STATE.idle)
  }
}

function unload(slot: number): void {
  const entry = capsules.get(slot)
  capsules.delete(slot)
  if (entry) {
    Atomics.store(entry.word, 0, STATE.stopped)
    void entry.capsule?.close()
  }
  post({ type: 'unloaded', slot })
}


port.on('message', (message: ToPool) => {
  linger.message()
  switch (message.type) {
    case 'reply': {
      const resolve = asks.get(message.ask)
      asks.delete(message.ask)
      return resolve?.(message.value)
    }
    case 'call':
      return void call(message.slot, message.call, message.name, message.input)
    case 'load':
      return void load(message.slot, message.spec)
    case 'unload':
      return unload(message.slot)
  }
})
