// Runs a capsule in its own worker thread and serves its host calls on the main thread.
import { Worker } from 'node:worker_threads'
import { CapsuleError, INTERNAL_WIRE_ERROR } from '../errors.js'
import type { CapsuleEngine } from './capsule.js'
import type { CapsuleHttp } from './capsule-http.js'
import { ChannelClosedError, ChannelHost, createChannelBuffer, type ChannelMessage, type ChannelReply } from './channel.js'
import type { EngineLogs } from './logs.js'
import type { CompiledCapsule } from './modules.js'
import type { WasiGrants } from './wasi-grants.js'
import { CheckedRequest } from '../wire/parse.js'
import {
  CALL_OP,
  CHANNEL_DATA_BYTES,
  decodeFailure,
  decodeReadRequest,
  encodeCall,
  encodeReadResult,
  FINAL,
  isFinal,
  LOG_COUNT_MASK,
  OP,
  type FromWorker,
  type RefusalNotice,
  type WorkerData,
} from './worker-protocol.js'
import { keepAwake } from './wake.js'
import { resolveWorkerScript } from './worker-script.js'
import { encodeKernelReply } from './kernel-http.js'

/** The worker's script: beside this module when built, else dist/, refused when older than src/ (worker-script.ts). */
function workerScript(): URL {
  return resolveWorkerScript(new URL(import.meta.url))
}

export interface WorkerEngineOptions {
  readonly compiled: CompiledCapsule
  readonly http: CapsuleHttp
  readonly config: Record<string, string>
  readonly memoryBytes: number
  readonly maxRequestBytes: number
  readonly maxOutputBytes: number
  /** Instantiation (which runs the module's start function) must finish within this. */
  readonly loadTimeoutMs: number
  /** Where the capsule's log lines go (Extism's log_* and WASI stdout/stderr); none: dropped. */
  readonly logs?: EngineLogs
  /** What a WASI module is granted beyond the sandbox's defaults. */
  readonly wasi?: WasiGrants
}

const EMPTY = new Uint8Array(0)

/** Serves one host call; a failure of ours still answers, so the worker never waits forever. */
async function serveHostCall(http: CapsuleHttp, op: number, payload: Uint8Array): Promise<ChannelReply> {
  try {
    return await hostCall(http, op, payload)
  } catch {
    if (op === OP.kernelRequest) return encodeKernelReply({ ok: false, error: { ...INTERNAL_WIRE_ERROR } })
    return op === OP.streamRead
      ? encodeReadResult({ ok: false, error: { ...INTERNAL_WIRE_ERROR } })
      : { status: 0, bytes: new TextEncoder().encode(JSON.stringify({ error: INTERNAL_WIRE_ERROR })) }
  }
}

async function hostCall(http: CapsuleHttp, op: number, payload: Uint8Array): Promise<ChannelReply> {
  switch (op) {
    // The worker parsed and validated these requests: what arrives is a checked frame.
    case OP.request:
      return { status: 0, bytes: await http.request(new CheckedRequest(payload)) }
    case OP.streamStart:
      return { status: 0, bytes: await http.streamStart(new CheckedRequest(payload)) }
    // Extism's kernel http_request, checked in the worker; the op itself says which ABI it came through.
    case OP.kernelRequest:
      return encodeKernelReply(await http.kernelRequest(new CheckedRequest(payload)))
    case OP.refused:
      http.recordInvalid(JSON.parse(new TextDecoder().decode(payload)) as RefusalNotice)
      return { status: 0, bytes: EMPTY }
    case OP.streamRead: {
      const { handle, capacity } = decodeReadRequest(payload)
      return encodeReadResult(await http.streamRead(handle, capacity))
    }
    case OP.streamClose:
      http.streamClose(payload)
      return { status: 0, bytes: EMPTY }
    default:
      return encodeReadResult({ ok: false, error: { code: 'invalid_request', message: `unknown channel operation ${op}` } })
  }
}

/** The JS heap a capsule's worker may use (Extism's bookkeeping; Wasm memory is capped separately). */
function heapLimitMb(memoryBytes: number): number {
  return Math.max(64, Math.ceil(memoryBytes / (1024 * 1024)))
}

function startWorker(options: WorkerEngineOptions, channel: SharedArrayBuffer): Worker {
  const data: WorkerData = {
    module: options.compiled.module,
    config: options.config,
    memoryBytes: options.memoryBytes,
    maxRequestBytes: options.maxRequestBytes,
    maxOutputBytes: options.maxOutputBytes,
    channel,
    busy: keepAwake.busy.buffer as SharedArrayBuffer,
    cores: keepAwake.cores,
    ...(options.logs ? { logLevel: options.logs.level } : {}),
    ...(options.wasi ? { wasi: options.wasi } : {}),
  }
  return new Worker(workerScript(), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: heapLimitMb(options.memoryBytes), maxYoungGenerationSizeMb: 32 },
    stdout: false,
    stderr: false,
  })
}

/**
 * Log lines come by postMessage, everything else through the channel: a final message says how
 * many lines the worker had posted before it, and is delivered once that many have arrived.
 */
class LogOrder {
  #received = 0
  #waiting: { count: number; resolve: () => void } | undefined

  received(): void {
    this.#received = (this.#received + 1) & LOG_COUNT_MASK
    if (this.#waiting?.count !== this.#received) return
    const { resolve } = this.#waiting
    this.#waiting = undefined
    resolve()
  }

  /** Undefined when every line posted before `message` is here; else a promise that settles when it is. */
  caughtUp(message: ChannelMessage): Promise<void> | undefined {
    if (message.status === this.#received) return undefined
    return new Promise((resolve) => (this.#waiting = { count: message.status, resolve }))
  }
}

/** What the worker's 'error' event means for the capsule. */
function workerFailure(error: Error & { code?: string }, memoryBytes: number): CapsuleError {
  return error.code === 'ERR_WORKER_OUT_OF_MEMORY'
    ? new CapsuleError('memory_limit', `the capsule ran out of memory at the limit of ${memoryBytes} bytes`, { cause: error })
    : new CapsuleError('capsule_failed', `the capsule's worker failed: ${error.message}`, { cause: error })
}

/** A call's outcome message as the call's result. */
function outcomeOf(message: ChannelMessage): Uint8Array {
  if (message.op === FINAL.result) return message.bytes
  if (message.op !== FINAL.failure) throw new CapsuleError('capsule_failed', `the capsule's worker sent message ${message.op} for a call's outcome`)
  const { code, message: text, hostCode, rawText } = decodeFailure(message.bytes)
  throw new CapsuleError(code, text, { ...(hostCode ? { hostCode } : {}), ...(rawText ? { rawText } : {}) })
}

/**
 * One capsule's worker. Calls (queued by Capsule: one at a time) and the load's messages travel
 * through the channel; the keep-awake chain (wake.ts) polls it while a call is in flight.
 */
class WorkerEngine implements CapsuleEngine {
  readonly #channel = createChannelBuffer(CHANNEL_DATA_BYTES)
  readonly #host: ChannelHost
  readonly #worker: Worker
  readonly #logs = new LogOrder()
  /** Rejects with the reason the engine stopped; every wait races it. */
  readonly #death: Promise<never>
  #dead: CapsuleError | undefined
  #kill: (error: CapsuleError) => void = () => undefined

  constructor(private readonly options: WorkerEngineOptions) {
    const { http } = options
    this.#host = new ChannelHost(this.#channel, (op, payload) => serveHostCall(http, op, payload), isFinal)
    this.#death = new Promise<never>((_, reject) => (this.#kill = reject))
    this.#death.catch(() => undefined)
    this.#worker = startWorker(options, this.#channel)
    this.#worker.on('message', (message: FromWorker) => {
      this.#logs.received()
      options.logs?.write(message.level, message.message)
    })
    this.#worker.on('error', (error: Error & { code?: string }) => this.#die(workerFailure(error, options.memoryBytes)))
    this.#worker.on('exit', () => this.#die(new CapsuleError('unloaded', 'the capsule stopped')))
  }

  get alive(): boolean {
    return this.#dead === undefined
  }

  /** The next message that ends an exchange (after sending `call`, if given), its log lines delivered first. */
  async #exchange(call?: Uint8Array): Promise<ChannelMessage> {
    const exchanged = call ? this.#host.exchange(CALL_OP, call) : this.#host.exchange()
    const message = await Promise.race([exchanged.catch((error) => this.#failure(error)), this.#death])
    const behind = this.#logs.caughtUp(message)
    if (behind) await Promise.race([behind, this.#death])
    return message
  }

  /** A channel error after the engine stopped is the reason it stopped. */
  #failure(error: unknown): never {
    if (this.#dead) throw this.#dead
    if (error instanceof ChannelClosedError) throw new CapsuleError('unloaded', 'the capsule stopped')
    throw error
  }

  /** Waits for the worker to instantiate the module, within the load time limit (which covers instantiation only). */
  async load(): Promise<void> {
    let loadTimer: NodeJS.Timeout | undefined
    try {
      await this.#exchange() // FINAL.instantiating
      const { loadTimeoutMs } = this.options
      const timedOut = () => this.#die(new CapsuleError('load_failed', `the capsule did not finish instantiating within ${loadTimeoutMs} ms`))
      loadTimer = setTimeout(timedOut, loadTimeoutMs)
      const outcome = await this.#exchange()
      if (outcome.op !== FINAL.ready) {
        const reason = new TextDecoder().decode(outcome.bytes)
        throw new CapsuleError('load_failed', `the capsule could not be instantiated: ${reason}`)
      }
    } catch (error) {
      this.#die(error as CapsuleError)
      await this.#worker.terminate()
      throw error
    } finally {
      clearTimeout(loadTimer)
    }
    this.#worker.unref()
  }

  async call(name: string, input: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#dead) throw this.#dead
    const timedOut = () => this.#die(new CapsuleError('call_timeout', `the call to "${name}" ran past ${timeoutMs} ms; the capsule was stopped`))
    const timer = setTimeout(timedOut, timeoutMs)
    this.#worker.ref()
    keepAwake.hold()
    try {
      return outcomeOf(await this.#exchange(encodeCall(name, input)))
    } finally {
      keepAwake.release()
      clearTimeout(timer)
      if (!this.#dead) this.#worker.unref()
    }
  }

  async close(): Promise<void> {
    this.#die(new CapsuleError('unloaded', 'the capsule was unloaded'))
    await this.#worker.terminate()
  }

  #die(error: CapsuleError): void {
    if (this.#dead) return
    this.#dead = error
    this.#kill(error)
    this.#host.close()
    this.options.http.closeAll()
    void this.#worker.terminate()
  }
}

export async function createWorkerEngine(options: WorkerEngineOptions): Promise<CapsuleEngine> {
  const engine = new WorkerEngine(options)
  await engine.load()
  return engine
}
