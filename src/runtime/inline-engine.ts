// Runs a capsule through JSPI (async host functions suspend it): on the host's thread (inline), and the instance a pool worker holds.
import type { Plugin } from '@extism/extism'
import { CapsuleError } from '../errors.js'
import type { CheckedRequest } from '../wire/parse.js'
import type { CapsuleEngine } from './capsule.js'
import type { CapsuleHttp, ReadIntoResult, ReadResult } from './capsule-http.js'
import { asyncHostFunctions, HOST_NAMESPACE, HostFailure, type AsyncHostIo, type MemoryRef } from './host-functions.js'
import { CallBlockLedger, kernelFunctions, type CapsuleLog } from './kernel-guards.js'
import type { KernelReply } from './kernel-http.js'
import { KERNEL_HTTP_NAMESPACE } from './module-bounds.js'
import type { EngineLogs } from './logs.js'
import type { CompiledCapsule } from './modules.js'
import type { WasiGrants } from './wasi-grants.js'
import { LogLines } from './log-lines.js'
import { extismOptions, failureOf, outputBytes, PluginSlot, startInstance, wasiNamespace } from './plugin-options.js'
import { WasiSleeps } from './wasi-sleeps.js'
import { requireJspi } from './jspi.js'
import type { RefusalNotice } from './worker-protocol.js'

export { hasJspi, requireJspi } from './jspi.js'

/**
 * Where a JSPI capsule's host calls go: its CapsuleHttp on the same thread (inline, which
 * CapsuleHttp satisfies as it is), or messages to the main thread (a pool worker).
 */
export interface JspiHostIo {
  request(input: Uint8Array): Promise<Uint8Array>
  streamStart(input: Uint8Array): Promise<Uint8Array>
  streamRead(handle: Uint8Array | string, capacity: number): Promise<ReadResult>
  /** A read copied into `target`, a view of the capsule's memory (valid while the capsule waits for it). */
  streamReadInto(handle: string, target: Uint8Array): Promise<ReadIntoResult>
  streamClose(handle: Uint8Array | string): void
  kernelRequest(checked: CheckedRequest): Promise<KernelReply>
  recordInvalid(notice: RefusalNotice): void
  readonly maxRequestBytes: number
}

export interface JspiCapsuleOptions {
  readonly module: WebAssembly.Module
  readonly config: Record<string, string>
  readonly memoryBytes: number
  readonly maxOutputBytes: number
  /** Where the capsule's log lines go, already filtered and bounded (log-lines.ts). */
  readonly lines: LogLines
  /** What a WASI module is granted beyond the sandbox's defaults. */
  readonly wasi?: WasiGrants
  /**
   * Wraps every wait of the capsule (a host call, a WASI sleep): a pool worker marks the capsule
   * suspended there, and never resumes one stopped meanwhile. Default: the wait itself.
   */
  readonly wait?: <T>(pending: Promise<T>) => Promise<T>
}

const asIs = <T>(pending: Promise<T>) => pending

/** One capsule's Extism plugin whose async host functions suspend it through JSPI, with its call guards. */
export class JspiCapsule {
  readonly #options: JspiCapsuleOptions
  readonly #log: CapsuleLog = { lastError: undefined, rawError: undefined }
  readonly #ledger: CallBlockLedger
  readonly #sleeps = new WasiSleeps()
  #slot: PluginSlot | undefined
  /** Extism's kernel HTTP functions, loaded only for a module that imports them (their module loads zod: ~0.2-0.5 s in a new pool worker). */
  #kernelHttp: typeof import('./kernel-http.js') | undefined
  #stopped = false

  private constructor(options: JspiCapsuleOptions) {
    this.#options = options
    this.#ledger = new CallBlockLedger(options.memoryBytes)
  }

  /** Instantiates the module (running its start function); a failure is `load_failed`. */
  static async open(options: JspiCapsuleOptions, io: JspiHostIo): Promise<JspiCapsule> {
    const capsule = new JspiCapsule(options)
    if (WebAssembly.Module.imports(options.module).some((i) => i.module === KERNEL_HTTP_NAMESPACE)) capsule.#kernelHttp = await import('./kernel-http.js')
    capsule.#slot = await PluginSlot.open(() => capsule.#instantiate(io))
    return capsule
  }

  /** Throws once the capsule is stopped (time limit passed, unloaded); run before and after each wait. */
  readonly #checkpoint = () => {
    if (this.#stopped) throw new HostFailure({ code: 'cancelled', message: 'the capsule was stopped' })
  }

  /** Fresh functions for each instance: vars and WASI state belong to one instance (PluginSlot). */
  #functions(io: JspiHostIo, ref: MemoryRef) {
    const wait = this.#options.wait ?? asIs
    const { lines, config, wasi } = this.#options
    const host: AsyncHostIo = {
      request: (input) => wait(io.request(input)),
      streamStart: (input) => wait(io.streamStart(input)),
      streamRead: (handle, capacity) => wait(io.streamRead(handle, capacity)),
      streamReadInto: (handle, target) => wait(io.streamReadInto(handle, target)),
      streamClose: async (handle) => io.streamClose(handle),
      checkpoint: this.#checkpoint,
      budget: this.#ledger,
    }
    return {
      [HOST_NAMESPACE]: asyncHostFunctions(host, ref),
      'extism:host/env': kernelFunctions(this.#ledger, this.#log, config, lines),
      ...wasiNamespace(ref, wasi, lines, (deadline) => wait(this.#sleeps.until(deadline, this.#checkpoint))),
      ...(this.#kernelHttp && {
        [KERNEL_HTTP_NAMESPACE]: this.#kernelHttp.asyncKernelHttpFunctions({
          send: (checked) => wait(io.kernelRequest(checked)),
          refused: (error) => io.recordInvalid({ kind: 'request', error, abi: 'extism' }),
          checkpoint: this.#checkpoint,
          budget: this.#ledger,
          maxRequestBytes: io.maxRequestBytes,
        }),
      }),
    }
  }

  async #instantiate(io: JspiHostIo) {
    const { module, config, memoryBytes, lines } = this.#options
    const ref: MemoryRef = { memory: undefined }
    let plugin: Plugin
    try {
      // Loaded on first use: Extism loads node:wasi, whose ExperimentalWarning a host that never runs
      // an inline or pooled capsule should not see just for importing capsule-host.
      const { default: createPlugin } = await import('@extism/extism')
      plugin = await createPlugin({ wasm: [{ module }] }, extismOptions(this.#functions(io, ref), config, memoryBytes, this.#log))
    } catch (cause) {
      throw new CapsuleError('load_failed', `the capsule could not be instantiated: ${(cause as Error).message}`, { cause })
    }
    const { exports } = await plugin.getInstance()
    startInstance(module, exports, ref, lines)
    return { plugin, exports }
  }

  /** Runs one export to its end; every failure is a CapsuleError (output_too_large before any copy). */
  async call(name: string, input: Uint8Array): Promise<Uint8Array> {
    const slot = this.#slot!
    this.#log.lastError = undefined
    this.#log.rawError = undefined
    this.#ledger.reset()
    try {
      return outputBytes(await slot.call(name, input, this.#options.lines), name, this.#options.maxOutputBytes)
    } catch (error) {
      if (error instanceof CapsuleError) throw error
      throw failureOf(error, name, slot.exports, this.#options.memoryBytes, this.#log)
    }
  }

  /** Stops the capsule for good: a waiting call fails at its next checkpoint, and its sleeps end now. */
  stop(): void {
    this.#stopped = true
    this.#sleeps.wakeAll()
  }

  /** Stops the capsule and releases its plugin. */
  async close(): Promise<void> {
    this.stop()
    await this.#slot?.close()
  }
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

/** The log lines of a capsule whose lines reach `logs` on this thread. */
export function linesTo(logs: EngineLogs | undefined): LogLines {
  return new LogLines(logs && ((level, message) => logs.write(level, message)), logs?.level ?? 'error')
}

export async function createInlineEngine(options: InlineEngineOptions): Promise<CapsuleEngine> {
  requireJspi('inline')
  const { http } = options
  const capsule = await JspiCapsule.open(
    {
      module: options.compiled.module,
      config: options.config,
      memoryBytes: options.memoryBytes,
      maxOutputBytes: options.maxOutputBytes,
      lines: linesTo(options.logs),
      ...(options.wasi ? { wasi: options.wasi } : {}),
    },
    http,
  )
  let closed = false
  /** Fails the call in flight, if any: the capsule was stopped while it waited in a host call. */
  let interrupt: ((error: CapsuleError) => void) | undefined

  return {
    get alive() {
      return !closed
    },
    call(name, input, timeoutMs) {
      return new Promise<Uint8Array>((resolve, reject) => {
        // The timer can only fire while the capsule is suspended in a host call: nothing interrupts
        // Wasm that spins on the host's thread. That is why inline mode is for trusted capsules.
        const timer = setTimeout(() => {
          capsule.stop()
          http.closeAll()
          reject(new CapsuleError('call_timeout', `the call to "${name}" ran past ${timeoutMs} ms`))
        }, timeoutMs)
        const settle = <T>(finish: (value: T) => void) => (value: T) => {
          clearTimeout(timer)
          interrupt = undefined
          finish(value)
        }
        interrupt = reject
        // A copy: Extism adopts a whole buffer as the input block, which the capsule can write into.
        capsule.call(name, input.slice()).then(settle(resolve), settle(reject))
      })
    },
    async close() {
      if (closed) return
      closed = true
      capsule.stop()
      interrupt?.(new CapsuleError('unloaded', 'the capsule was unloaded during the call'))
      http.closeAll()
      await capsule.close()
    },
  }
}
