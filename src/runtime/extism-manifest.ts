// Translates an Extism manifest (wasm sources, allowed_hosts, memory, timeout_ms, config) into a capsule manifest, refusing what would widen it.
import { createHash, timingSafeEqual } from 'node:crypto'
import { basename, resolve } from 'node:path'
import { z } from 'zod'
import { CapsuleError } from '../errors.js'
import { compileHostPattern } from '../gate/host-pattern.js'
import { closestName } from '../options.js'
import { MAX_TIMER_MS } from '../timers.js'
import { MAX_VAR_BYTES } from './kernel-guards.js'
import type { Manifest, ManifestAndModule } from './manifest.js'
import { readWasm } from './modules.js'

/** One WebAssembly page, the unit of `memory.max_pages`. */
export const WASM_PAGE_BYTES = 64 * 1024

/** The JS SDK's camelCase spellings of Extism's snake_case keys, accepted for manifests written for it. */
const TOP_ALIASES: Readonly<Record<string, string>> = { allowedHosts: 'allowed_hosts', allowedPaths: 'allowed_paths', timeoutMs: 'timeout_ms' }
const MEMORY_ALIASES: Readonly<Record<string, string>> = {
  maxPages: 'max_pages',
  maxHttpResponseBytes: 'max_http_response_bytes',
  maxVarBytes: 'max_var_bytes',
}

/** Where an Extism manifest's one module comes from: a file, its bytes (base64 in JSON), or a URL fetched with GET. */
export type ExtismWasm = (
  | { path: string }
  | { data: string | Uint8Array | ArrayBuffer }
  | { url: string | URL; headers?: Record<string, string> | null; method?: string | null }
) & { name?: string | null; hash?: string | null }

/** An Extism manifest, as Extism's manifest crate writes it (the JS SDK's camelCase keys are accepted too). */
export interface ExtismManifest {
  wasm?: ExtismWasm[] | null
  memory?: { max_pages?: number | null; max_http_response_bytes?: number | null; max_var_bytes?: number | null } | null
  config?: Record<string, string> | null
  allowed_hosts?: string[] | null
  /** Refused when it maps any path: capsule-host gives WASI no file system. */
  allowed_paths?: Record<string, string> | null
  timeout_ms?: number | null
}

/** Keys only an Extism manifest has (capsule.json has name, version, wasm as a string, capabilities, limits). */
const EXTISM_KEYS = ['allowed_hosts', 'allowed_paths', 'memory', 'config', 'timeout_ms', ...Object.keys(TOP_ALIASES)]

const count = z.int().nonnegative()

const ExtismManifestSchema = z.strictObject({
  wasm: z.array(z.unknown()).nullish(),
  memory: z
    .strictObject({
      max_pages: count.max(2 ** 32 - 1).nullish(),
      max_http_response_bytes: count.nullish(),
      max_var_bytes: count.nullish(),
    })
    .nullish(),
  config: z.record(z.string(), z.string()).nullish(),
  allowed_hosts: z.array(z.string()).nullish(),
  allowed_paths: z.record(z.string(), z.string()).nullish(),
  timeout_ms: count.nullish(),
})

type ParsedManifest = z.infer<typeof ExtismManifestSchema>

const Meta = {
  name: z.string().nullish(),
  hash: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be the sha256 of the module as 64 hexadecimal digits')
    .nullish(),
}
const SOURCES = {
  path: z.strictObject({ path: z.string().min(1), ...Meta }),
  data: z.strictObject({ data: z.union([z.string(), z.instanceof(Uint8Array), z.instanceof(ArrayBuffer)]), ...Meta }),
  url: z.strictObject({
    url: z.union([z.string().min(1), z.instanceof(URL)]),
    headers: z.record(z.string(), z.string()).nullish(),
    method: z.string().nullish(),
    ...Meta,
  }),
} as const

type WasmEntry = z.infer<(typeof SOURCES)[keyof typeof SOURCES]>

function refused(reason: string, cause?: unknown): CapsuleError {
  return new CapsuleError('load_failed', `invalid Extism manifest: ${reason}`, cause === undefined ? {} : { cause })
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)

/** True for an Extism manifest: `wasm` is an array, or a key only Extism's manifest has is present. */
export function isExtismManifest(value: unknown): boolean {
  if (!isRecord(value)) return false
  return Array.isArray(value.wasm) || EXTISM_KEYS.some((key) => Object.hasOwn(value, key))
}

/** The object with the JS SDK's camelCase keys renamed to Extism's; both spellings of one key is an error. */
function renamed(value: Record<string, unknown>, aliases: Readonly<Record<string, string>>, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    const name = aliases[key] ?? key
    if (Object.hasOwn(out, name) || (name !== key && Object.hasOwn(value, name))) {
      throw refused(`"${prefix}${key}" and "${prefix}${name}" are the same option; give one`)
    }
    out[name] = item
  }
  return out
}

/** `unknown key "alowed_hosts"; did you mean "allowed_hosts"?`: zod's first issue, with `within` naming where it is. */
function problemOf(error: z.ZodError, known: readonly string[], within?: string): string {
  const issue = error.issues[0]!
  const where = [...(within ? [within] : []), ...issue.path.map(String)].join('.')
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!
    const near = closestName(key, known)
    const at = (name: string) => (where === '' ? name : `${where}.${name}`)
    return `unknown key "${at(key)}"; ${near ? `did you mean "${at(near)}"?` : `the keys are ${known.join(', ')}`}`
  }
  return `${where === '' ? 'the manifest' : `"${where}"`} ${issue.message.replace(/^Invalid input: /, 'is invalid: ')}`
}

/** capsule.json's own keys: one of them beside Extism's means two kinds of manifest were mixed. */
const CAPSULE_JSON_KEYS = ['name', 'version', 'capabilities', 'limits']

function parseExtism(value: unknown): ParsedManifest {
  if (!isRecord(value)) throw refused('it must be an object')
  const mixed = CAPSULE_JSON_KEYS.filter((key) => Object.hasOwn(value, key))
  if (mixed.length > 0) {
    const extism = Object.keys(value).filter((key) => !CAPSULE_JSON_KEYS.includes(key))
    throw refused(`it mixes capsule.json keys (${mixed.join(', ')}) with an Extism manifest's (${extism.join(', ')}); write one kind of manifest (capsule.json has no config: give it in the load)`)
  }
  const top = renamed(value, TOP_ALIASES, '')
  if (isRecord(top.memory)) top.memory = renamed(top.memory, MEMORY_ALIASES, 'memory.')
  const parsed = ExtismManifestSchema.safeParse(top)
  if (!parsed.success) {
    const known = parsed.error.issues[0]?.path[0] === 'memory' ? Object.values(MEMORY_ALIASES) : Object.keys(ExtismManifestSchema.shape)
    throw refused(problemOf(parsed.error, known))
  }
  return parsed.data
}

/** One `wasm` entry, told apart by its `path`, `data` or `url` key (exactly one). */
function parseEntry(value: unknown): WasmEntry {
  if (!isRecord(value)) throw refused('"wasm[0]" must be an object with "path", "data" or "url"')
  const kinds = (Object.keys(SOURCES) as (keyof typeof SOURCES)[]).filter((key) => Object.hasOwn(value, key))
  if (kinds.length !== 1) {
    throw refused(`"wasm[0]" must have exactly one of "path", "data" or "url"${kinds.length ? `, not ${kinds.map((k) => `"${k}"`).join(' and ')}` : ''}`)
  }
  const schema = SOURCES[kinds[0]!]
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw refused(problemOf(parsed.error, Object.keys(schema.shape), 'wasm[0]'))
  return parsed.data
}

/**
 * capsule-host's host pattern for one `allowed_hosts` entry. Extism matches a glob against the
 * URL's host (`*` is any run of characters, dots included; `?` and `[...]` match one character).
 * An exact host stays exact; `*.example.com` becomes capsule-host's `*.example.com`, which is
 * narrower (one label, where Extism's also matches `a.b.example.com`), never wider. Every other
 * glob is wider than any pattern capsule-host has and is refused with the patterns to write.
 */
export function hostPatternFor(entry: string): string {
  // A bracketed IPv6 literal is a character class to Extism's glob (it matches no real host); here it is that address.
  if (/^\[[0-9a-fA-F:.]+\]$/.test(entry)) return compileHostPattern(entry).source
  if (entry === '') throw new Error('an empty entry is no host; remove it')
  if (/^[*.]*\*[*.]*$/.test(entry)) {
    throw new Error(`${JSON.stringify(entry)} would allow every host in Extism; capsule-host never allows every host: list the hosts, or use "*.example.com" for one label under a domain`)
  }
  const wildcard = entry.startsWith('*.') && !/[*?[\]]/.test(entry.slice(2))
  if (!wildcard && /[*?[\]]/.test(entry)) throw new Error(wideGlob(entry))
  try {
    compileHostPattern(entry)
  } catch (error) {
    throw new Error((error as Error).message.replace(/ and put ports in "port"$/, '; Extism matches the host only, never a port'))
  }
  return entry
}

/** Why a glob is refused, with the patterns that say what it most likely meant. */
function wideGlob(entry: string): string {
  const star = /^\*+([a-z0-9][^*?[\]]*)$/i.exec(entry)
  if (star) {
    const domain = star[1]!
    return `"${entry}" also matches hosts that merely end in "${domain}" (such as "evil${domain}") and names any depth under it; write "${domain}" and "*.${domain}"`
  }
  if (/^\*\*\./.test(entry)) return `"${entry}" is not a host glob; write "${entry.replace(/^\*+\./, '*.')}" for one label under the domain`
  return `"${entry}" is a glob that capsule-host cannot match exactly ("*" only as the whole first label, no "?" or "[...]"); list the hosts it should reach, or use "*.example.com" for one label under a domain`
}

function allowedHosts(entries: readonly string[] | null | undefined): string[] {
  return (entries ?? []).map((entry, i) => {
    try {
      return hostPatternFor(entry)
    } catch (error) {
      throw refused(`allowed_hosts[${i}]: ${(error as Error).message}`)
    }
  })
}

/** Extism's data is standard base64 with padding; anything else is refused rather than decoded leniently. */
function base64Bytes(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw refused('"wasm[0].data" must be the module as standard base64 (with padding) or bytes')
  return new Uint8Array(Buffer.from(text, 'base64'))
}

/** The bytes of the one module, read from where the entry says and checked against its hash. */
async function entryBytes(entry: WasmEntry, baseDir: string): Promise<Uint8Array> {
  let bytes: Uint8Array
  if ('path' in entry) bytes = await readWasm(resolve(baseDir, entry.path))
  else if ('data' in entry) bytes = typeof entry.data === 'string' ? base64Bytes(entry.data) : entry.data instanceof Uint8Array ? entry.data : new Uint8Array(entry.data)
  else {
    if (entry.headers && Object.keys(entry.headers).length > 0) throw refused('"wasm[0].headers" is not supported: capsule-host downloads a module with a plain GET; fetch it yourself and give it as "data"')
    if (entry.method && entry.method.toUpperCase() !== 'GET') throw refused(`"wasm[0].method" ${JSON.stringify(entry.method)} is not supported: capsule-host downloads a module with GET`)
    const url = entry.url instanceof URL ? entry.url : URL.canParse(entry.url) ? new URL(entry.url) : undefined
    if (url === undefined) throw refused(`"wasm[0].url" ${JSON.stringify(entry.url)} is not an absolute URL`)
    if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'file:') throw refused(`"wasm[0].url" must be an http:, https: or file: URL, not ${url.protocol}`)
    bytes = await readWasm(url)
  }
  if (entry.hash) checkHash(bytes, entry.hash)
  return bytes
}

function checkHash(bytes: Uint8Array, hash: string): void {
  const actual = createHash('sha256').update(bytes).digest()
  if (!timingSafeEqual(actual, Buffer.from(hash, 'hex'))) {
    throw refused(`hash mismatch: "wasm[0].hash" is ${hash.toLowerCase()}, the module's sha256 is ${actual.toString('hex')}`)
  }
}

/** The limits the manifest asks for, in capsule-host's names; the runtime only ever lowers its own with them. */
function limitsOf(manifest: ParsedManifest): NonNullable<Manifest['limits']> {
  const memory = manifest.memory ?? {}
  if (memory.max_pages === 0) throw refused('"memory.max_pages" must be at least 1 (one page is 64 KiB); leave it out for the runtime\'s limit')
  if (memory.max_http_response_bytes === 0) throw refused('"memory.max_http_response_bytes" must be at least 1; leave it out for the runtime\'s limit')
  if (manifest.timeout_ms === 0) throw refused('"timeout_ms" must be at least 1; leave it out (or null) for the runtime\'s limit')
  const vars = memory.max_var_bytes
  if (vars !== null && vars !== undefined && vars < MAX_VAR_BYTES) {
    throw refused(`"memory.max_var_bytes" ${vars} is below capsule-host's vars limit (${MAX_VAR_BYTES} bytes, the same as Extism's default), which cannot be lowered per capsule; leave it out or give at least ${MAX_VAR_BYTES}`)
  }
  return {
    ...(memory.max_pages ? { memoryBytes: memory.max_pages * WASM_PAGE_BYTES } : {}),
    ...(memory.max_http_response_bytes ? { maxResponseBytes: memory.max_http_response_bytes } : {}),
    ...(manifest.timeout_ms ? { callTimeoutMs: Math.min(manifest.timeout_ms, MAX_TIMER_MS) } : {}),
  }
}

/** The capsule's default name: the module's own, else its file name without ".wasm". */
function nameOf(entry: WasmEntry | undefined): string {
  if (entry?.name && entry.name !== 'main') return entry.name
  const source = entry === undefined ? undefined : 'path' in entry ? entry.path : 'url' in entry ? new URL(entry.url).pathname : undefined
  const file = source === undefined ? '' : basename(source).replace(/\.wasm$/i, '')
  return file === '' ? 'capsule' : file
}

/**
 * Reads an Extism manifest. `baseDir` is where a relative `path` starts (the manifest file's
 * folder, or the working directory for a value). Refuses `allowed_paths` (capsule-host gives
 * WASI no file system), several modules (they would need linking), and a module given both here
 * and in the load.
 */
export async function fromExtismManifest(value: unknown, baseDir: string, wasm: unknown): Promise<ManifestAndModule> {
  const manifest = parseExtism(value)
  const paths = Object.keys(manifest.allowed_paths ?? {})
  if (paths.length > 0) {
    throw refused(`"allowed_paths" (${paths.map((p) => JSON.stringify(p)).join(', ')}) cannot be granted: capsule-host gives WASI modules no file system at all (no preopened directory); remove it, and pass data through the input or config`)
  }
  const entries = manifest.wasm ?? []
  if (entries.length > 1) {
    throw refused(`it lists ${entries.length} modules in "wasm"; capsule-host runs one module per capsule and does not link modules to each other: merge them into one module (for example with wasm-merge) or load each as its own capsule`)
  }
  if (entries.length === 1 && wasm !== undefined) throw refused('the module is given both in "wasm" and in the load; give it in one place')
  if (entries.length === 0 && wasm === undefined) throw refused('it names no module in "wasm" and the load gives none')
  const entry = entries.length === 1 ? parseEntry(entries[0]) : undefined
  const http = allowedHosts(manifest.allowed_hosts)
  const limits = limitsOf(manifest)
  const bytes = entry ? await entryBytes(entry, baseDir) : wasm
  const capsule: Manifest = { name: nameOf(entry), version: '0.0.0', capabilities: { http }, limits }
  return { manifest: capsule, wasm: bytes, config: { ...manifest.config } }
}
