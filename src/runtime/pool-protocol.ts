// The messages between the main thread and a pool worker, and the state word each pooled capsule shares with its worker.
import type { CapsuleErrorCode, ErrorCode } from '../errors.js'
import type { ReadResult } from './capsule-http.js'
import type { KernelReply } from './kernel-http.js'
import type { CapsuleLogLevel, LogLevel } from './logs.js'
import type { WasiGrants } from './wasi-grants.js'
import type { RefusalNotice } from './worker-protocol.js'

/**
 * What one capsule is doing, in an Int32 shared by the main thread and its worker. The worker
 * moves IDLE → RUNNING when a call starts, RUNNING → SUSPENDED when it waits (a host call, a WASI
 * sleep), SUSPENDED → RUNNING when the wait ends, RUNNING → IDLE when the call ends; the main
 * thread moves IDLE or SUSPENDED → STOPPED (compare-and-swap), and the worker never resumes or
 * starts a STOPPED capsule. So a capsule the main thread stopped can never run again, and one it
 * could not stop (RUNNING at its time limit) is the one spinning: its worker is replaced.
 */
export const STATE = { idle: 0, running: 1, suspended: 2, stopped: 3 } as const

/** A new state word for one capsule (RUNNING: instantiation runs the module's start function). */
export function newStateWord(): Int32Array {
  const word = new Int32Array(new SharedArrayBuffer(4))
  word[0] = STATE.running
  return word
}

/** Moves a capsule that is not running to STOPPED; false when it is RUNNING (on its worker's stack, or about to be). */
export function stopUnlessRunning(word: Int32Array): boolean {
  for (;;) {
    const state = Atomics.load(word, 0)
    if (state === STATE.running) return false
    if (state === STATE.stopped) return true
    if (Atomics.compareExchange(word, 0, state, STATE.stopped) === state) return true
  }
}

/** What a pool worker needs to instantiate one capsule. */
export interface PoolCapsuleSpec {
  readonly module: WebAssembly.Module
  readonly config: Record<string, string>
  readonly memoryBytes: number
  readonly maxOutputBytes: number
  readonly maxRequestBytes: number
  /** The lowest Extism level the host's sink takes; none: no log lines are sent. */
  readonly logLevel?: LogLevel
  readonly wasi?: WasiGrants
  /** The capsule's state word (STATE). */
  readonly state: Int32Array
}

export type ToPool =
  | { type: 'load'; slot: number; spec: PoolCapsuleSpec }
  | { type: 'call'; slot: number; call: number; name: string; input: Uint8Array }
  | { type: 'unload'; slot: number }
  | { type: 'reply'; ask: number; value: HostAnswer }

/** A host call that waits for the main thread's answer, numbered by the worker (`ask`). */
export type HostAsk =
  | { op: 'request' | 'streamStart'; input: Uint8Array }
  | { op: 'streamRead'; handle: Uint8Array | string; capacity: number }
  | { op: 'kernelRequest'; frame: Uint8Array }

export type HostAnswer = Uint8Array | ReadResult | KernelReply

/** A host call that needs no answer. */
export type HostNotice = { op: 'streamClose'; handle: Uint8Array | string } | { op: 'refused'; notice: RefusalNotice }

export type FromPool =
  | { type: 'instantiating'; slot: number }
  | { type: 'loaded'; slot: number }
  | { type: 'load_error'; slot: number; message: string }
  | { type: 'unloaded'; slot: number }
  | { type: 'result'; call: number; output: Uint8Array }
  | { type: 'failure'; call: number; code: CapsuleErrorCode; message: string; hostCode?: ErrorCode; rawText?: Uint8Array }
  | { type: 'log'; slot: number; level: CapsuleLogLevel; message: string }
  | { type: 'ask'; slot: number; ask: number; call: HostAsk }
  | { type: 'notice'; slot: number; call: HostNotice }
