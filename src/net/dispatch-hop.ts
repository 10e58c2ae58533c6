// Sends one HTTP exchange to a checked address through undici, with phase timeouts and a body cap.
import type { Dispatcher } from 'undici'
import { CapsuleHostError, isCapsuleHostError, type TimeoutPhase } from '../errors.js'
import type { NormalisedUrl } from '../url/normalise.js'
import type { ClassifiedAddress } from './classify.js'
import { rawHeaderPairs, type HeaderList } from './headers.js'

export interface Hop {
  readonly url: NormalisedUrl
  /** The address that was checked; the connection goes there and nowhere else. */
  readonly address: ClassifiedAddress
  readonly method: string
  readonly headers: HeaderList
  readonly body: Uint8Array | undefined
}

export interface HopLimits {
  /** The configured connect budget (for messages) and the time it runs out (resolution used part of it). */
  readonly connectTimeoutMs: number
  readonly connectDeadline: number
  readonly firstByteTimeoutMs: number
  readonly idleTimeoutMs: number
  /** Absolute time (performance.now()) by which the whole exchange must end; Infinity: none. */
  readonly deadline: number
  /** The total time the deadline stands for, for the error message. */
  readonly totalTimeoutMs: number
  readonly maxBodyBytes: number
}

/** Pulls the body; `null` at the end. Errors are CapsuleHostErrors. */
export interface BodyReader {
  /**
   * The next chunk as received; or, with `maxBytes`, everything already received up to that
   * many bytes in one piece (waiting only when nothing is buffered). Never empty.
   */
  read(maxBytes?: number): Promise<Uint8Array | null>
  /** Stops the exchange and releases its socket; idempotent. */
  cancel(): void
  /** Bytes received so far. */
  readonly bytesRead: number
}

/** Reads a body to its end into one buffer (the caller's cap was applied while it streamed in). */
export async function readAll(body: BodyReader): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for (let chunk = await body.read(); chunk !== null; chunk = await body.read()) chunks.push(chunk)
  return Buffer.concat(chunks)
}

export interface ResponseHead {
  readonly status: number
  readonly rawHeaders: HeaderList
  readonly body: BodyReader
}

/** Pause the socket when this much is buffered and nobody is reading. */
const HIGH_WATER_BYTES = 1024 * 1024

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
function transportError(error: unknown, connected: boolean, url: NormalisedUrl): CapsuleHostError {
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

/** The phases the transport times; `host` belongs to the host's own steps. */
type NetworkPhase = Exclude<TimeoutPhase, 'host'>

function timeoutError(phase: NetworkPhase, ms: number, url: NormalisedUrl): CapsuleHostError {
  const what = {
    connect: `connecting to ${url.host}`,
    first_byte: `waiting for the response from ${url.host}`,
    idle: `waiting for the next body chunk from ${url.host}`,
    total: `the request to ${url.host}`,
  }[phase]
  return new CapsuleHostError('timeout', `${what} took longer than ${Math.round(ms)} ms`, { phase })
}

/** The dispatch origin: the checked address, so the pool key and the socket are that address. */
function pinnedOrigin(hop: Hop): string {
  const address = hop.address.family === 6 ? `[${hop.address.address}]` : hop.address.address
  return `${hop.url.protocol}//${address}:${hop.url.port}`
}

/**
 * Dispatches `hop` on `dispatcher`, connecting only to `hop.address`; the Host header and the TLS
 * servername keep the name. Resolves with the response head once it arrives; the body is read
 * through the returned reader under the idle timeout, the deadline and the byte cap.
 */
export function dispatchHop(
  dispatcher: Dispatcher,
  hop: Hop,
  limits: HopLimits,
  signal: AbortSignal | undefined,
): Promise<ResponseHead> {
  return new Promise<ResponseHead>((resolveHead, rejectHead) => {
    let abortUpstream: ((reason: Error) => void) | undefined
    let resumeUpstream: (() => void) | undefined
    let connected = false
    let headSent = false
    let failure: CapsuleHostError | undefined
    let ended = false
    let paused = false
    let bytesRead = 0
    let bufferedBytes = 0
    const queue: Uint8Array[] = []
    let waiter: { resolve: (chunk: Uint8Array | null) => void; reject: (e: Error) => void } | undefined
    let phaseTimer: NodeJS.Timeout | undefined
    let deadlineTimer: NodeJS.Timeout | undefined

    /** Runs the timer of one phase; `wait` defaults to the phase's whole budget `ms`. */
    const startPhase = (phase: NetworkPhase, ms: number, wait = ms) => {
      clearTimeout(phaseTimer)
      phaseTimer = Number.isFinite(ms) ? setTimeout(() => fail(timeoutError(phase, ms, hop.url)), Math.max(0, wait)) : undefined
    }
    const cleanup = () => {
      clearTimeout(phaseTimer)
      clearTimeout(deadlineTimer)
      signal?.removeEventListener('abort', onAbort)
    }
    const fail = (error: CapsuleHostError) => {
      if (failure || ended) return
      failure = error
      cleanup()
      queue.length = 0
      // Before onConnect there is nothing to abort yet; onConnect aborts at once (see below).
      abortUpstream?.(error)
      if (!headSent) rejectHead(error)
      waiter?.reject(error)
      waiter = undefined
    }
    /** Takes one queued chunk, or (with a finite limit) as many as fit in `maxBytes`, splitting the last. */
    const takeQueued = (maxBytes: number): Uint8Array => {
      const parts: Uint8Array[] = []
      let size = 0
      do {
        const chunk = queue[0]!
        const room = Number.isFinite(maxBytes) ? maxBytes - size : chunk.byteLength
        if (chunk.byteLength <= room) {
          parts.push(chunk)
          queue.shift()
        } else {
          parts.push(chunk.subarray(0, room))
          queue[0] = chunk.subarray(room)
        }
        size += parts[parts.length - 1]!.byteLength
      } while (Number.isFinite(maxBytes) && size < maxBytes && queue.length > 0)
      bufferedBytes -= size
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)
    }
    const onAbort = () => fail(new CapsuleHostError('cancelled', 'the request was cancelled', { cause: signal?.reason }))

    const reader: BodyReader = {
      get bytesRead() {
        return bytesRead
      },
      read(maxBytes = Number.POSITIVE_INFINITY) {
        if (failure) return Promise.reject(failure)
        if (queue.length > 0) {
          const taken = takeQueued(maxBytes)
          if (paused && bufferedBytes < HIGH_WATER_BYTES) {
            paused = false
            resumeUpstream?.()
          }
          return Promise.resolve(taken)
        }
        if (ended) return Promise.resolve(null)
        return new Promise<Uint8Array | null>((resolve, reject) => {
          waiter = { resolve, reject }
          startPhase('idle', limits.idleTimeoutMs)
        }).then((chunk) => {
          if (chunk === null || chunk.byteLength <= maxBytes) return chunk
          queue.unshift(chunk.subarray(maxBytes))
          bufferedBytes += chunk.byteLength - maxBytes
          return chunk.subarray(0, maxBytes)
        })
      },
      cancel() {
        if (!ended) fail(new CapsuleHostError('cancelled', 'the response body was not read to the end'))
      },
    }

    const handler: Dispatcher.DispatchHandler = {
      onConnect(abort) {
        abortUpstream = abort
        if (failure) return abort(failure)
        connected = true
        startPhase('first_byte', limits.firstByteTimeoutMs)
      },
      onHeaders(statusCode, rawHeaders, resume) {
        if (failure) return false
        clearTimeout(phaseTimer)
        resumeUpstream = resume
        const headers = rawHeaderPairs(rawHeaders as Buffer[])
        // HEAD, 204 and 304 carry a content-length but no body (RFC 9110 §8.6).
        const hasBody = hop.method !== 'HEAD' && statusCode !== 204 && statusCode !== 304
        const declared = headers.find(([name]) => name === 'content-length')?.[1]
        if (hasBody && declared !== undefined && Number(declared) > limits.maxBodyBytes) {
          fail(new CapsuleHostError('too_large', `the response declares ${declared} bytes; the limit is ${limits.maxBodyBytes}`))
          return false
        }
        headSent = true
        resolveHead({ status: statusCode, rawHeaders: headers, body: reader })
        return true
      },
      onData(chunk) {
        if (failure) return false
        // An empty chunk would read as the end of the stream on the wire; there is nothing to pass on.
        if (chunk.byteLength === 0) return true
        bytesRead += chunk.byteLength
        if (bytesRead > limits.maxBodyBytes) {
          fail(new CapsuleHostError('too_large', `the response body exceeds the limit of ${limits.maxBodyBytes} bytes`))
          return false
        }
        if (waiter) {
          clearTimeout(phaseTimer)
          waiter.resolve(chunk)
          waiter = undefined
          return true
        }
        queue.push(chunk)
        bufferedBytes += chunk.byteLength
        paused = bufferedBytes >= HIGH_WATER_BYTES
        return !paused
      },
      onComplete() {
        if (failure) return
        ended = true
        cleanup()
        waiter?.resolve(null)
        waiter = undefined
      },
      onError(error) {
        fail(transportError(error, connected, hop.url))
      },
    }

    if (signal?.aborted) return onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    const remaining = limits.deadline - performance.now()
    if (Number.isFinite(remaining)) {
      deadlineTimer = setTimeout(() => fail(timeoutError('total', limits.totalTimeoutMs, hop.url)), Math.max(0, remaining))
    }
    startPhase('connect', limits.connectTimeoutMs, limits.connectDeadline - performance.now())

    const headers: string[] = ['host', hop.url.host, 'accept-encoding', 'identity']
    for (const [name, value] of hop.headers) headers.push(name, value)
    try {
      dispatcher.dispatch(
        {
          origin: pinnedOrigin(hop),
          path: hop.url.path,
          method: hop.method as Dispatcher.HttpMethod,
          headers,
          body: hop.body === undefined ? null : hop.body,
          // SNI and certificate checks use the name, never the pinned address.
          servername: hop.url.ipLiteral === undefined ? hop.url.hostname : undefined,
          headersTimeout: 0,
          bodyTimeout: 0,
        } as Dispatcher.DispatchOptions,
        handler,
      )
    } catch (error) {
      fail(transportError(error, false, hop.url))
    }
  })
}
