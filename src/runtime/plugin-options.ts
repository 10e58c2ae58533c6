// Extism plugin options and the plugin lifecycle shared by both isolation modes (WASI wiring, instance start, calls, a fresh instance after _start), and the translation of a failed call.
import type { ExtismPluginOptions, Plugin } from '@extism/extism'
import { CapsuleError } from '../errors.js'
import { safeText } from '../safe-text.js'
import { HostFailure, type MemoryRef } from './host-functions.js'
import { KernelMemoryExceeded, type CapsuleLog } from './kernel-guards.js'
import type { LogLines } from './log-lines.js'
import { moduleBounds, tableAtBound, WASI_IMPORT_NAMESPACE } from './module-bounds.js'
import { callableName, startGuest, WasiExit, wasiFunctions, type WasiIo } from './wasi.js'
import { NO_WASI_GRANTS, type WasiGrants } from './wasi-grants.js'

const WASM_PAGE = 64 * 1024

/** Extism's own HTTP (`extism:host/env` http_request) must never reach the network. */
const refusingFetch = (() =>
  Promise.reject(new Error('Extism HTTP is disabled; use the extism:host/user functions'))) as unknown as typeof fetch

const ignore = () => undefined

/**
 * The Extism plugin options every capsule gets: no Extism WASI, no Extism worker, no Extism HTTP
 * (its fetch refuses, its allowed hosts are none), Extism's own log text kept only as the last
 * error, and its block memory capped at the capsule's memory limit.
 */
export function extismOptions(
  functions: NonNullable<ExtismPluginOptions['functions']>,
  config: Record<string, string>,
  memoryBytes: number,
  log: CapsuleLog,
): ExtismPluginOptions {
  const logger = {
    // What reaches this logger is Extism's own text (the capsule's logs are served in kernel-guards.ts).
    error: (message: unknown) => {
      log.lastError = safeText(String(message))
    },
    warn: ignore,
    info: ignore,
    debug: ignore,
    trace: ignore,
    log: ignore,
  } as unknown as Console
  return {
    logger,
    useWasi: false,
    runInWorker: false,
    functions,
    config,
    allowedHosts: [],
    fetch: refusingFetch,
    logLevel: 'error',
    // Extism's own cap on its blocks; it counts a block only after allocating it, so capsule-host
    // admits every block first (kernel-guards.ts). Linear memory is capped in the module itself.
    memory: { maxPages: Math.max(1, Math.floor(memoryBytes / WASM_PAGE)) },
  }
}

/** V8's message for a stack overflow, in Wasm as in JavaScript. */
const STACK_OVERFLOW = /^Maximum call stack size exceeded$/

/**
 * Turns whatever a failed Extism call threw into a CapsuleError. A failed `memory.grow` or
 * `table.grow` shows up only as a trap (allocators trap on it), and allocators grow by doubling,
 * so a trap while the memory, or a table, is over half its bound is reported as `memory_limit`.
 */
export function failureOf(error: unknown, name: string, exports: WebAssembly.Exports, memoryBytes: number, log: CapsuleLog): CapsuleError {
  if (error instanceof WasiExit) {
    const logged = log.lastError ? ` (the capsule logged: ${log.lastError})` : ''
    return new CapsuleError('capsule_failed', `the call to "${name}" ended with WASI exit code ${error.code} (proc_exit)${logged}`, { cause: error })
  }
  if (error instanceof RangeError && STACK_OVERFLOW.test(error.message)) {
    // The stack ran out mid-function (often mid-allocation): the module's own state cannot be trusted.
    return new CapsuleError('memory_limit', `the call to "${name}" ran out of stack (${error.message})`, { cause: error })
  }
  if (error instanceof KernelMemoryExceeded) {
    return new CapsuleError('memory_limit', `the call to "${name}" ran out of memory: ${error.message}`, { cause: error })
  }
  if (error instanceof WebAssembly.RuntimeError) {
    const used = exports.memory instanceof WebAssembly.Memory ? exports.memory.buffer.byteLength : 0
    if (used * 2 > memoryBytes) {
      return new CapsuleError('memory_limit', `the call to "${name}" ran out of memory: it trapped with ${used} of its ${memoryBytes} bytes in use`, { cause: error })
    }
    const table = tableAtBound(exports, moduleBounds(memoryBytes))
    if (table) return new CapsuleError('memory_limit', `the call to "${name}" ran out of memory: ${table}`, { cause: error })
  }
  // Extism's message quotes the capsule's error text, which kernel-guards.ts already capped and escaped.
  const thrown = safeText(error instanceof Error ? error.message : String(error))
  const message = log.lastError && !thrown.includes(log.lastError) ? `${thrown} (the capsule logged: ${log.lastError})` : thrown
  // Only an error our host function threw carries a host code: a capsule's own text never does.
  return new CapsuleError('capsule_failed', `the call to "${name}" failed: ${message}`, {
    cause: error,
    ...(error instanceof HostFailure ? { hostCode: error.wire.code } : {}),
    ...(log.rawError ? { rawText: log.rawError } : {}),
  })
}

/** The bytes of a call's output, or `output_too_large` before anything of it is copied. */
export function outputBytes(output: { bytes(): Uint8Array } | null, name: string, maxOutputBytes: number): Uint8Array {
  const bytes = output?.bytes() ?? new Uint8Array(0)
  if (bytes.byteLength > maxOutputBytes) {
    throw new CapsuleError('output_too_large', `the call to "${name}" returned ${bytes.byteLength} bytes; the limit is ${maxOutputBytes} (limits.maxOutputBytes)`)
  }
  return bytes
}

/** The WASI namespace of a capsule's host functions (wasi.ts), its stdout and stderr going to `lines`. */
export function wasiNamespace(ref: MemoryRef, grants: WasiGrants | undefined, lines: LogLines, sleep?: WasiIo['sleep']) {
  return {
    [WASI_IMPORT_NAMESPACE]: wasiFunctions({ ref, grants: grants ?? NO_WASI_GRANTS, write: (stream, bytes) => lines.write(stream, bytes), ...(sleep ? { sleep } : {}) }),
  }
}

/**
 * Binds the new instance's memory and, for a WASI module, runs its initialisation (wasi.ts
 * `startGuest`); what it logged is delivered, and a failure there is `load_failed`.
 */
export function startInstance(module: WebAssembly.Module, exports: WebAssembly.Exports, ref: MemoryRef, lines: LogLines): void {
  ref.memory = exports.memory instanceof WebAssembly.Memory ? exports.memory : undefined
  try {
    if (WebAssembly.Module.imports(module).some((i) => i.module === WASI_IMPORT_NAMESPACE)) startGuest(exports)
  } catch (cause) {
    const reason = cause instanceof WasiExit ? `it called proc_exit(${cause.code}) while initialising` : safeText(cause instanceof Error ? cause.message : String(cause))
    throw new CapsuleError('load_failed', `the capsule could not be initialised: ${reason}`, { cause })
  } finally {
    lines.endCall()
  }
}

/**
 * Calls an export through Extism. proc_exit(0) ends the call with the output the module had set
 * (as Extism does); the call's unfinished log lines are delivered when it ends.
 */
export async function callExport(plugin: Plugin, exports: WebAssembly.Exports, name: string, input: Uint8Array, lines: LogLines): Promise<{ bytes(): Uint8Array } | null> {
  try {
    return await plugin.call(callableName(exports, name), input)
  } catch (error) {
    if (!(error instanceof WasiExit) || error.code !== 0) throw error
    const output = error.output
    return output ? { bytes: () => output } : null
  } finally {
    lines.endCall()
  }
}

/** A capsule's Extism plugin and its instance's exports. */
export interface LivePlugin {
  readonly plugin: Plugin
  readonly exports: WebAssembly.Exports
}

/**
 * A capsule's Extism plugin, made by `make`. After a WASI command's `_start` the next call gets a
 * fresh instance (new memory, vars and WASI state), as Extism's runtime does: a command runs once
 * per instance. Any other export keeps the instance, which is what makes a reactor's state last.
 */
export class PluginSlot {
  #live: LivePlugin
  #spent = false

  private constructor(
    private readonly make: () => Promise<LivePlugin>,
    live: LivePlugin,
  ) {
    this.#live = live
  }

  static async open(make: () => Promise<LivePlugin>): Promise<PluginSlot> {
    return new PluginSlot(make, await make())
  }

  /** The current instance's exports (for failureOf). */
  get exports(): WebAssembly.Exports {
    return this.#live.exports
  }

  async call(name: string, input: Uint8Array, lines: LogLines): Promise<{ bytes(): Uint8Array } | null> {
    if (this.#spent) {
      await this.#live.plugin.close()
      this.#live = await this.make()
      this.#spent = false
    }
    const command = name === '_start' && callableName(this.#live.exports, name) !== name
    try {
      return await callExport(this.#live.plugin, this.#live.exports, name, input, lines)
    } finally {
      this.#spent = command
    }
  }

  close(): Promise<void> {
    return this.#live.plugin.close()
  }
}
