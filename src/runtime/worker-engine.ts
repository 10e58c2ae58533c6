// Runs a capsule in its own worker thread and serves its host calls on the main thread.
import { Worker } from 'node:worker_threads'
import { CapsuleError, INTERNAL_WIRE_ERROR } from '../errors.js'
import type { CapsuleEngine } from './capsule.js'
import type { CapsuleHttp } from './capsule-http.js'
import { createChannelBuffer, serveChannel, type ChannelReply } from './channel.js'
import type { EngineLogs } from './logs.js'
import type { CompiledCapsule } from './modules.js'
import type { WasiGrants } from './wasi-grants.js'
import { CheckedRequest } from '../wire/parse.js'
import {
  CHANNEL_DATA_BYTES,
  decodeReadRequest,
  encodeReadResult,
  OP,
  type FromWorker,
  type RefusalNotice,
  type ToWorker,
  type WorkerData,
} from './worker-protocol.js'
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

export async function createWorkerEngine(options: WorkerEngineOptions): Promise<CapsuleEngine> {
  const { http } = options
  const channel = createChannelBuffer(CHANNEL_DATA_BYTES)
  const data: WorkerData = {
    module: options.compiled.module,
    config: options.config,
    memoryBytes: options.memoryBytes,
    maxRequestBytes: options.maxRequestBytes,
    maxOutputBytes: options.maxOutputBytes,
    channel,
    ...(options.logs ? { logLevel: options.logs.level } : {}),
    ...(options.wasi ? { wasi: options.wasi } : {}),
  }
  const worker = new Worker(workerScript(), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: heapLimitMb(options.memoryBytes), maxYoungGenerationSizeMb: 32 },
    stdout: false,
    stderr: false,
  })
  const stopServing = serveChannel(channel, (op, payload) => serveHostCall(http, op, payload))

  /** The one call in flight (calls are queued by Capsule). */
  let pending: { id: number; resolve: (bytes: Uint8Array) => void; reject: (error: CapsuleError) => void } | undefined
  let nextId = 1
  let dead: CapsuleError | undefined

  const die = (error: CapsuleError) => {
    if (dead) return
    dead = error
    stopServing()
    http.closeAll()
    pending?.reject(error)
    pending = undefined
    void worker.terminate()
  }

  // The time limit covers instantiation (the module's start function), not the worker's own start-up.
  let loadTimer: NodeJS.Timeout | undefined
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'instantiating') {
        const timedOut = () => reject(new CapsuleError('load_failed', `the capsule did not finish instantiating within ${options.loadTimeoutMs} ms`))
        return void (loadTimer = setTimeout(timedOut, options.loadTimeoutMs))
      }
      if (message.type === 'log') return void options.logs?.write(message.level, message.message)
      if (message.type === 'ready') return resolve()
      if (message.type === 'load_error') {
        return reject(new CapsuleError('load_failed', `the capsule could not be instantiated: ${message.message}`))
      }
      if (!pending || message.id !== pending.id) return
      const { resolve: done, reject: failed } = pending
      pending = undefined
      worker.unref()
      if (message.type === 'result') done(message.output)
      else {
        const { code, message: text, hostCode, rawText } = message
        failed(new CapsuleError(code, text, { ...(hostCode ? { hostCode } : {}), ...(rawText ? { rawText } : {}) }))
      }
    })
    worker.on('error', (error: Error & { code?: string }) => {
      const failure =
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new CapsuleError('memory_limit', `the capsule ran out of memory at the limit of ${options.memoryBytes} bytes`, { cause: error })
          : new CapsuleError('capsule_failed', `the capsule's worker failed: ${error.message}`, { cause: error })
      reject(failure)
      die(failure)
    })
    worker.on('exit', () => {
      const failure = new CapsuleError('unloaded', 'the capsule stopped')
      reject(failure)
      die(failure)
    })
  })
  try {
    await ready
  } catch (error) {
    die(error as CapsuleError)
    await worker.terminate()
    throw error
  } finally {
    clearTimeout(loadTimer)
  }
  worker.unref()

  return {
    get alive() {
      return dead === undefined
    },
    call(name, input, timeoutMs) {
      if (dead) return Promise.reject(dead)
      return new Promise<Uint8Array>((resolve, reject) => {
        const id = nextId++
        const timer = setTimeout(
          () => die(new CapsuleError('call_timeout', `the call to "${name}" ran past ${timeoutMs} ms; the capsule was stopped`)),
          timeoutMs,
        )
        const settle = <T>(fn: (value: T) => void) => (value: T) => {
          clearTimeout(timer)
          fn(value)
        }
        pending = { id, resolve: settle(resolve), reject: settle(reject) }
        worker.ref()
        const message: ToWorker = { type: 'call', id, name, input }
        worker.postMessage(message)
      })
    },
    async close() {
      die(new CapsuleError('unloaded', 'the capsule was unloaded'))
      await worker.terminate()
    },
  }
}
