// Turns the zod wire schemas into protocol.schema.json (JSON Schema 2020-12), the contract for capsule authors.
import { z } from 'zod'
import {
  ErrorCodeSchema,
  ErrorReplySchema,
  HeadersSchema,
  HttpRequestSchema,
  RawHeadersSchema,
  REQUEST_BOUNDS,
  RequestOptionsSchema,
  ResponseHeadersSchema,
  StreamNextTagSchema,
  TimeoutPhaseSchema,
  WireBufferedReplySchema,
  WireErrorSchema,
  WireStreamStartSchema,
} from './schemas.js'

/** The `$id` of the document; refs inside it are `#/$defs/<name>`. */
export const PROTOCOL_SCHEMA_ID = 'urn:capsule-host:protocol.schema.json'

/** The file the script writes, relative to the package root. */
export const PROTOCOL_SCHEMA_FILE = 'protocol.schema.json'

interface DefMeta {
  readonly id: string
  readonly description: string
}

/** Each `$defs` entry: its schema and what it is. The order here does not matter; keys are sorted. */
const DEFS: ReadonlyArray<readonly [z.ZodType, DefMeta]> = [
  [HttpRequestSchema, { id: 'HttpRequest', description: 'The request a capsule passes to http_request and http_stream_start, as it writes it. Unknown fields are refused.' }],
  [RequestOptionsSchema, { id: 'RequestOptions', description: 'Limits that may only tighten what the host allows; larger values are clamped to the host\'s ceiling.' }],
  [
    HeadersSchema,
    {
      id: 'Headers',
      description: `Request headers: an object, or [name, value] pairs (repeats kept, in order). At most ${REQUEST_BOUNDS.headers} entries and ${REQUEST_BOUNDS.headerChars} characters of names and values in all.`,
    },
  ],
  [WireBufferedReplySchema, { id: 'BufferedResponse', description: 'The reply of http_request when the exchange succeeded (any HTTP status).' }],
  [
    WireStreamStartSchema,
    { id: 'StreamStart', description: 'The reply of http_stream_start when the stream opened; read the body with http_stream_next(handle, capacity) (errors as values) or http_stream_read(handle) (errors trap).' },
  ],
  [ResponseHeadersSchema, { id: 'ResponseHeaders', description: 'One entry per lower-case header name, repeated values joined with ", ".' }],
  [RawHeadersSchema, { id: 'RawHeaders', description: 'Every response header as received, in order, as [name, value] pairs.' }],
  [
    ErrorReplySchema,
    {
      id: 'ErrorReply',
      description: 'The reply of http_request or http_stream_start when the request failed (never a trap); also what follows the error tag (2) of an http_stream_next reply, when reading the stream failed.',
    },
  ],
  [
    StreamNextTagSchema,
    {
      id: 'StreamNextTag',
      description:
        'The first byte of the block http_stream_next(handle, capacity) returns: 0 = the next 1 to capacity bytes of the body follow; ' +
        '1 = the body ended (nothing follows); 2 = the stream failed, and an ErrorReply follows as UTF-8 JSON. After 1, or 2 for a failed read, the handle is freed; a 2 for a bad capacity leaves the stream as it was.',
    },
  ],
  [WireErrorSchema, { id: 'WireError', description: 'What went wrong, without host-side detail. `phase` is present on `timeout` errors only.' }],
  [ErrorCodeSchema, { id: 'ErrorCode', description: 'The closed set of error codes (docs/errors.md).' }],
  [TimeoutPhaseSchema, { id: 'TimeoutPhase', description: 'Which wait ran out, for `timeout` errors; `host` is a gate, the policy or middleware on the host.' }],
]

/** Field descriptions where the name alone does not say it. */
const FIELDS: ReadonlyArray<readonly [z.ZodType, string]> = [
  [HttpRequestSchema.shape.url, `http: or https: only; at most ${REQUEST_BOUNDS.urlChars} characters.`],
  [HttpRequestSchema.shape.method, 'Default GET. Any HTTP token, case-insensitive (sent upper-case).'],
  [HttpRequestSchema.shape.body, 'A UTF-8 text body. At most one of body and bodyBase64.'],
  [HttpRequestSchema.shape.bodyBase64, 'A binary body, base64. At most one of body and bodyBase64.'],
  [HttpRequestSchema.shape.responseBody, 'How the reply carries the body: text (default; a body that is not UTF-8 is an error) or base64.'],
  [HttpRequestSchema.shape.responseHeaders, 'How the reply carries the response headers: list (default: rawHeaders), object (headers) or both.'],
  [RequestOptionsSchema.shape.redirect, 'manual (default: the 3xx comes back), follow (every hop re-checked) or error.'],
  [RequestOptionsSchema.shape.integrity, 'A Subresource-Integrity string, checked on buffered bodies only.'],
  [WireBufferedReplySchema.shape.body, 'A string (bodyEncoding text or base64), or the JSON value a host middleware answered with (bodyEncoding json).'],
  [WireStreamStartSchema.shape.handle, 'A decimal string of a positive integer, never reused within a capsule.'],
]

/** Checks zod cannot put into JSON Schema (they are refinements), written out by hand. */
function addRefinements({ zodSchema, jsonSchema }: { zodSchema: unknown; jsonSchema: z.core.JSONSchema.BaseSchema }): void {
  if (zodSchema === HttpRequestSchema) jsonSchema.not = { required: ['body', 'bodyBase64'] }
  // A byte: zod says number for numeric literals; integer is what generated types should use.
  if (zodSchema === StreamNextTagSchema) jsonSchema.type = 'integer'
  if (zodSchema === HeadersSchema) {
    const [object, pairs] = jsonSchema.anyOf ?? []
    if (object?.type !== 'object' || pairs?.type !== 'array') throw new Error('protocol schema: Headers is no longer an object or pairs')
    object.maxProperties = REQUEST_BOUNDS.headers
    pairs.maxItems = REQUEST_BOUNDS.headers
  }
}

/** Object keys sorted at every depth (array order is kept: it means something in `enum`, `required`). */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object') return value
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]))
}

/** The protocol's JSON Schema document, every wire message under `$defs`. */
export function protocolJsonSchema(): Record<string, unknown> {
  const registry = z.registry<{ id?: string; description?: string }>()
  for (const [schema, meta] of DEFS) registry.add(schema, meta)
  for (const [schema, description] of FIELDS) registry.add(schema, { description })
  const { schemas } = z.toJSONSchema(registry, {
    metadata: registry,
    target: 'draft-2020-12',
    // The form a capsule writes (before the method is upper-cased); the replies have no transforms.
    io: 'input',
    // A wire type JSON Schema cannot express must fail the build, not quietly become `{}`.
    unrepresentable: 'throw',
    uri: (id) => `#/$defs/${id}`,
    override: addRefinements,
  })
  if ('__shared' in schemas) throw new Error('protocol schema: a shared $defs entry appeared; give the schema an id in DEFS')
  const defs = Object.fromEntries(
    Object.entries(schemas).map(([id, { $schema: _schema, $id: _id, ...body }]) => [id, body]),
  )
  return sortKeys({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: PROTOCOL_SCHEMA_ID,
    title: 'capsule-host wire protocol',
    description:
      'The JSON a capsule exchanges with capsule-host through the host functions http_request and http_stream_start: ' +
      'the request (#/$defs/HttpRequest) and the replies (#/$defs/BufferedResponse, #/$defs/StreamStart, #/$defs/ErrorReply); ' +
      'and the tag byte that starts each http_stream_next reply (#/$defs/StreamNextTag), whose error form carries an ErrorReply. ' +
      'Generated from src/wire/schemas.ts by `npm run schema`; do not edit by hand. ' +
      'Some checks are the host\'s alone (URL normalisation, header values, the request size), see docs/protocol.md.',
    $defs: defs,
  }) as Record<string, unknown>
}

/** The document as the committed file holds it: two-space JSON with a trailing newline. */
export function protocolJsonSchemaText(): string {
  return `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`
}
