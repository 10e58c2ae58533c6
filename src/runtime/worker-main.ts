// The entry of a capsule's worker thread: an Extism plugin whose host functions block on the channel.
import { parentPort, workerData } from 'node:worker_threads'
import { CapsuleError } from '../errors.js'
import { ChannelClient } from './channel.js'
import { HOST_NAMESPACE, syncHostFunctions, type MemoryRef } from './host-functions.js'
import { extismOptions, failureOf, type CapsuleLog } from './plugin-options.js'
import { decodeReadResult, encodeRead, OP, type FromWorker, type ToWorker, type WorkerData } from './worker-protocol.js'

const port = parentPort!
const data = workerData as WorkerData
const channel = new ChannelClient(data.channel)
const ref: MemoryRef = { memory: undefined }
const log: CapsuleLog = { lastError: undefined }
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer)
const bytesOf = (handle: Uint8Array | string) => (typeof handle === 'string' ? new TextEncoder().encode(handle) : handle)

const functions = syncHostFunctions(
  {
    request: (input) => channel.call(OP.request, input).bytes,
    streamStart: (input) => channel.call(OP.streamStart, input).bytes,
    streamRead: (handle, capacity) => decodeReadResult(channel.call(OP.streamRead, encodeRead(handle, capacity))),
    streamClose: (handle) => void channel.call(OP.streamClose, bytesOf(handle)),
    checkpoint: () => undefined,
  },
  ref,
)

// Extism loads node:wasi, whose ExperimentalWarning means nothing here (WASI is never enabled).
process.removeAllListeners('warning')
const { default: createPlugin } = await import('@extism/extism')

try {
  const plugin = await createPlugin(
    { wasm: [{ module: data.module }] },
    extismOptions({ [HOST_NAMESPACE]: functions }, data.config, data.memoryBytes, log),
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
