// The messages between the main thread and a capsule's worker, and the channel operations' encoding.
import type { Abi } from '../audit.js'
import type { CapsuleErrorCode, ErrorCode, WireError } from '../errors.js'
import type { CapsuleLogLevel, LogLevel } from './logs.js'
import type { WasiGrants } from './wasi-grants.js'
import type { ReadResult } from './capsule-http.js'
import type { ChannelReply } from './channel.js'

/**
 * Channel operations: one per host function that needs the main thread, and `refused`: a request
 * the worker refused in validation, sent for the audit log only (`{ kind, error }` as JSON).
 */
export const OP = { request: 1, streamStart: 2, streamRead: 3, streamClose: 4, refused: 5, kernelRequest: 6 } as const

/** The main thread starting a call (`encodeCall`); the worker answers with `FINAL.result` or `FINAL.failure`. */
export const CALL_OP = 16

/**
 * The worker's messages that end an exchange (no answer): the load's progress and outcome, and a
 * call's outcome. Their status is how many log lines the worker had posted before it (`LOG_COUNT_MASK`).
 */
export const FINAL = { instantiating: 17, ready: 18, loadError: 19, result: 20, failure: 21 } as const

export const isFinal = (op: number): boolean => op >= FINAL.instantiating && op <= FINAL.failure

/** Log line counts wrap within the channel's status word. */
export const LOG_COUNT_MASK = 0x7fffffff

/** The payload of `OP.refused`. */
export interface RefusalNotice {
  readonly kind: 'request' | 'stream'
  readonly error: WireError
  /** Set by the worker's kernel HTTP functions (kernel-http.ts), never from capsule bytes. */
  readonly abi?: Abi
}

/** The largest segment the channel moves at once; stream reads are clamped to it. */
export const CHANNEL_DATA_BYTES = 1024 * 1024

export interface WorkerData {
  readonly module: WebAssembly.Module
  readonly config: Record<string, string>
  readonly memoryBytes: number
  /** Requests are parsed and validated in the worker; larger ones are never copied to the main thread. */
  readonly maxRequestBytes: number
  /** A call's output larger than this fails with `output_too_large` before it leaves the worker. */
  readonly maxOutputBytes: number
  readonly channel: SharedArrayBuffer
  /** One Int32: how many worker calls are in flight in the process (wake.ts); the worker spins only below `cores`. */
  readonly busy: SharedArrayBuffer
  readonly cores: number
  /** The lowest Extism level the host's sink takes (filtered in the worker, before any copy); none: no log lines are sent. */
  readonly logLevel?: LogLevel
  /** What a WASI module is granted beyond the sandbox's defaults. */
  readonly wasi?: WasiGrants
}

/** Handles are decimal numbers of at most 16 digits; anything longer is refused in the worker. */
export const MAX_HANDLE_BYTES = 16

/** The one message a worker posts (by postMessage); everything else goes through the channel. */
export type FromWorker =
  /** One log line, already filtered, capped and made safe in the worker (log-lines.ts). */
  { type: 'log'; level: CapsuleLogLevel; message: string }

/** A failed call, as `FINAL.failure` carries it. */
export interface CallFailure {
  readonly code: CapsuleErrorCode
  readonly message: string
  readonly hostCode?: ErrorCode
  readonly rawText?: Uint8Array
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeRead(handle: Uint8Array | string, capacity: number): Uint8Array {
  const name = typeof handle === 'string' ? encoder.encode(handle) : handle
  const payload = new Uint8Array(4 + name.byteLength)
  new DataView(payload.buffer).setUint32(0, Math.min(capacity, CHANNEL_DATA_BYTES), true)
  payload.set(name, 4)
  return payload
}

export function decodeReadRequest(payload: Uint8Array): { capacity: number; handle: Uint8Array } {
  return { capacity: new DataView(payload.buffer, payload.byteOffset).getUint32(0, true), handle: payload.subarray(4) }
}

/** Status 0 and the chunk itself (no copy), or status 1 and the error as JSON. */
export function encodeReadResult(result: ReadResult): ChannelReply {
  return result.ok ? { status: 0, bytes: result.bytes } : { status: 1, bytes: encoder.encode(JSON.stringify(result.error)) }
}

export function decodeReadResult(reply: ChannelReply): ReadResult {
  return reply.status === 0
    ? { ok: true, bytes: reply.bytes }
    : { ok: false, error: JSON.parse(decoder.decode(reply.bytes)) as WireError }
}

/** `CALL_OP`'s payload: the export's name (length-prefixed UTF-8), then the input as it is. */
export function encodeCall(name: string, input: Uint8Array): Uint8Array {
  const nameBytes = encoder.encode(name)
  const payload = new Uint8Array(4 + nameBytes.byteLength + input.byteLength)
  new DataView(payload.buffer).setUint32(0, nameBytes.byteLength, true)
  payload.set(nameBytes, 4)
  payload.set(input, 4 + nameBytes.byteLength)
  return payload
}

export function decodeCall(payload: Uint8Array): { name: string; input: Uint8Array } {
  const length = new DataView(payload.buffer, payload.byteOffset).getUint32(0, true)
  return { name: decoder.decode(payload.subarray(4, 4 + length)), input: payload.subarray(4 + length) }
}

/** `FINAL.failure`'s payload: the failure as length-prefixed JSON, then its raw text's bytes, if any. */
export function encodeFailure(failure: CallFailure): Uint8Array {
  const { rawText, ...rest } = failure
  const json = encoder.encode(JSON.stringify({ ...rest, raw: rawText !== undefined }))
  const raw = rawText ?? new Uint8Array(0)
  const payload = new Uint8Array(4 + json.byteLength + raw.byteLength)
  new DataView(payload.buffer).setUint32(0, json.byteLength, true)
  payload.set(json, 4)
  payload.set(raw, 4 + json.byteLength)
  return payload
}

export function decodeFailure(payload: Uint8Array): CallFailure {
  const length = new DataView(payload.buffer, payload.byteOffset).getUint32(0, true)
  const { raw, ...failure } = JSON.parse(decoder.decode(payload.subarray(4, 4 + length))) as Omit<CallFailure, 'rawText'> & { raw: boolean }
  return raw ? { ...failure, rawText: payload.slice(4 + length) } : failure
}
