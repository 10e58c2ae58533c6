// Maps what undici and the socket report (connect, TLS, mid-exchange failures) to wire errors.
import { CapsuleHostError, isCapsuleHostError } from '../../errors.js'
import type { NormalisedUrl } from '../../url/normalise.js'

// OpenSSL certificate verification codes (Node's `err.code` for a rejected certificate).
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
])

function isTlsError(error: { code?: unknown; library?: unknown }): boolean {
  const code = typeof error.code === 'string' ? error.code : ''
  return TLS_VERIFY_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') ||
    code === 'EPROTO' || error.library === 'SSL routines'
}

/** Maps a transport error to a wire error, given whether the connection had been established. */
export function transportError(error: unknown, connected: boolean, url: NormalisedUrl): CapsuleHostError {
  if (isCapsuleHostError(error)) return error
  const e = (error ?? {}) as { code?: unknown; library?: unknown }
  if (e.code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new CapsuleHostError('timeout', `connecting to ${url.host} timed out`, { phase: 'connect', cause: error })
  }
  if (!connected && isTlsError(e)) {
    return new CapsuleHostError('tls_failed', `the TLS handshake with ${url.host} failed`, { cause: error })
  }
  if (!connected) {
    return new CapsuleHostError('connect_failed', `could not connect to ${url.host}`, { cause: error })
  }
  return new CapsuleHostError('network', `the connection to ${url.host} failed during the exchange`, { cause: error })
}
