// Paths of the capsules built from capsules/ (npm run build:capsules), the isolation modes to run them in, and the FNV-1a hash they report.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { format } from 'node:util'
import { describe } from 'vitest'
import { hasJspi } from '../../src/index.js'

export function capsulePath(name: string): string {
  const path = fileURLToPath(new URL(`../../capsules/dist/${name}.wasm`, import.meta.url))
  if (!existsSync(path)) throw new Error(`${path} is missing: run "npm run build:capsules"`)
  return path
}

/** Every isolation mode; inline and pool need JSPI (Node 25+), see `describeIsolations`. */
export const ALL_ISOLATIONS = ['worker', 'inline', 'pool'] as const
export type Isolation = (typeof ALL_ISOLATIONS)[number]

/** True when this Node cannot run `isolation` (inline and pool suspend capsules through JSPI). */
export function lacksJspiFor(isolation: Isolation): boolean {
  return isolation !== 'worker' && !hasJspi()
}

/**
 * `describe.each(ALL_ISOLATIONS)(name, fn)`, with the inline and pool suites reported as skipped
 * (not left out) on a Node without JSPI. `%s` in `name` is the isolation.
 */
export function describeIsolations(name: string, fn: (isolation: Isolation) => void): void {
  for (const isolation of ALL_ISOLATIONS) {
    describe.skipIf(lacksJspiFor(isolation))(format(name, isolation), () => fn(isolation))
  }
}

/** 32-bit FNV-1a of `bytes`, as 8 lower-case hex digits (what probe.stream reports). */
export function fnv1a32(bytes: Uint8Array, seed = 0x811c9dc5): string {
  let hash = seed
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0
  return hash.toString(16).padStart(8, '0')
}

/** Continues an FNV-1a hash over more bytes; start from 0x811c9dc5. */
export function fnv1a32Update(hash: number, bytes: Uint8Array): number {
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0
  return hash
}
