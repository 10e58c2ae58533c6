// The Extism host functions a capsule imports from `extism:host/user`, bound to capsule memory.
import type { CallContext } from '@extism/extism'
import { hostFailureMessage, type WireError } from '../errors.js'
import { utf8Bytes } from '../utf8-bytes.js'
import { STREAM_NEXT_TAG } from '../wire/schemas.js'
import type { ReadIntoResult, ReadResult } from './capsule-http.js'
import { blockBytes, makeBlock, storeCopy, type KernelBudget } from './kernel-guards.js'

export { HOST_FUNCTION_NAMES, HOST_NAMESPACE } from './host-names.js'

/**
 * A host function failed the capsule call with a wire error (a stream read error, a bad handle).
 * The message is `capsule-host <code>: <message>`, or the one given (Extism's HTTP: `<code>: <message>`).
 */
export class HostFailure extends Error {
  override name = 'HostFailure'
  constructor(
    readonly wire: WireError,
    message: string = hostFailureMessage(wire),
  ) {
    super(message)
  }
}

type MaybePromise<T, Mode extends 'sync' | 'async'> = Mode extends 'sync' ? T : Promise<T>

export interface HostIo<Mode extends 'sync' | 'async'> {
  request(input: Uint8Array): MaybePromise<Uint8Array, Mode>
  streamStart(input: Uint8Array): MaybePromise<Uint8Array, Mode>
  streamRead(handle: Uint8Array | string, capacity: number): MaybePromise<ReadResult, Mode>
  streamClose(handle: Uint8Array | string): MaybePromise<void, Mode>
  /** Throws when the call must stop (time limit passed, capsule unloaded); checked before and after each wait. */
  checkpoint(): void
  /** What the capsule's Extism blocks may take. */
  readonly budget: KernelBudget
}

/** The capsule's exported linear memory, set once the instance exists. */
export interface MemoryRef {
  memory: WebAssembly.Memory | undefined
}

function fail(error: WireError): never {
  throw new HostFailure(error)
}

/** The largest handle a session hands out: 16 decimal digits (capsule-http.ts's HANDLE). */
const LARGEST_HANDLE = 10n ** 16n - 1n

/**
 * An i64 argument as it arrived: a bigint, or a safe integer from an import the capsule declared
 * with other types (Wasm checks no import signature against ours); anything else is undefined.
 */
function integerOf(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value
  return typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : undefined
}

function linearMemory(ref: MemoryRef, ptr: bigint, len: bigint): Uint8Array {
  const memory = ref.memory
  if (!memory) fail({ code: 'invalid_request', message: 'the capsule does not export its memory as "memory"' })
  const start = integerOf(ptr)
  const length = integerOf(len)
  if (start === undefined || length === undefined || start < 0n || length < 0n || start + length > BigInt(memory.buffer.byteLength)) {
    fail({ code: 'invalid_request', message: `memory range ${String(ptr)}+${String(len)} is outside the capsule's memory` })
  }
  return new Uint8Array(memory.buffer, Number(start), Number(length))
}

function blockOf(context: CallContext, offset: bigint): Uint8Array {
  return blockBytes(context, offset) ?? new Uint8Array(0)
}

/**
 * Stores bytes in a new kernel block, within the capsule's memory budget. Extism adopts a buffer
 * it is given whole, and the capsule can then write into it: only bytes made for this reply
 * (`fresh`: an encoded JSON reply, a slice of linear memory) that own their whole buffer are
 * handed over as they are; anything else (a stream chunk, which may be a buffer a middleware
 * still holds) is copied.
 */
function store(io: HostIo<'sync' | 'async'>, context: CallContext, bytes: Uint8Array, fresh = false): bigint {
  if (!fresh || bytes.byteLength !== bytes.buffer.byteLength || !(bytes.buffer instanceof ArrayBuffer)) return storeCopy(io.budget, context, bytes)
  return makeBlock(io.budget, context, bytes.byteLength, () => context.store(bytes))
}

function unwrap(result: ReadResult): Uint8Array {
  if (!result.ok) fail(result.error)
  return result.bytes
}

function copyInto(ref: MemoryRef, dest: bigint, capacity: bigint, bytes: Uint8Array): bigint {
  linearMemory(ref, dest, capacity).set(bytes)
  return BigInt(bytes.byteLength)
}

/**
 * What is wrong with a numeric handle and a capacity a capsule passed, if anything: the same
 * answer in every isolation (these functions run beside the capsule in each).
 */
export function streamArgumentError(handle: unknown, capacity: unknown): WireError | undefined {
  const number = integerOf(handle)
  if (number === undefined || number <= 0n) return { code: 'invalid_request', message: `${String(handle)} is not a stream handle` }
  if (number > LARGEST_HANDLE) return { code: 'invalid_request', message: `"${number}" is not an open stream handle of this capsule` }
  const bytes = integerOf(capacity)
  if (bytes === undefined || bytes <= 0n) return { code: 'invalid_request', message: 'the read capacity must be at least 1 byte' }
  return undefined
}

/** The checked arguments of http_stream_read_into; bad ones fail the call. */
function readArguments(handle: bigint, capacity: bigint): [string, number] {
  const error = streamArgumentError(handle, capacity)
  if (error) fail(error)
  return [handle.toString(), Number(capacity)]
}

/** A block made for one reply: the tag byte, then `payload`. */
function tagged(tag: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(1 + payload.byteLength)
  frame[0] = tag
  frame.set(payload, 1)
  return frame
}

/**
 * http_stream_next's reply (STREAM_NEXT_TAG): the data tag and the bytes, the end tag alone, or
 * the error tag and `{"error":{...}}`. One copy of the chunk, into a block made for the reply.
 */
function nextReply(result: ReadResult): Uint8Array {
  if (!result.ok) return tagged(STREAM_NEXT_TAG.error, utf8Bytes(JSON.stringify({ error: result.error })))
  if (result.bytes.byteLength === 0) return Uint8Array.of(STREAM_NEXT_TAG.end)
  return tagged(STREAM_NEXT_TAG.data, result.bytes)
}

/** Functions shared by both modes: they touch only memory, never the network. */
function memoryFunctions(io: HostIo<'sync' | 'async'>, ref: MemoryRef) {
  return {
    mem_to_block: (context: CallContext, ptr: bigint, len: bigint) => store(io, context, linearMemory(ref, ptr, len).slice(), true),
    block_to_mem: (context: CallContext, offset: bigint, ptr: bigint, len: bigint) => {
      const bytes = blockOf(context, offset)
      if (len > BigInt(bytes.byteLength)) fail({ code: 'invalid_request', message: `the block holds ${bytes.byteLength} bytes, not ${len}` })
      linearMemory(ref, ptr, len).set(bytes.subarray(0, Number(len)))
    },
  }
}

/** Host functions for a capsule on its own worker thread: every call blocks until the main thread answers. */
export function syncHostFunctions(io: HostIo<'sync'>, ref: MemoryRef) {
  return {
    http_request: (context: CallContext, offset: bigint) => store(io, context, io.request(blockOf(context, offset)), true),
    http_stream_start: (context: CallContext, offset: bigint) => store(io, context, io.streamStart(blockOf(context, offset)), true),
    http_stream_read: (context: CallContext, offset: bigint) =>
      store(io, context, unwrap(io.streamRead(blockOf(context, offset), Number.POSITIVE_INFINITY))),
    http_stream_close: (context: CallContext, offset: bigint) => io.streamClose(blockOf(context, offset)),
    // A bad argument or a failed read is an error reply (nextReply), never a trap.
    http_stream_next: (context: CallContext, handle: bigint, capacity: bigint) => {
      const refused = streamArgumentError(handle, capacity)
      const result = refused ? { ok: false as const, error: refused } : io.streamRead(handle.toString(), Number(capacity))
      return store(io, context, nextReply(result), true)
    },
    http_stream_read_into: (_context: CallContext, handle: bigint, dest: bigint, capacity: bigint) => {
      linearMemory(ref, dest, capacity) // fail before any I/O when the range is bad
      return copyInto(ref, dest, capacity, unwrap(io.streamRead(...readArguments(handle, capacity))))
    },
    ...memoryFunctions(io, ref),
  }
}

/** What a JSPI capsule's host functions are served by: a read can copy straight into the capsule's memory. */
export interface AsyncHostIo extends HostIo<'async'> {
  /** The next piece of the stream `handle`, copied into `target` (a view of the capsule's memory, valid while it is suspended). */
  streamReadInto(handle: string, target: Uint8Array): Promise<ReadIntoResult>
}

/** Host functions for a capsule on the host's thread: async, so Extism suspends the capsule through JSPI. */
export function asyncHostFunctions(io: AsyncHostIo, ref: MemoryRef) {
  return {
    http_request: async (context: CallContext, offset: bigint) => {
      io.checkpoint()
      const reply = await io.request(blockOf(context, offset))
      io.checkpoint()
      return store(io, context, reply, true)
    },
    http_stream_start: async (context: CallContext, offset: bigint) => {
      io.checkpoint()
      const reply = await io.streamStart(blockOf(context, offset))
      io.checkpoint()
      return store(io, context, reply, true)
    },
    http_stream_read: async (context: CallContext, offset: bigint) => {
      io.checkpoint()
      const result = await io.streamRead(blockOf(context, offset), Number.POSITIVE_INFINITY)
      io.checkpoint()
      return store(io, context, unwrap(result))
    },
    http_stream_close: (context: CallContext, offset: bigint) => {
      void io.streamClose(blockOf(context, offset))
    },
    // A bad argument or a failed read is an error reply; only a stopped call (checkpoint) traps.
    http_stream_next: async (context: CallContext, handle: bigint, capacity: bigint) => {
      io.checkpoint()
      const refused = streamArgumentError(handle, capacity)
      const result = refused ? { ok: false as const, error: refused } : await io.streamRead(handle.toString(), Number(capacity))
      io.checkpoint()
      return store(io, context, nextReply(result), true)
    },
    // The capsule is suspended until the read settles: its memory cannot grow (and move) meanwhile.
    http_stream_read_into: async (_context: CallContext, handle: bigint, dest: bigint, capacity: bigint) => {
      io.checkpoint()
      const target = linearMemory(ref, dest, capacity)
      const result = await io.streamReadInto(readArguments(handle, capacity)[0], target)
      io.checkpoint()
      if (!result.ok) fail(result.error)
      return BigInt(result.count)
    },
    ...memoryFunctions(io, ref),
  }
}
