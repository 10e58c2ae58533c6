// Reads capsule modules, bounds them, checks their imports, and caches compiled modules while capsules use them.
import { createHash } from 'node:crypto'
import { channel } from 'node:diagnostics_channel'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { CapsuleError } from '../errors.js'
import type { WasmModule } from '../wasm-types.js'
import { HOST_FUNCTION_NAMES, HOST_NAMESPACE } from './host-names.js'
import { boundModule, KERNEL_HTTP_NAMESPACE, ModuleBoundError, moduleBounds, WASI_IMPORT_NAMESPACE } from './module-bounds.js'
import { publicExportName, WASI_FUNCTION_NAMES } from './wasi.js'

/** Where a capsule's code comes from: a file path, a `file:`/`http:`/`https:` URL, or the module bytes. */
export type WasmSource = string | URL | Uint8Array | ArrayBuffer

/** The largest module the runtime downloads. */
const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
const DOWNLOAD_TIMEOUT_MS = 30_000

const EXTISM_KERNEL = 'extism:host/env'
const PROVIDED: ReadonlySet<string> = new Set(HOST_FUNCTION_NAMES)
const WASI_PROVIDED: ReadonlySet<string> = new Set(WASI_FUNCTION_NAMES)

/** What `downloadChannel` publishes while a module downloads: at the start (0 bytes), after each chunk, and at the end. */
export interface DownloadProgress {
  readonly url: string
  readonly received: number
  /** The declared length, when the server sent one. */
  readonly total: number | undefined
  readonly done: boolean
}

/**
 * Diagnostics (node:diagnostics_channel) `capsule-host:module-download`: a DownloadProgress as a
 * module downloads (the CLI draws its progress from it). Without subscribers it costs a check.
 */
export const downloadChannel = channel('capsule-host:module-download')

function publishDownload(url: URL, received: number, total: number | undefined, done: boolean): void {
  if (downloadChannel.hasSubscribers) downloadChannel.publish({ url: url.href, received, total, done } satisfies DownloadProgress)
}

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
    const total = declared > 0 ? declared : undefined
    const chunks: Uint8Array[] = []
    let size = 0
    publishDownload(url, 0, total, false)
    const reader = response.body?.getReader()
    for (let part = await reader?.read(); part && !part.done; part = await reader?.read()) {
      size += part.value.byteLength
      if (size > MAX_DOWNLOAD_BYTES) {
        await reader?.cancel()
        throw new Error(`it is over the limit of ${MAX_DOWNLOAD_BYTES} bytes`)
      }
      chunks.push(part.value)
      publishDownload(url, size, total, false)
    }
    publishDownload(url, size, total, true)
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

/** The fix for an import a compiler adds by default, named in the load error (docs/capsules.md). */
const COMPILER_IMPORT_HINTS: ReadonlyMap<string, string> = new Map([
  ['env.abort', `AssemblyScript's default abort hook; build with the SDK's preset (an asconfig.json with "extends": "./node_modules/capsule-host/capsules/asconfig.preset.json") or pass --use abort=~lib/capsule-host/capsules/sdk/abort/capsuleAbort to asc`],
  ['env.trace', `AssemblyScript's trace(); remove it, or log through Extism's log functions (extism:host/env log_info and its kin)`],
])

/**
 * Refuses, at load time, a module importing anything the runtime does not provide, naming it.
 * The module is the rewritten one: its WASI imports are under WASI_IMPORT_NAMESPACE, named here as
 * the capsule wrote them.
 */
function checkImports(module: WebAssembly.Module): void {
  for (const { module: moved, name, kind } of WebAssembly.Module.imports(module)) {
    const namespace = moved === WASI_IMPORT_NAMESPACE ? 'wasi_snapshot_preview1' : moved
    const what = `"${namespace}" "${name}"`
    if (moved === WASI_IMPORT_NAMESPACE && !WASI_PROVIDED.has(name)) {
      throw new CapsuleError('load_failed', `the capsule imports ${what}, which is not a WASI preview 1 function capsule-host provides; it provides ${WASI_FUNCTION_NAMES.join(', ')}`)
    }
    if (namespace !== HOST_NAMESPACE && namespace !== EXTISM_KERNEL && namespace !== KERNEL_HTTP_NAMESPACE && moved !== WASI_IMPORT_NAMESPACE) {
      const hint = COMPILER_IMPORT_HINTS.get(`${namespace}.${name}`)
      throw new CapsuleError('load_failed', `the capsule imports ${what}, which capsule-host does not provide (it provides ${HOST_NAMESPACE}, ${EXTISM_KERNEL} and wasi_snapshot_preview1)${hint === undefined ? '' : `: ${hint}`}`)
    }
    if (kind !== 'function') {
      throw new CapsuleError('load_failed', `the capsule imports ${what}, a ${kind}; capsule-host provides only functions (declare and export tables, memories and globals instead)`)
    }
    if (namespace === HOST_NAMESPACE && !PROVIDED.has(name)) {
      throw new CapsuleError('load_failed', `the capsule imports ${what}, which capsule-host does not provide; it provides ${HOST_FUNCTION_NAMES.join(', ')}`)
    }
  }
}

export interface CompiledCapsule {
  readonly module: WasmModule
  /** sha256 of the original bytes. */
  readonly hash: string
  /** The function exports (the rewrite's own table exports are not functions, so never listed). */
  readonly exports: ReadonlySet<string>
}

/** A compiled module held for one capsule; `release()` (idempotent) gives it back to the cache. */
export interface ModuleLease {
  readonly compiled: CompiledCapsule
  release(): void
}

/** How many released modules a runtime keeps compiled by default. */
export const DEFAULT_MODULE_CACHE_SIZE = 8

interface CacheEntry {
  readonly compiled: Promise<CompiledCapsule>
  /** Leases not yet released, and loads still waiting for the compilation. */
  users: number
}

/**
 * Compiles each distinct module (content hash and memory limit) once, and keeps it compiled while
 * any capsule uses it; of the modules no capsule uses, it keeps the `size` most recently released.
 */
export class ModuleCache {
  /** Modules some capsule uses (or a load is compiling). */
  readonly #used = new Map<string, CacheEntry>()
  /** Released modules, least recently released first. */
  readonly #recent = new Map<string, Promise<CompiledCapsule>>()
  readonly #size: number
  #compilations = 0

  constructor(size: number = DEFAULT_MODULE_CACHE_SIZE) {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new TypeError(`createRuntime: "moduleCacheSize" must be a whole number of modules, 0 or more, not ${String(size)}`)
    }
    this.#size = size
  }

  get compilations(): number {
    return this.#compilations
  }

  /** How many compiled modules the cache holds: in use, being compiled, and recently released. */
  get size(): number {
    return this.#used.size + this.#recent.size
  }

  /** The compiled module for these bytes and memory limit, held until the lease is released. */
  async acquire(bytes: Uint8Array, memoryBytes: number): Promise<ModuleLease> {
    const hash = createHash('sha256').update(bytes).digest('hex')
    const key = `${hash}:${memoryBytes}`
    const entry = this.#take(key, () => this.#compile(bytes, hash, memoryBytes))
    let compiled: CompiledCapsule
    try {
      compiled = await entry.compiled
    } catch (error) {
      this.#drop(key, entry)
      throw error
    }
    let held = true
    return {
      compiled,
      release: () => {
        if (held) this.#drop(key, entry)
        held = false
      },
    }
  }

  /** The entry for `key`, with one more user: in use, brought back from the recent ones, or new. */
  #take(key: string, compile: () => Promise<CompiledCapsule>): CacheEntry {
    let entry = this.#used.get(key)
    if (!entry) {
      const recent = this.#recent.get(key)
      this.#recent.delete(key)
      const created: CacheEntry = { compiled: recent ?? compile(), users: 0 }
      // A module that did not compile is forgotten at once: the next load tries again.
      created.compiled.catch(() => this.#used.get(key) === created && this.#used.delete(key))
      this.#used.set(key, created)
      entry = created
    }
    entry.users++
    return entry
  }

  /** One user fewer; a compiled module nobody uses joins the recent ones, dropping the oldest. */
  #drop(key: string, entry: CacheEntry): void {
    if (--entry.users > 0 || this.#used.get(key) !== entry) return
    this.#used.delete(key)
    if (this.#size === 0) return
    this.#recent.set(key, entry.compiled)
    for (const oldest of this.#recent.keys()) {
      if (this.#recent.size <= this.#size) break
      this.#recent.delete(oldest)
    }
  }

  async #compile(bytes: Uint8Array, hash: string, memoryBytes: number): Promise<CompiledCapsule> {
    let module: WebAssembly.Module
    try {
      this.#compilations++
      module = await WebAssembly.compile(boundModule(bytes, moduleBounds(memoryBytes)))
    } catch (cause) {
      const reason = cause instanceof ModuleBoundError || cause instanceof WebAssembly.CompileError ? (cause as Error).message : String(cause)
      throw new CapsuleError('load_failed', `the capsule module is not usable: ${reason}`, { cause })
    }
    checkImports(module)
    const exports = new Set(WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => publicExportName(e.name)))
    return { module, hash, exports }
  }
}
