// Capsule manifests (capsule.json, or an Extism manifest): what a capsule declares it reaches and the limits it asks for, validated.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { z } from 'zod'
import { CapsuleError } from '../errors.js'
import { TIME_LIMITS } from '../limits.js'
import { ManifestQuotaSchema } from '../quota/quotas.js'
import { TimerMs } from '../timers.js'
import { fromExtismManifest, isExtismManifest } from './extism-manifest.js'

const positive = z.int().positive()

export const ManifestSchema = z.strictObject({
  name: z.string().min(1),
  version: z.string().min(1),
  /** The module, relative to the manifest file. */
  wasm: z.string().min(1).optional(),
  capabilities: z
    .strictObject({
      /** Host patterns (`api.example.com`, `*.example.com`) or origins (`https://api.example.com:8443`). */
      http: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  /** Limits the capsule asks for; each is clamped to the host's. Time limits must fit a Node timer. */
  limits: z
    .strictObject({
      callTimeoutMs: TimerMs,
      memoryBytes: z.int().min(64 * 1024),
      maxOutputBytes: z.int().positive(),
      maxOpenStreams: positive,
      maxConcurrentRequests: positive,
      maxRequestBytes: positive,
      maxResponseBytes: positive,
      maxStreamBytes: positive,
      ...TIME_LIMITS,
    })
    .partial()
    .optional(),
  /** A quota on the capsule's own requests (docs/fleet.md), checked beside the host's: it can only lower them. */
  quotas: ManifestQuotaSchema.optional(),
})

export type Manifest = z.infer<typeof ManifestSchema>

/** The file name a manifest has beside its module. */
export const MANIFEST_FILE = 'capsule.json'

function invalid(where: string, reason: string, cause?: unknown): CapsuleError {
  return new CapsuleError('load_failed', `invalid manifest${where}: ${reason}`, { cause })
}

/** Validates a manifest value; a bad one fails with the field and the reason. */
export function parseManifest(value: unknown, where = ''): Manifest {
  const result = ManifestSchema.safeParse(value)
  if (!result.success) throw invalid(where, z.prettifyError(result.error).replace(/\n/g, '; '))
  return result.data
}

/** A manifest file's JSON value: a capsule.json or an Extism manifest, told apart by content. */
async function readManifestJson(path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    throw invalid(` ${path}`, `cannot read it (${(cause as Error).message})`, cause)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    throw invalid(` ${path}`, 'not valid JSON', cause)
  }
  return value
}

async function readManifestFile(path: string): Promise<Manifest> {
  return parseManifest(await readManifestJson(path), ` ${path}`)
}

export interface ManifestAndModule {
  readonly manifest: Manifest | undefined
  /** The module to load: the one given, or the one the manifest names (an Extism manifest's: its checked bytes). */
  readonly wasm: unknown
  /** An Extism manifest's `config`; the load's own config wins over it key by key. */
  readonly config?: Readonly<Record<string, string>>
}

/**
 * Finds the manifest for a load: the one given (a value, or the path of a JSON file), else a
 * `capsule.json` beside a module path whose `wasm` names that module or names none. A value or
 * file is an Extism manifest when its `wasm` is an array or it has a key only Extism's has
 * (`allowed_hosts`, `memory`, `config`, `timeout_ms`, `allowed_paths`); otherwise a capsule.json.
 */
export async function manifestFor(manifest: unknown, wasm: unknown): Promise<ManifestAndModule> {
  if (typeof manifest === 'string') {
    const value = await readManifestJson(manifest)
    if (isExtismManifest(value)) return fromExtismManifest(value, dirname(resolve(manifest)), wasm)
    const found = parseManifest(value, ` ${manifest}`)
    if (wasm === undefined && found.wasm === undefined) throw invalid(` ${manifest}`, 'it names no "wasm" and the load gives none')
    return { manifest: found, wasm: wasm ?? resolve(dirname(manifest), found.wasm!) }
  }
  if (manifest !== undefined) {
    if (isExtismManifest(manifest)) return fromExtismManifest(manifest, process.cwd(), wasm)
    const found = parseManifest(manifest)
    if (wasm === undefined && found.wasm === undefined) throw invalid('', 'it names no "wasm" and the load gives none')
    return { manifest: found, wasm: wasm ?? resolve(found.wasm!) }
  }
  if (typeof wasm !== 'string' || /^[a-z][a-z0-9+.-]*:\/\//i.test(wasm)) return { manifest: undefined, wasm }
  const beside = resolve(dirname(wasm), MANIFEST_FILE)
  if (!existsSync(beside)) return { manifest: undefined, wasm }
  const found = await readManifestFile(beside)
  // A manifest that names no module is the manifest of every module beside it: never silently skipped.
  const applies = found.wasm === undefined || resolve(dirname(beside), found.wasm) === resolve(wasm)
  return { manifest: applies ? found : undefined, wasm }
}
