// The middleware contract: what a middleware sees of the request, what next() returns, what it may answer.
import type { HttpRequest } from '../wire/schemas.js'

/** The request as middleware sees and changes it. Header names are lower-case. */
export interface MiddlewareRequest {
  readonly capsuleId: string
  /** 0 for the capsule's request, 1.. for each redirect hop followed. */
  readonly hop: number
  /** The capsule's request as it sent it (validated), frozen. */
  readonly raw: Readonly<HttpRequest>
  /** The matched route's parameters, percent-decoded (empty without routes). */
  readonly params: Readonly<Record<string, string>>
  readonly method: string
  /** The URL that will be sent (normalised). */
  readonly url: string
  /** Sends the request elsewhere: normalised, then judged by the gates and the address policy again. */
  setUrl(url: string): void
  /** Mutable; set a header with `header()` or by assignment. Repeated headers are joined with ", ". */
  readonly headers: Record<string, string>
  /** Sets (or, with undefined, removes) a header. Host-only headers (host, connection, ...) are refused. */
  header(name: string, value: string | undefined): void
  readonly body: Uint8Array | undefined
  setBody(body: string | Uint8Array | undefined): void
}

/** An upstream response, as `next()` resolves it. */
export interface MiddlewareResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly rawHeaders: ReadonlyArray<readonly [string, string]>
  /** The body bytes (buffered requests). For a stream the body is not buffered: reading it throws. */
  readonly body: Uint8Array
  text(): string
  json(): unknown
  /** The time from the start of the middleware chain to the response head, in ms. */
  readonly elapsedMs: number
}

export interface MiddlewareContext {
  readonly req: MiddlewareRequest
}

export type Next = () => Promise<MiddlewareResponse>

/**
 * `(ctx, next) => result`. Return the response `next()` gave, a `respond(...)` (no network call
 * when `next` is never called), `undefined` after calling `next()` (the upstream response
 * unchanged), or any other value, which becomes the JSON body of the upstream response.
 */
export type Middleware = (ctx: MiddlewareContext, next: Next) => unknown

/** One middleware or a list, at each level (global, origin rule, route). */
export type MiddlewareOption = Middleware | readonly Middleware[]
