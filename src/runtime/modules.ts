// Reads capsule modules, caps their memory, checks their imports and caches compiled modules by content hash.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { CapsuleError } from '../errors.js'
import { HOST_FUNCTION_NAMES, HOST_NAMESPACE } from './host-functions.js'
import { capMemory, ModuleShapeError } from './memory-cap.js'

/** Where a capsule's code comes from: a file path, a `file:`/`http:`/`https:` URL, or the module bytes. */
export type WasmSource = string | URL | Uint8Array | ArrayBuffer

/** The largest module the runtime downloads. */
const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
const DOWNLOAD_TIMEOUT_MS = 30_000

const EXTISM_KERNEL = 'extism:host/env'
const PROVIDED: ReadonlySet<string> = new Set(HOST_FUNCTION_NAMES)

/**
 * Downloads a module the host named (the host is trusted: this does not go through any capsule's
 * rules), capped at 64 MiB and 30 s.
 */
async function download(url: URL): Promise<Uint8Array> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS), redirect: 'follow' })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    const declared = Number(response.headers.get('content-length') ?? 0)
    if (declared > MAX_DOWNLOAD_BYTES) throw new Error(`it is ${declared} bytes; the limit is ${MAX_DOWNLOAD_BYTES}`)
    const chunks: Uint8Array[] = []
    let size = 0
    const reader = response.body?.getReader()
    for (let part = await reader?.read(); part && !part.done; part = await reader?.read()) {
      size += part.value.byteLength
      if (size > MAX_DOWNLOAD_BYTES) {
        await reader?.cancel()
        throw new Error(`it is over the limit of ${MAX_DOWNLOAD_BYTES} bytes`)
      }
      chunks.push(part.value)
    }
    return new Uint8Array(Buffer.concat(chunks))
  } catch (cause) {
    throw new CapsuleError('load_failed', `cannot download the capsule module ${url.href}: ${(cause as Error).message}`, { cause })
  }
}

export async function readWasm(source: WasmSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source
  if (source instanceof ArrayBuffer) return new Uint8Array(source)
  const url = source instanceof URL ? source : /^[a-z][a-z0-9+.-]*:\/\//i.test(source) ? new URL(source) : undefined
  if (url && (url.protocol === 'http:' || url.protocol === 'https:')) return download(url)
  if (url && url.protocol !== 'file:') {
    throw new CapsuleError('load_failed', `cannot load ${url.href}: use a file path, a file:, http: or https: URL, or the module's bytes`)
  }
  const path = url ? fileURLToPath(url) : (source as string)
  try {
    return new Uint8Array(await readFile(path))
  } catch (cause) {
    throw new CapsuleError('load_failed', `cannot read the capsule module ${path}: ${(cause as Error).message}`, { cause })
  }
}

/** Refuses, at load time, a module importing anything the runtime does not provide, naming it. */
function checkImports(module: WebAssembly.Module): void {
  for (const { module: namespace, name, kind } of WebAssembly.Module.imports(module)) {
    const what = `"${namespace}" "${name}"`
    if (namespace === HOST_NAMESPACE && (kind !== 'function' || !PROVIDED.has(name))) {
      throw new CapsuleError('load_failed', `the capsule imports ${what}, which capsule-host does not provide; it provides ${HOST_FUNCTION_NAMES.join(', ')}`)
    }
    if (namespace !== HOST_NAMESPACE && namespace !== EXTISM_KERNEL) {
      throw new CapsuleError('load_failed', `the capsule imports ${what}, which capsule-host does not provide (WASI and other host modules are not available)`)
    }
  }
}

export interface CompiledCapsule {
  readonly module: WebAssembly.Module
  /** sha256 of the original bytes. */
  readonly hash: string
  readonly exports: ReadonlySet<string>
}

/** Compiles each distinct module (content hash and memory limit) once. */
export class ModuleCache {
  readonly #compiled = new Map<string, Promise<CompiledCapsule>>()
  #compilations = 0

  get compilations(): number {
    return this.#compilations
  }

  compile(bytes: Uint8Array, memoryBytes: number): Promise<CompiledCapsule> {
    const hash = createHash('sha256').update(bytes).digest('hex')
    const key = `${hash}:${memoryBytes}`
    let entry = this.#compiled.get(key)
    if (!entry) {
      entry = this.#compile(bytes, hash, memoryBytes)
      this.#compiled.set(key, entry)
      entry.catch(() => this.#compiled.delete(key))
    }
    return entry
  }

  async #compile(bytes: Uint8Array, hash: string, memoryBytes: number): Promise<CompiledCapsule> {
    let module: WebAssembly.Module
    try {
      this.#compilations++
      module = await WebAssembly.compile(capMemory(bytes, memoryBytes))
    } catch (cause) {
      const reason = cause instanceof ModuleShapeError || cause instanceof WebAssembly.CompileError ? (cause as Error).message : String(cause)
      throw new CapsuleError('load_failed', `the capsule module is not usable: ${reason}`, { cause })
    }
    checkImports(module)
    const exports = new Set(WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name))
    return { module, hash, exports }
  }
}
