// The middleware contract: what a middleware sees of the request, what next() returns, what it may answer.
import type { HttpRequest } from '../wire/schemas.js'
import type { RespondInit, SyntheticResponse } from './respond.js'

/** The request as middleware sees and changes it. Header names are lower-case. */
export interface MiddlewareRequest {
  readonly capsuleId: string
  /** `request` for `http_request` (a buffered body), `stream` for `http_stream_start` (a streamed one). */
  readonly kind: 'request' | 'stream'

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
  /**
   * Sets (or, with undefined, removes) a header. Host-only headers (host, connection, ...) are
   * refused. A value set for authorization, proxy-authorization or cookie is a secret of the
   * request: it never reaches the capsule (see `secret()` for any other value).
   */
  header(name: string, value: string | undefined): void
  readonly body: Uint8Array | undefined
  setBody(body: string | Uint8Array | undefined): void
}

/** An upstream response, as `next()` resolves it. */
export interface MiddlewareResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly rawHeaders: ReadonlyArray<readonly [string, string]>
  /**
   * The body bytes when `ctx.req.kind` is `request`. For a stream the body is not buffered: `body`
   * is undefined and `text()`/`json()` throw (the request then fails with `internal`, and the host
   * sees why); a middleware on a streamed route reads the status and headers only.
   */
  readonly body: Uint8Array | undefined
  text(): string
  /** The body parsed as JSON (throws on a stream or on a body that is not JSON). */
  json(): JsonValue
  /** The time from the start of the middleware chain to the response head, in ms. */
  readonly elapsedMs: number
}

export interface MiddlewareContext {
  readonly req: MiddlewareRequest
}

export type Next = () => Promise<MiddlewareResponse>

/** A JSON value a middleware may return after `next()`: the JSON body of that response. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue }

/**
 * What a middleware may return:
 * - before `next()`: `respond(...)`, `json(...)` or a plain `{ status, headers?, body? }` (a
 *   synthetic response; no network call);
 * - after `next()`: its response, a copy with fields replaced (`{ ...res, body: data }`), a
 *   `{ status, headers?, body? }`, `undefined` (the response unchanged), or any other JSON value,
 *   which becomes the JSON body of that response.
 * In every synthetic or rewritten response a `body` string is text, bytes are bytes, and any other
 * value is JSON (`bodyEncoding: "json"` to the capsule).
 */
export type MiddlewareResult =
  | MiddlewareResponse
  | (Partial<Omit<MiddlewareResponse, 'body'>> & { readonly body?: unknown })
  | SyntheticResponse
  | RespondInit
  | JsonValue
  | undefined

/** `(ctx, next) => result`: see MiddlewareResult for what it may return. */
export type Middleware = (ctx: MiddlewareContext, next: Next) => MiddlewareResult | Promise<MiddlewareResult>

/** One middleware or a list, at each level (global, origin rule, route). */
export type MiddlewareOption = Middleware | readonly Middleware[]
