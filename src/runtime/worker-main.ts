// The entry of a capsule's worker thread: an Extism plugin whose host functions block on the channel.
import { getHeapStatistics } from 'node:v8'
import { parentPort, workerData } from 'node:worker_threads'
import { CapsuleError, wireErrorOf } from '../errors.js'
import { CheckedRequest } from '../wire/parse.js'
import { ChannelClient, ChannelClosedError } from './channel.js'
import { HOST_NAMESPACE, syncHostFunctions, type HostIo, type MemoryRef } from './host-functions.js'
import { kernelFunctions, KernelMemoryExceeded, type CapsuleLog, type KernelBudget } from './kernel-guards.js'
import { decodeKernelReply, syncKernelHttpFunctions } from './kernel-http.js'
import { KERNEL_HTTP_NAMESPACE } from './module-bounds.js'
import { LogLines } from './log-lines.js'
import { extismOptions, failureOf, outputBytes, PluginSlot, startInstance, wasiNamespace } from './plugin-options.js'
import { SpinPolicy } from './spin.js'
import {
  decodeCall,
  decodeReadResult,
  encodeFailure,
  encodeRead,
  FINAL,
  LOG_COUNT_MASK,
  MAX_HANDLE_BYTES,
  OP,
  type FromWorker,
  type RefusalNotice,
  type WorkerData,
} from './worker-protocol.js'

const port = parentPort!
const data = workerData as WorkerData
const channel = new ChannelClient(data.channel, new SpinPolicy(new Int32Array(data.busy), data.cores))
const ref: MemoryRef = { memory: undefined }
const log: CapsuleLog = { lastError: undefined, rawError: undefined }
const post = (message: FromWorker) => port.postMessage(message)
const bytesOf = (handle: Uint8Array | string) => (typeof handle === 'string' ? new TextEncoder().encode(handle) : handle)

const encoder = new TextEncoder()
/** Log lines posted so far: each final message carries the count, so the main thread delivers them first. */
let logsPosted = 0
const postLog = (level: FromWorker['level'], message: string) => {
  logsPosted = (logsPosted + 1) & LOG_COUNT_MASK
  post({ type: 'log', level, message })
}
const lines = new LogLines(data.logLevel && postLog, data.logLevel ?? 'error')
/** Sends a message that ends an exchange (worker-protocol.ts FINAL). */
const finish = (op: number, payload: Uint8Array = new Uint8Array(0)) => channel.post(op, payload, logsPosted)

/** Sends a request refused here to the main thread, for the audit log only. */
function reportRefusal(refusal: RefusalNotice): void {
  channel.call(OP.refused, encoder.encode(JSON.stringify(refusal)))
}

/**
 * Parses and validates a request here, where the capsule's own time is spent: the main thread
 * gets only a checked frame. A refused request is answered here and sent on for the audit log.
 */
function send(op: typeof OP.request | typeof OP.streamStart, input: Uint8Array): Uint8Array {
  let checked: CheckedRequest
  try {
    checked = CheckedRequest.check(input, data.maxRequestBytes)
  } catch (error) {
    const refusal: RefusalNotice = { kind: op === OP.request ? 'request' : 'stream', error: wireErrorOf(error) }
    reportRefusal(refusal)
    return encoder.encode(JSON.stringify({ error: refusal.error }))
  }
  return channel.call(op, checked.frame).bytes
}

/**
 * Everything this isolate holds outside its JS heap (Wasm memory, Extism's blocks, the channel)
 * may reach the linear-memory limit plus the kernel-memory limit, with some room for the runtime.
 */
const EXTERNAL_LIMIT = 2 * data.memoryBytes + 32 * 1024 * 1024

const budget: KernelBudget = {
  admit: (_context, bytes) => {
    const external = getHeapStatistics().external_memory
    if (external + bytes > EXTERNAL_LIMIT) {
      throw new KernelMemoryExceeded(`${bytes} more bytes would bring the capsule to ${external + bytes} bytes outside its heap; the limit is ${EXTERNAL_LIMIT}`)
    }
  },
  made: () => undefined,
}

const io: HostIo<'sync'> = {
  request: (input) => send(OP.request, input),
  streamStart: (input) => send(OP.streamStart, input),
  streamRead: (handle, capacity) =>
    bytesOf(handle).byteLength > MAX_HANDLE_BYTES
      ? { ok: false, error: { code: 'invalid_request', message: 'the stream handle is too long to be a handle' } }
      : decodeReadResult(channel.call(OP.streamRead, encodeRead(handle, capacity))),
  streamClose: (handle) => {
    if (bytesOf(handle).byteLength <= MAX_HANDLE_BYTES) channel.call(OP.streamClose, bytesOf(handle))
  },
  checkpoint: () => undefined,
  budget,
}
// Fresh functions for each instance: vars and WASI state belong to one instance (PluginSlot).
const functionsOf = () => ({
  [HOST_NAMESPACE]: syncHostFunctions(io, ref),
  'extism:host/env': kernelFunctions(budget, log, data.config, lines),
  ...wasiNamespace(ref, data.wasi, lines),
  [KERNEL_HTTP_NAMESPACE]: syncKernelHttpFunctions({
    send: (checked) => decodeKernelReply(channel.call(OP.kernelRequest, checked.frame)),
    refused: (error) => reportRefusal({ kind: 'request', error, abi: 'extism' }),
    checkpoint: () => undefined,
    budget,
    maxRequestBytes: data.maxRequestBytes,
  }),
})

// Extism loads node:wasi, whose ExperimentalWarning means nothing here (node:wasi is never used: wasi.ts serves WASI).
process.removeAllListeners('warning')
const { default: createPlugin } = await import('@extism/extism')

/** Runs one call and sends its outcome; the output's size is checked here, before any copy leaves the worker. */
async function serveCall(slot: PluginSlot, payload: Uint8Array): Promise<void> {
  const { name, input } = decodeCall(payload)
  log.lastError = undefined
  log.rawError = undefined
  try {
    finish(FINAL.result, outputBytes(await slot.call(name, input, lines), name, data.maxOutputBytes))
  } catch (error) {
    const failure = error instanceof CapsuleError ? error : failureOf(error, name, slot.exports, data.memoryBytes, log)
    const { code, message, hostCode, rawText } = failure
    finish(FINAL.failure, encodeFailure({ code, message, ...(hostCode ? { hostCode } : {}), ...(rawText ? { rawText } : {}) }))
  }
}

/** Serves calls one after the other, until the host closes the channel. */
async function serveCalls(slot: PluginSlot): Promise<void> {
  for (;;) {
    let call: Uint8Array
    try {
      call = channel.nextCall().bytes
    } catch (error) {
      if (error instanceof ChannelClosedError) return
      throw error
    }
    await serveCall(slot, call)
  }
}

finish(FINAL.instantiating)
let opened: PluginSlot | undefined
try {
  opened = await PluginSlot.open(async () => {
    const plugin = await createPlugin({ wasm: [{ module: data.module }] }, extismOptions(functionsOf(), data.config, data.memoryBytes, log))
    const { exports } = await plugin.getInstance()
    startInstance(data.module, exports, ref, lines)
    return { plugin, exports }
  })
} catch (error) {
  finish(FINAL.loadError, encoder.encode((error as Error).message))
}
if (opened) {
  finish(FINAL.ready)
  await serveCalls(opened)
}
