// The Extism kernel functions that read capsule text or keep capsule data, served with fixed bounds.
import type { CallContext } from '@extism/extism'
import { MAX_RAW_TEXT_BYTES, safeTextOf } from '../safe-text.js'
import type { LogLines } from './log-lines.js'
import { LOG_LEVELS, type LogLevel } from './logs.js'

/** What the capsule last reported as an error (error_set or log_error), kept to explain the failure that follows. */
export interface CapsuleLog {
  /** Escaped and capped (see safe-text.ts): safe in any message or terminal. */
  lastError: string | undefined
  /** The same report as the bytes the capsule wrote, at most MAX_RAW_TEXT_BYTES. */
  rawError: Uint8Array | undefined
}

/** The longest config or var key a capsule may name. */
export const MAX_KEY_BYTES = 4096
/** Extism vars of one capsule, keys and values together (Extism's own default is 1 MiB too). */
export const MAX_VAR_BYTES = 1024 * 1024

export class KernelMemoryExceeded extends Error {
  override name = 'KernelMemoryExceeded'
}

/** What a capsule's Extism blocks may take; every block capsule-host makes goes through `makeBlock`. */
export interface KernelBudget {
  /** Throws KernelMemoryExceeded when `bytes` more of Extism blocks would pass the capsule's limit. */
  admit(context: CallContext, bytes: number): void
  /** Notes a block just made. */
  made(addr: bigint, bytes: number): void
}

/** Makes a block of `bytes` bytes with `make`, within the budget. */
export function makeBlock(budget: KernelBudget, context: CallContext, bytes: number, make: () => bigint): bigint {
  budget.admit(context, bytes)
  const addr = make()
  budget.made(addr, bytes)
  return addr
}

/**
 * A new block holding a copy of `bytes` (a string as UTF-8), within the budget. A copy because
 * Extism adopts a buffer it is given whole, and the capsule can then write into it: the bytes may
 * be a buffer the host still holds (a middleware's synthetic body, a stream chunk, config).
 */
export function storeCopy(budget: KernelBudget, context: CallContext, bytes: Uint8Array | string): bigint {
  const copy = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes.slice()
  return makeBlock(budget, context, copy.byteLength, () => context.store(copy))
}

/**
 * The budget on the host's thread (inline isolation), where there is no separate heap to measure:
 * the blocks of the call in flight, at most `limitBytes` in all. Freed blocks are found (Extism
 * reports their length as 0) only when the count reaches the limit, so the common path costs nothing.
 */
export class CallBlockLedger implements KernelBudget {
  readonly #blocks = new Map<bigint, number>()
  #counted = 0
  constructor(readonly limitBytes: number) {}

  /** Extism frees every block when a call starts. */
  reset(): void {
    this.#blocks.clear()
    this.#counted = 0
  }

  admit(context: CallContext, bytes: number): void {
    if (this.#counted + bytes <= this.limitBytes) return
    for (const [addr, size] of this.#blocks) {
      if (size > 0 && context.length(addr) === 0n) {
        this.#blocks.delete(addr)
        this.#counted -= size
      }
    }
    if (this.#counted + bytes > this.limitBytes) {
      throw new KernelMemoryExceeded(`${bytes} more bytes of Extism blocks would bring the call to ${this.#counted + bytes} bytes; the limit is ${this.limitBytes}`)
    }
  }

  made(addr: bigint, bytes: number): void {
    this.#blocks.set(addr, bytes)
    this.#counted += bytes
  }
}

type Kernel = { free(addr: bigint): void; input_offset?(): bigint }

const kernels = new WeakMap<object, Kernel | null>()

/**
 * Extism's own kernel functions, which the SDK keeps under a private symbol of the call context.
 * Only its `free` is used: a log call consumes its block, as the kernel's own does.
 */
function kernelOf(context: CallContext): Kernel | undefined {
  let kernel = kernels.get(context)
  if (kernel === undefined) {
    const owned = Object.getOwnPropertySymbols(context).map((symbol) => (context as unknown as Record<symbol, unknown>)[symbol])
    kernel = (owned.find((value) => typeof (value as Kernel | undefined)?.free === 'function') as Kernel | undefined) ?? null
    kernels.set(context, kernel)
  }
  return kernel ?? undefined
}

/**
 * A private method of the Extism SDK's call context, keyed by a symbol the SDK does not export:
 * found by the symbol's description (`get-block`, `export-state`). Undefined if the SDK changed.
 */
export function contextMethod(context: CallContext, description: string): ((...args: unknown[]) => unknown) | undefined {
  const methods = Object.getPrototypeOf(context) as Record<symbol, unknown>
  const symbol = Object.getOwnPropertySymbols(methods).find((s) => s.description === description)
  const method = symbol === undefined ? undefined : methods[symbol]
  return typeof method === 'function' ? (method as (...args: unknown[]) => unknown).bind(context) : undefined
}

const OFFSET_MASK = (1n << 48n) - 1n
type BlockGetter = (index: number) => { buffer: ArrayBuffer; view: DataView }
const blockGetters = new WeakMap<object, BlockGetter | null>()

/** The SDK's own block of index `addr >> 48` (not the input's 0), or undefined for no such block; null when the SDK has no `get-block`. */
function sdkBlock(context: CallContext, addr: bigint): ReturnType<BlockGetter> | undefined | null {
  let getBlock = blockGetters.get(context)
  if (getBlock === undefined) {
    getBlock = (contextMethod(context, 'get-block') as BlockGetter | undefined) ?? null
    blockGetters.set(context, getBlock)
  }
  if (!getBlock) return null
  const index = Number(addr >> 48n)
  if (index === 0) return undefined
  try {
    return getBlock(index)
  } catch {
    return undefined
  }
}

/** The bytes of the block `addr` points into (the SDK's own view), or undefined for no such block. */
function blockView(context: CallContext, addr: bigint): DataView | undefined {
  return sdkBlock(context, addr)?.view
}

/**
 * The bytes of the block `addr` points into, or undefined for no such block. Read through the
 * SDK's `get-block`: its public `read()` makes a PluginOutput, a DataView subclass that cost
 * about 2 µs a read here against 0.1-0.3 µs.
 */
export function blockBytes(context: CallContext, addr: bigint): Uint8Array | undefined {
  const block = sdkBlock(context, addr)
  if (block === null) return context.read(addr)?.bytes()
  return block && new Uint8Array(block.buffer)
}

/** Little-endian `bytes` bytes at `offset`; bytes past the end of `view` read as zero. */
function loadPadded(view: DataView | undefined, offset: number, bytes: 1 | 8): bigint {
  if (!view) return 0n
  if (offset + bytes <= view.byteLength) return bytes === 8 ? view.getBigUint64(offset, true) : BigInt(view.getUint8(offset))
  let value = 0n
  for (let i = Math.min(view.byteLength, offset + bytes) - 1; i >= offset; i--) value = (value << 8n) | BigInt(view.getUint8(i))
  return value
}

/** Stores the bytes of `value` that fall inside `view`; the rest are dropped. */
function storeClipped(view: DataView | undefined, offset: number, value: bigint, bytes: 1 | 8): void {
  if (!view) return
  if (offset + bytes <= view.byteLength) return bytes === 8 ? view.setBigUint64(offset, value, true) : view.setUint8(offset, Number(value & 0xffn))
  for (let i = offset; i < Math.min(view.byteLength, offset + bytes); i++, value >>= 8n) view.setUint8(i, Number(value & 0xffn))
}

/**
 * Byte loads and stores as Extism's own kernel serves them: past a block's (or the input's) end,
 * loads read zeros and stores are dropped. The SDK's throw a RangeError instead, which fails every
 * input shorter than 8 bytes of plugins built with Extism's Rust PDK (echo.wasm, consume.wasm).
 */
function byteFunctions() {
  const input = (context: CallContext) => {
    const index = kernelOf(context)?.input_offset?.()
    return index === undefined ? undefined : blockView(context, index)
  }
  const at = (addr: bigint) => Number(addr & OFFSET_MASK)
  return {
    input_load_u8: (context: CallContext, addr: bigint) => Number(loadPadded(input(context), at(addr), 1)),
    input_load_u64: (context: CallContext, addr: bigint) => loadPadded(input(context), at(addr), 8),
    load_u8: (context: CallContext, addr: bigint) => Number(loadPadded(blockView(context, addr), at(addr), 1)),
    load_u64: (context: CallContext, addr: bigint) => loadPadded(blockView(context, addr), at(addr), 8),
    store_u8: (context: CallContext, addr: bigint, value: number) => storeClipped(blockView(context, addr), at(addr), BigInt(value), 1),
    store_u64: (context: CallContext, addr: bigint, value: bigint) => storeClipped(blockView(context, addr), at(addr), BigInt.asUintN(64, value), 8),
  }
}


const keyDecoder = new TextDecoder('utf-8')

/** The key a block holds, or undefined when it is longer than any key can be. The block is freed. */
function keyOf(context: CallContext, addr: bigint): string | undefined {
  const bytes = blockBytes(context, addr)
  const key = bytes && bytes.byteLength <= MAX_KEY_BYTES ? keyDecoder.decode(bytes) : undefined
  kernelOf(context)?.free(addr)
  return key
}

function remember(log: CapsuleLog, bytes: Uint8Array): void {
  log.lastError = safeTextOf(bytes)
  log.rawError = bytes.slice(0, MAX_RAW_TEXT_BYTES)
}

/** What one var costs the host beyond its key and value (the map entry, the key string), counted against MAX_VAR_BYTES. */
const VAR_ENTRY_BYTES = 64

/** A capsule's Extism vars: bounded by MAX_VAR_BYTES for keys, values and entries together. */
class Vars {
  readonly #values = new Map<string, Uint8Array>()
  #bytes = 0

  get(key: string): Uint8Array | undefined {
    return this.#values.get(key)
  }

  set(key: string, value: Uint8Array | undefined): void {
    const old = this.#values.get(key)
    const cost = (bytes: Uint8Array) => Buffer.byteLength(key) + bytes.byteLength + VAR_ENTRY_BYTES
    const size = this.#bytes - (old ? cost(old) : 0) + (value ? cost(value) : 0)
    if (size > MAX_VAR_BYTES) throw new KernelMemoryExceeded(`vars would hold ${size} bytes; the limit is ${MAX_VAR_BYTES}`)
    if (value) this.#values.set(key, value)
    else this.#values.delete(key)
    this.#bytes = size
  }
}

/** Extism's `get_log_level` answer when no level passes (its "silent"): a PDK then formats nothing. */
const SILENT = 0x7fffffff

/**
 * Extism's log_* functions: a line below the sink's level is dropped before its block is read
 * (and the block is consumed either way, as Extism's kernel does); log_error is also remembered
 * to explain the failure that usually follows.
 */
function logFunctions(log: CapsuleLog, lines: LogLines, consume: (context: CallContext, addr: bigint) => void) {
  const logAt = (level: LogLevel) => (context: CallContext, addr: bigint) => {
    if (lines.wants(level)) {
      const bytes = blockBytes(context, addr)
      if (bytes) lines.line(level, bytes)
    }
    consume(context, addr)
  }
  const logged = Object.fromEntries(LOG_LEVELS.map((level) => [`log_${level}`, logAt(level)])) as Record<`log_${LogLevel}`, ReturnType<typeof logAt>>
  return {
    ...logged,
    log_error: (context: CallContext, addr: bigint) => {
      const bytes = blockBytes(context, addr)
      if (bytes) {
        remember(log, bytes)
        lines.line('error', bytes)
      }
      consume(context, addr)
    },
    get_log_level: () => {
      const lowest = LOG_LEVELS.find((level) => lines.wants(level))
      return lowest === undefined ? SILENT : LOG_LEVELS.indexOf(lowest)
    },
  }
}

/**
 * Replaces the kernel's alloc, error and log functions, config_get and the vars. Extism's own
 * decode a whole block into a string: a capsule could make a worker build one larger than its
 * heap, which V8 answers by aborting the whole process. These read a bounded prefix only.
 */
export function kernelFunctions(budget: KernelBudget, log: CapsuleLog, config: Readonly<Record<string, string>>, lines: LogLines) {
  const vars = new Vars()
  const consume = (context: CallContext, addr: bigint) => kernelOf(context)?.free(addr)
  const store = (context: CallContext, bytes: Uint8Array | string) => storeCopy(budget, context, bytes)
  return {
    alloc: (context: CallContext, size: bigint) => makeBlock(budget, context, Number(size), () => context.alloc(size)),
    error_set: (context: CallContext, addr: bigint) => {
      const bytes = blockBytes(context, addr)
      if (!bytes) throw new Error('cannot assign error to this block')
      remember(log, bytes)
      // Extism cannot store an empty error; the call still fails, and says the capsule gave no text.
      context.setError(log.lastError || '(the capsule set an empty error)')
    },
    ...logFunctions(log, lines, consume),
    ...byteFunctions(),
    config_get: (context: CallContext, addr: bigint) => {
      const key = keyOf(context, addr)
      return key !== undefined && Object.hasOwn(config, key) ? store(context, config[key]!) : 0n
    },
    var_get: (context: CallContext, addr: bigint) => {
      const key = keyOf(context, addr)
      const value = key === undefined ? undefined : vars.get(key)
      return value ? store(context, value) : 0n
    },
    var_set: (context: CallContext, keyAddr: bigint, valueAddr: bigint) => {
      const key = keyOf(context, keyAddr)
      if (key === undefined) throw new KernelMemoryExceeded(`a var key may be at most ${MAX_KEY_BYTES} bytes`)
      if (valueAddr === 0n) return vars.set(key, undefined)
      const value = blockBytes(context, valueAddr)
      if (!value) throw new Error('var_set: the value is not a block')
      vars.set(key, value.slice())
    },
  }
}
