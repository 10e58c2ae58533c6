// Runs a capsule on the host's thread; async host functions suspend it through JSPI.
import createPlugin, { type Plugin } from '@extism/extism'
import { CapsuleError } from '../errors.js'
import type { CapsuleEngine } from './capsule.js'
import type { CapsuleHttp } from './capsule-http.js'
import { asyncHostFunctions, HOST_NAMESPACE, HostFailure, type MemoryRef } from './host-functions.js'
import { CallBlockLedger, kernelFunctions, type CapsuleLog } from './kernel-guards.js'
import { asyncKernelHttpFunctions } from './kernel-http.js'
import { KERNEL_HTTP_NAMESPACE } from './module-bounds.js'
import type { EngineLogs } from './logs.js'
import type { CompiledCapsule } from './modules.js'
import type { WasiGrants } from './wasi-grants.js'
import { LogLines } from './log-lines.js'
import { extismOptions, failureOf, outputBytes, PluginSlot, startInstance, wasiNamespace } from './plugin-options.js'
import { WasiSleeps } from './wasi-sleeps.js'

/** True when this Node can suspend Wasm on a promise (JSPI): Node 25+, or 24 with --experimental-wasm-jspi. */
export function hasJspi(): boolean {
  const wasm = WebAssembly as unknown as { Suspending?: unknown; promising?: unknown }
  return typeof wasm.Suspending === 'function' && typeof wasm.promising === 'function'
}

export interface InlineEngineOptions {
  readonly compiled: CompiledCapsule
  readonly http: CapsuleHttp
  readonly config: Record<string, string>
  readonly memoryBytes: number
  readonly maxOutputBytes: number
  /** Where the capsule's log lines go (Extism's log_* and WASI stdout/stderr); none: dropped. */
  readonly logs?: EngineLogs
  /** What a WASI module is granted beyond the sandbox's defaults. */
  readonly wasi?: WasiGrants
}

export async function createInlineEngine(options: InlineEngineOptions): Promise<CapsuleEngine> {
  if (!hasJspi()) {
    throw new CapsuleError(
      'unsupported',
      `isolation "inline" needs JS Promise Integration (WebAssembly.Suspending), which Node ${process.version} does not have; use Node 25+ (or 24 with --experimental-wasm-jspi), or isolation "worker"`,
    )
  }
  const { http } = options
  const ref: MemoryRef = { memory: undefined }
  const log: CapsuleLog = { lastError: undefined, rawError: undefined }
  let expired = false
  const ledger = new CallBlockLedger(options.memoryBytes)
  const sleeps = new WasiSleeps()
  const logs = options.logs
  const lines = new LogLines(logs && ((level, message) => logs.write(level, message)), logs?.level ?? 'error')
  const io = {
    request: (input: Uint8Array) => http.request(input),
    streamStart: (input: Uint8Array) => http.streamStart(input),
    streamRead: (handle: Uint8Array | string, capacity: number) => http.streamRead(handle, capacity),
    streamClose: async (handle: Uint8Array | string) => http.streamClose(handle),
    checkpoint: () => {
      if (expired) throw new HostFailure({ code: 'cancelled', message: 'the capsule was stopped' })
    },
    budget: ledger,
  }
  // Fresh functions for each instance: vars and WASI state belong to one instance (PluginSlot).
  const functionsOf = () => ({
    [HOST_NAMESPACE]: asyncHostFunctions(io, ref),
    'extism:host/env': kernelFunctions(ledger, log, options.config, lines),
    ...wasiNamespace(ref, options.wasi, lines, (deadline) => sleeps.until(deadline, io.checkpoint)),
    [KERNEL_HTTP_NAMESPACE]: asyncKernelHttpFunctions({
      send: (checked) => http.kernelRequest(checked),
      refused: (error) => http.recordInvalid({ kind: 'request', error, abi: 'extism' }),
      checkpoint: io.checkpoint,
      budget: ledger,
      maxRequestBytes: http.maxRequestBytes,
    }),
  })
  const slot = await PluginSlot.open(async () => {
    let plugin: Plugin
    try {
      plugin = await createPlugin(
        { wasm: [{ module: options.compiled.module }] },
        extismOptions(functionsOf(), options.config, options.memoryBytes, log),
      )
    } catch (cause) {
      throw new CapsuleError('load_failed', `the capsule could not be instantiated: ${(cause as Error).message}`, { cause })
    }
    const { exports } = await plugin.getInstance()
    startInstance(options.compiled.module, exports, ref, lines)
    return { plugin, exports }
  })
  let closed = false
  /** Fails the call in flight, if any: the capsule was stopped while it waited in a host call. */
  let interrupt: ((error: CapsuleError) => void) | undefined

  return {
    get alive() {
      return !closed
    },
    async call(name, input, timeoutMs) {
      let timer: NodeJS.Timeout | undefined
      log.lastError = undefined
      log.rawError = undefined
      ledger.reset()
      // The timer can only fire while the capsule is suspended in a host call: nothing interrupts
      // Wasm that spins on the host's thread. That is why inline mode is for trusted capsules.
      const stopped = new Promise<never>((_, reject) => {
        interrupt = reject
        timer = setTimeout(() => {
          expired = true
          http.closeAll()
          sleeps.wakeAll()
          reject(new CapsuleError('call_timeout', `the call to "${name}" ran past ${timeoutMs} ms`))
        }, timeoutMs)
      })
      try {
        // A copy: Extism adopts a whole buffer as the input block, which the capsule can write into.
        return outputBytes(await Promise.race([slot.call(name, input.slice(), lines), stopped]), name, options.maxOutputBytes)
      } catch (error) {
        if (error instanceof CapsuleError) throw error
        throw failureOf(error, name, slot.exports, options.memoryBytes, log)
      } finally {
        clearTimeout(timer)
        interrupt = undefined
      }
    },
    async close() {
      if (closed) return
      closed = true
      expired = true
      interrupt?.(new CapsuleError('unloaded', 'the capsule was unloaded during the call'))
      http.closeAll()
      sleeps.wakeAll()
      await slot.close()
    },
  }
}
