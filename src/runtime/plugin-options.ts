// Extism plugin options shared by both isolation modes, and the translation of a failed call.
import type { ExtismPluginOptions } from '@extism/extism'
import { CapsuleError } from '../errors.js'
import { HostFailure, KernelMemoryExceeded } from './host-functions.js'

const WASM_PAGE = 64 * 1024

/** Extism's own HTTP (`extism:host/env` http_request) must never reach the network. */
const refusingFetch = (() =>
  Promise.reject(new Error('Extism HTTP is disabled; use the extism:host/user functions'))) as unknown as typeof fetch

/** The last error a capsule logged (an abort message, say), kept to explain the trap that follows. */
export interface CapsuleLog {
  lastError: string | undefined
}

const ignore = () => undefined

export function extismOptions(
  functions: NonNullable<ExtismPluginOptions['functions']>,
  config: Record<string, string>,
  memoryBytes: number,
  log: CapsuleLog,
): ExtismPluginOptions {
  const logger = {
    error: (message: unknown) => {
      log.lastError = String(message).slice(0, 1000)
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
    // Caps Extism's kernel memory (its blocks); linear memory is capped in the module itself.
    memory: { maxPages: Math.max(1, Math.floor(memoryBytes / WASM_PAGE)) },
  }
}

/**
 * Turns whatever a failed Extism call threw into a CapsuleError. A failed `memory.grow` shows up
 * only as a trap (allocators trap on it), and allocators grow by doubling, so a trap while the
 * memory is over half the limit is reported as `memory_limit`.
 */
export function failureOf(
  error: unknown,
  name: string,
  memory: WebAssembly.Memory | undefined,
  memoryBytes: number,
  log: CapsuleLog,
): CapsuleError {
  if (error instanceof KernelMemoryExceeded) {
    return new CapsuleError('memory_limit', `the call to "${name}" ran out of memory: ${error.message}`, { cause: error })
  }
  const used = memory?.buffer.byteLength ?? 0
  if (error instanceof WebAssembly.RuntimeError && used * 2 > memoryBytes) {
    return new CapsuleError('memory_limit', `the call to "${name}" ran out of memory: it trapped with ${used} of its ${memoryBytes} bytes in use`, { cause: error })
  }
  const thrown = error instanceof Error ? error.message : String(error)
  const message = log.lastError && !thrown.includes(log.lastError) ? `${thrown} (the capsule logged: ${log.lastError})` : thrown
  // Only an error our host function threw carries a host code: a capsule's own text never does.
  return new CapsuleError('capsule_failed', `the call to "${name}" failed: ${message}`, {
    cause: error,
    ...(error instanceof HostFailure ? { hostCode: error.wire.code } : {}),
  })
}
