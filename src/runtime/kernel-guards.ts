// The Extism kernel functions that read capsule text or keep capsule data, served with fixed bounds.
import type { CallContext } from '@extism/extism'
import { MAX_RAW_TEXT_BYTES, safeTextOf } from '../safe-text.js'

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

type Kernel = { free(addr: bigint): void }

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

function blockOf(context: CallContext, addr: bigint): Uint8Array | undefined {
  return context.read(addr)?.bytes()
}

const keyDecoder = new TextDecoder('utf-8')

/** The key a block holds, or undefined when it is longer than any key can be. The block is freed. */
function keyOf(context: CallContext, addr: bigint): string | undefined {
  const bytes = blockOf(context, addr)
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

/**
 * Replaces the kernel's alloc, error and log functions, config_get and the vars. Extism's own
 * decode a whole block into a string: a capsule could make a worker build one larger than its
 * heap, which V8 answers by aborting the whole process. These read a bounded prefix only.
 */
export function kernelFunctions(budget: KernelBudget, log: CapsuleLog, config: Readonly<Record<string, string>>) {
  const vars = new Vars()
  const consume = (context: CallContext, addr: bigint) => kernelOf(context)?.free(addr)
  const store = (context: CallContext, bytes: Uint8Array | string) => {
    const copy = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes.slice()
    return makeBlock(budget, context, copy.byteLength, () => context.store(copy))
  }
  return {
    alloc: (context: CallContext, size: bigint) => makeBlock(budget, context, Number(size), () => context.alloc(size)),
    error_set: (context: CallContext, addr: bigint) => {
      const bytes = blockOf(context, addr)
      if (!bytes) throw new Error('cannot assign error to this block')
      remember(log, bytes)
      // Extism cannot store an empty error; the call still fails, and says the capsule gave no text.
      context.setError(log.lastError || '(the capsule set an empty error)')
    },
    log_error: (context: CallContext, addr: bigint) => {
      const bytes = blockOf(context, addr)
      if (bytes) remember(log, bytes)
      consume(context, addr)
    },
    log_warn: consume,
    log_info: consume,
    log_debug: consume,
    log_trace: consume,
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
      const value = blockOf(context, valueAddr)
      if (!value) throw new Error('var_set: the value is not a block')
      vars.set(key, value.slice())
    },
  }
}
