// The shapes the transport takes and gives: one hop, its limits, the response head and its body reader.
import type { NormalisedUrl } from '../../url/normalise.js'
import type { ClassifiedAddress } from '../classify.js'
import type { HeaderList } from '../headers.js'

export interface Hop {
  readonly url: NormalisedUrl
  /** The URL the capsule's messages name: its own (`url` may be one host middleware set). Default: `url`. */
  readonly shown?: NormalisedUrl
  /** The address that was checked; the connection goes there and nowhere else. */
  readonly address: ClassifiedAddress
  readonly method: string
  readonly headers: HeaderList
  readonly body: Uint8Array | undefined
}

/** A hop's own limits. The request's total deadline is not among them: its control aborts the dispatch signal when it passes. */
export interface HopLimits {
  /** The configured connect budget (for messages) and the time it runs out (resolution used part of it). */
  readonly connectTimeoutMs: number
  readonly connectDeadline: number
  /** From the connection to the final (non-1xx) response head; interim responses do not restart it. */
  readonly firstByteTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly maxBodyBytes: number
}

/** Pulls the body; `null` at the end. Errors are CapsuleHostErrors. */
export interface BodyReader {
  /**
   * The next chunk as received; or, with `maxBytes`, everything already received up to that
   * many bytes in one piece (waiting only when nothing is buffered). Never empty. The size also
   * says how much to receive ahead for the next read: a network reader queues about that much
   * (capped; two chunks when no size is given) and then stops reading the socket.
   */
  read(maxBytes?: number): Promise<Uint8Array | null>
  /** Stops the exchange and releases its socket; idempotent. */
  cancel(): void
  /** Bytes received so far. */
  readonly bytesRead: number
  /**
   * Bytes received and not handed out yet: a read now resolves without waiting for the network
   * when this is above 0. A network reader keeps it near one read's worth (see `read`).
   */
  readonly buffered: number
}

/** The final response of a hop (never an interim 1xx one). */
export interface ResponseHead {
  readonly status: number
  readonly rawHeaders: HeaderList
  readonly body: BodyReader
}
