// Maps what undici and the socket report (connect, TLS, mid-exchange failures) to wire errors.
import { CapsuleHostError, isCapsuleHostError } from '../../errors.js'
import { safeText } from '../../safe-text.js'
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

// The `detail` of a `tls_failed` error, by code: a short stable phrase for the audit log. Any other
// code (or none) is "TLS handshake failed (<code or message>)". Never sent to a capsule.
const TLS_CAUSES: Readonly<Record<string, string>> = {
  // The chain does not end at a trusted root: the issuer is unknown (not sent, or not trusted).
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown certificate authority',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown certificate authority',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown certificate authority',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown certificate authority',
  ERR_TLS_CERT_ALTNAME_INVALID: 'certificate name mismatch',
  HOSTNAME_MISMATCH: 'certificate name mismatch',
  CERT_HAS_EXPIRED: 'certificate expired',
  CERT_NOT_YET_VALID: 'certificate not yet valid',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
}

// The `detail` of a `connect_failed` or `network` error, by socket or undici code.
const SOCKET_CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  EPIPE: 'broken pipe',
  // undici's SocketError: the server closed the connection before the response was complete.
  UND_ERR_SOCKET: 'closed by the server',
}

/** The most characters of an error message that a `detail` quotes when there is no code. */
const MAX_DETAIL_MESSAGE_CHARS = 200

type TransportFailure = { code?: unknown; library?: unknown; message?: unknown }

function isTlsError(error: TransportFailure): boolean {
  const code = typeof error.code === 'string' ? error.code : ''
  return TLS_VERIFY_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') ||
    code === 'EPROTO' || error.library === 'SSL routines'
}

/** `phrase (CODE)` from `causes`, or `fallback (CODE or message)` when the code has no phrase. */
function detailOf(error: TransportFailure, causes: Readonly<Record<string, string>>, fallback: string): string {
  const code = typeof error.code === 'string' && error.code !== '' ? error.code : undefined
  if (code !== undefined && Object.hasOwn(causes, code)) return `${causes[code]} (${code})`
  const message = typeof error.message === 'string' && error.message.trim() !== '' ? error.message.trim() : 'no code or message'
  return `${fallback} (${code ?? safeText(message, MAX_DETAIL_MESSAGE_CHARS)})`
}

/** Maps a transport error to a wire error, given whether the connection had been established. */
export function transportError(error: unknown, connected: boolean, url: NormalisedUrl): CapsuleHostError {
  if (isCapsuleHostError(error)) return error
  const e = (error ?? {}) as TransportFailure
  if (e.code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new CapsuleHostError('timeout', `connecting to ${url.host} timed out`, { phase: 'connect', cause: error })
  }
  // `detail` is for the host's audit log only: the capsule sees `message`, which names no cause.
  if (!connected && isTlsError(e)) {
    return new CapsuleHostError('tls_failed', `the TLS handshake with ${url.host} failed`, {
      cause: error,
      detail: detailOf(e, TLS_CAUSES, 'TLS handshake failed'),
    })
  }
  if (!connected) {
    return new CapsuleHostError('connect_failed', `could not connect to ${url.host}`, {
      cause: error,
      detail: detailOf(e, SOCKET_CAUSES, 'connect failed'),
    })
  }
  return new CapsuleHostError('network', `the connection to ${url.host} failed during the exchange`, {
    cause: error,
    detail: detailOf(e, SOCKET_CAUSES, 'exchange failed'),
  })
}
