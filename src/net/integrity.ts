// Checks a buffered body against a Subresource Integrity string (sha256/sha384/sha512).
import { createHash } from 'node:crypto'
import { CapsuleHostError } from '../errors.js'

const ALGORITHMS = ['sha256', 'sha384', 'sha512'] as const
type Algorithm = (typeof ALGORITHMS)[number]
const ENTRY = /^(sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})(?:\?[\x21-\x7e]*)?$/

export interface IntegrityMetadata {
  readonly algorithm: Algorithm
  readonly digests: readonly string[]
}

/**
 * Parses an SRI string ("sha256-... sha512-...") and keeps the strongest algorithm's digests, as
 * the SRI spec does. Throws `invalid_request` when no entry is a supported hash.
 */
export function parseIntegrity(integrity: string): IntegrityMetadata {
  const entries = integrity.trim().split(/\s+/).map((token) => ENTRY.exec(token))
  if (entries.length === 0 || entries.some((entry) => entry === null)) {
    throw new CapsuleHostError(
      'invalid_request',
      'options.integrity must be one or more "sha256-<base64>", "sha384-<base64>" or "sha512-<base64>" entries',
    )
  }
  const strongest = ALGORITHMS.filter((a) => entries.some((e) => e![1] === a)).pop()!
  return { algorithm: strongest, digests: entries.filter((e) => e![1] === strongest).map((e) => e![2]!) }
}

export function checkIntegrity(body: Uint8Array, metadata: IntegrityMetadata): void {
  const actual = createHash(metadata.algorithm).update(body).digest('base64')
  if (!metadata.digests.includes(actual)) {
    throw new CapsuleHostError('integrity_mismatch', `the response body does not match options.integrity (${metadata.algorithm})`)
  }
}
