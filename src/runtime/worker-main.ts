// The entry of a capsule's worker thread: an Extism plugin whose host functions block on the channel.
import { parentPort, workerData } from 'node:worker_threads'
import { CapsuleError } from '../errors.js'
import { ChannelClient } from './channel.js'
import { tooLargeMessage } from '../wire/parse.js'
import { getHeapStatistics } from 'node:v8'
import { guardedAlloc, HOST_NAMESPACE, KernelMemoryExceeded, syncHostFunctions, type HostIo, type MemoryRef } from './host-functions.js'
import { extismOptions, failureOf, type CapsuleLog } from './plugin-options.js'
import { decodeReadResult, encodeRead, MAX_HANDLE_BYTES, OP, type FromWorker, type ToWorker, type WorkerData } from './worker-protocol.js'

const port = parentPort!
const data = workerData as WorkerData
const channel = new ChannelClient(data.channel)
const ref: MemoryRef = { memory: undefined }
const log: CapsuleLog = { lastError: undefined }
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer)
const bytesOf = (handle: Uint8Array | string) => (typeof handle === 'string' ? new TextEncoder().encode(handle) : handle)

const encoder = new TextEncoder()

/** Answers an oversized request here: it is never copied to the main thread. */
function tooLarge(input: Uint8Array): Uint8Array | undefined {
  if (input.byteLength <= data.maxRequestBytes) return undefined
  const message = tooLargeMessage(input.byteLength, data.maxRequestBytes)
  return encoder.encode(JSON.stringify({ error: { code: 'invalid_request', message } }))
}

/**
 * Everything this isolate holds outside its JS heap (Wasm memory, Extism's blocks, the channel)
 * may reach the linear-memory limit plus the kernel-memory limit, with some room for the runtime.
 */
const EXTERNAL_LIMIT = 2 * data.memoryBytes + 32 * 1024 * 1024

const io: HostIo<'sync'> = {
  request: (input) => tooLarge(input) ?? channel.call(OP.request, input).bytes,
  streamStart: (input) => tooLarge(input) ?? channel.call(OP.streamStart, input).bytes,
  streamRead: (handle, capacity) =>
    bytesOf(handle).byteLength > MAX_HANDLE_BYTES
      ? { ok: false, error: { code: 'invalid_request', message: 'the stream handle is too long to be a handle' } }
      : decodeReadResult(channel.call(OP.streamRead, encodeRead(handle, capacity))),
  streamClose: (handle) => {
    if (bytesOf(handle).byteLength <= MAX_HANDLE_BYTES) channel.call(OP.streamClose, bytesOf(handle))
  },
  checkpoint: () => undefined,
  reserve: (bytes) => {
    const external = getHeapStatistics().external_memory
    if (external + bytes > EXTERNAL_LIMIT) {
      throw new KernelMemoryExceeded(`${bytes} more bytes would bring the capsule to ${external + bytes} bytes outside its heap; the limit is ${EXTERNAL_LIMIT}`)
    }
  },
}
const functions = { [HOST_NAMESPACE]: syncHostFunctions(io, ref), 'extism:host/env': { alloc: guardedAlloc(io) } }

// Extism loads node:wasi, whose ExperimentalWarning means nothing here (WASI is never enabled).
process.removeAllListeners('warning')
const { default: createPlugin } = await import('@extism/extism')

try {
  const plugin = await createPlugin(
    { wasm: [{ module: data.module }] },
    extismOptions(functions, data.config, data.memoryBytes, log),
  )
  const instance = await plugin.getInstance()
  ref.memory = instance.exports.memory instanceof WebAssembly.Memory ? instance.exports.memory : undefined
  port.on('message', async (message: ToWorker) => {
    log.lastError = undefined
    try {
      const output = (await plugin.call(message.name, message.input))?.bytes() ?? new Uint8Array(0)
      const copy = output.slice()
      post({ type: 'result', id: message.id, output: copy }, [copy.buffer])
    } catch (error) {
      const failure = error instanceof CapsuleError ? error : failureOf(error, message.name, ref.memory, data.memoryBytes, log)
      post({
        type: 'failure',
        id: message.id,
        code: failure.code,
        message: failure.message,
        ...(failure.hostCode ? { hostCode: failure.hostCode } : {}),
      })
    }
  })
  post({ type: 'ready' })
} catch (error) {
  post({ type: 'load_error', message: (error as Error).message })
}
