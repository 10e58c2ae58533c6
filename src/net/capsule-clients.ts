// Owns one undici Agent and one concurrency limiter per capsule; nothing is shared between capsules.
import { rootCertificates } from 'node:tls'
import pLimit, { type LimitFunction } from 'p-limit'
import { Agent } from 'undici'
import { CapsuleHostError } from '../errors.js'

export interface CapsuleClient {
  readonly agent: Agent
  /** Bounds the capsule's buffered requests in flight; cleared (rejecting the queue) on release. */
  readonly limit: LimitFunction
  /** Aborted when the capsule is released: every request of the capsule listens to it. */
  readonly released: AbortSignal
}

export interface CapsuleClientOptions {
  /** Extra trusted CA certificates (PEM), added to Node's bundled roots. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>
  connectTimeoutMs: number
  /** Buffered requests in flight for a capsule (a manifest may lower the host's number). */
  maxConcurrentRequests: (capsuleId: string) => number
}

export class CapsuleClients {
  readonly #clients = new Map<string, CapsuleClient>()
  readonly #released = new Map<string, AbortController>()
  readonly #options: CapsuleClientOptions
  readonly #ca: Array<string | Buffer> | undefined

  constructor(options: CapsuleClientOptions) {
    this.#options = options
    const extra = options.ca === undefined ? [] : Array.isArray(options.ca) ? options.ca : [options.ca]
    this.#ca = extra.length === 0 ? undefined : [...rootCertificates, ...(extra as Array<string | Buffer>)]
  }

  /** The capsule's own client, created on first use. */
  for(capsuleId: string): CapsuleClient {
    let client = this.#clients.get(capsuleId)
    if (!client) {
      const released = new AbortController()
      this.#released.set(capsuleId, released)
      client = {
        released: released.signal,
        agent: new Agent({
          // Our own timers run every phase; this is the backstop for a connect attempt we gave up on.
          connect: { timeout: this.#options.connectTimeoutMs, ...(this.#ca ? { ca: this.#ca } : {}) },
          allowH2: false,
          headersTimeout: 0,
          bodyTimeout: 0,
        }),
        limit: pLimit({ concurrency: this.#options.maxConcurrentRequests(capsuleId), rejectOnClear: true }),
      }
      this.#clients.set(capsuleId, client)
    }
    return client
  }

  /** Aborts everything the capsule has in flight and closes its sockets. */
  async release(capsuleId: string): Promise<void> {
    const client = this.#clients.get(capsuleId)
    if (!client) return
    const cancelled = new CapsuleHostError('cancelled', 'the capsule was released')
    this.#clients.delete(capsuleId)
    this.#released.get(capsuleId)?.abort(cancelled)
    this.#released.delete(capsuleId)
    client.limit.clearQueue()
    await client.agent.destroy(cancelled)
  }

  async releaseAll(): Promise<void> {
    await Promise.all([...this.#clients.keys()].map((id) => this.release(id)))
  }
}
