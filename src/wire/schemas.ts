// The wire protocol between capsule and host as zod schemas: the single source of its types.
import { z } from 'zod'
import { ERROR_CODES, TIMEOUT_PHASES, type WireError } from '../errors.js'
import { TimerMs } from '../timers.js'

/** RFC 9110 §5.6.2 token: the characters a method or header name may use. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Bounds on what one request may carry, so the host's work per request stays small and fixed. */
export const REQUEST_BOUNDS = Object.freeze({
  /** Header entries (object keys or array pairs). */
  headers: 256,
  /** Characters of header names and values together (servers take 8 to 32 KiB of headers in all). */
  headerChars: 32 * 1024,
  /** Characters of the URL (Node's own server takes 16 KiB for the request line and headers together). */
  urlChars: 16 * 1024,
  /** Characters of the method. */
  methodChars: 32,
  /** Characters of `options.integrity`. */
  integrityChars: 1024,
  /** Bytes of a checked request's head (everything but the body) as the worker sends it to the host. */
  headBytes: 256 * 1024,
})

/** A capsule's time option must fit a Node timer; more is refused (a smaller one only tightens). */
const TimeoutMs = TimerMs

export const RequestOptionsSchema = z.strictObject({
  timeoutMs: TimeoutMs.optional(),
  connectTimeoutMs: TimeoutMs.optional(),
  firstByteTimeoutMs: TimeoutMs.optional(),
  idleTimeoutMs: TimeoutMs.optional(),
  redirect: z.enum(['manual', 'follow', 'error']).optional(),
  maxRedirects: z.int().nonnegative().optional(),
  maxResponseBytes: z.int().nonnegative().optional(),
  integrity: z.string().min(1).max(REQUEST_BOUNDS.integrityChars, `at most ${REQUEST_BOUNDS.integrityChars} characters`).optional(),
})

/** Headers as a capsule may write them: an object, or `[name, value]` pairs (repeats kept, in order). */
const HeaderFormsSchema = z.union([z.record(z.string(), z.string()), z.array(z.tuple([z.string(), z.string()]))])
type HeaderForms = z.infer<typeof HeaderFormsSchema>

const headerEntries = (h: HeaderForms) => (Array.isArray(h) ? h : Object.entries(h))
const headerChars = (h: HeaderForms) => headerEntries(h).reduce((n, [k, v]) => n + k.length + v.length, 0)

export const HeadersSchema = HeaderFormsSchema
  .refine((h) => headerEntries(h).length <= REQUEST_BOUNDS.headers, `at most ${REQUEST_BOUNDS.headers} headers`)
  .refine(
    (h) => headerChars(h) <= REQUEST_BOUNDS.headerChars,
    `headers may hold at most ${REQUEST_BOUNDS.headerChars} characters of names and values in all`,
  )

export const HttpRequestSchema = z
  .strictObject({
    url: z.string().min(1).max(REQUEST_BOUNDS.urlChars, `at most ${REQUEST_BOUNDS.urlChars} characters`),
    method: z
      .string()
      .max(REQUEST_BOUNDS.methodChars, `at most ${REQUEST_BOUNDS.methodChars} characters`)
      .regex(TOKEN, 'must be an HTTP method token such as GET or POST')
      .transform((m) => m.toUpperCase())
      .optional(),
    headers: HeadersSchema.optional(),
    body: z.string().optional(),
    bodyBase64: z.base64().optional(),
    responseBody: z.enum(['text', 'base64']).optional(),
    responseHeaders: z.enum(['list', 'object', 'both']).optional(),
    options: RequestOptionsSchema.optional(),
  })
  .refine((r) => r.body === undefined || r.bodyBase64 === undefined, {
    message: 'give at most one of body and bodyBase64',
  })

export type RequestOptions = z.infer<typeof RequestOptionsSchema>
export type HttpRequest = z.infer<typeof HttpRequestSchema>
/** The request as a capsule writes it (before defaults and upper-casing). */
export type HttpRequestInput = z.input<typeof HttpRequestSchema>

/** One entry per lower-case name, repeated values joined with `", "`. */
export const ResponseHeadersSchema = z.record(z.string(), z.string())
/** Every header as received, in order, as `[name, value]` pairs. */
export const RawHeadersSchema = z.array(z.tuple([z.string(), z.string()]))

/** How a capsule's reply carries the response headers: `rawHeaders` (list, the default), `headers` (object), or both. */
export type HeaderForm = 'list' | 'object' | 'both'

const ReplyMetaSchema = z.strictObject({
  finalUrl: z.string(),
  redirects: z.int().nonnegative(),
  elapsedMs: z.number().nonnegative(),
})

/** A buffered response as the host's API returns it: both header forms. */
export const BufferedResponseSchema = z.strictObject({
  status: z.int(),
  headers: ResponseHeadersSchema,
  rawHeaders: RawHeadersSchema,
  body: z.unknown(),
  bodyEncoding: z.enum(['text', 'base64', 'json']),
  meta: ReplyMetaSchema,
})

/** A stream's head as the host's API returns it: both header forms. */
export const StreamStartSchema = z.strictObject({
  handle: z.string(),
  status: z.int(),
  headers: ResponseHeadersSchema,
  rawHeaders: RawHeadersSchema,
})

/**
 * http_request's reply on the wire: the header form the request's `responseHeaders` asked for
 * (`rawHeaders` by default), never both unless asked, so no field is carried twice.
 */
export const WireBufferedReplySchema = BufferedResponseSchema.extend({
  headers: ResponseHeadersSchema.optional(),
  rawHeaders: RawHeadersSchema.optional(),
})

/** http_stream_start's reply on the wire, with the header form asked for. */
export const WireStreamStartSchema = StreamStartSchema.extend({
  headers: ResponseHeadersSchema.optional(),
  rawHeaders: RawHeadersSchema.optional(),
})

export const ErrorCodeSchema = z.enum(ERROR_CODES)
export const TimeoutPhaseSchema = z.enum(TIMEOUT_PHASES)

/** The error object of a reply; `phase` is present on `timeout` errors only, `retryAfterMs` on `rate_limited` only. */
export const WireErrorSchema = z.strictObject({
  code: ErrorCodeSchema,
  message: z.string(),
  phase: TimeoutPhaseSchema.optional(),
  retryAfterMs: z.int().nonnegative().optional(),
})

export const ErrorReplySchema = z.strictObject({
  error: WireErrorSchema,
})

/**
 * The first byte of an `http_stream_next` reply block, which says what the rest of the block is:
 * `data` (1 to `capacity` bytes of the body follow), `end` (nothing follows: the body ended) or
 * `error` (an ErrorReply's JSON follows, UTF-8: the stream failed, or an argument was bad). After
 * `end`, or `error` for a failed read, the handle is freed; an `error` for a bad capacity leaves
 * the stream as it was. The same values are the SDK's STREAM_DATA, STREAM_END and STREAM_ERROR.
 */
export const STREAM_NEXT_TAG = Object.freeze({ data: 0, end: 1, error: 2 } as const)

export const StreamNextTagSchema = z.literal([STREAM_NEXT_TAG.data, STREAM_NEXT_TAG.end, STREAM_NEXT_TAG.error])

export type BufferedResponse = z.infer<typeof BufferedResponseSchema>
export type StreamStart = z.infer<typeof StreamStartSchema>

// `WireError` is declared by hand in errors.ts (which this module imports, so it cannot import the
// schema back). This check keeps the two the same type: change one and the typecheck fails here.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
type Holds<T extends true> = T
export type WireErrorMatchesSchema = Holds<Same<z.infer<typeof WireErrorSchema>, WireError>>

