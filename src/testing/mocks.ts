// The mock description (scripted upstreams): its types, its zod schema, and errors that name the bad field's path.
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { z } from 'zod'
import { closestName, describeValue } from '../options.js'
import { MAX_TIMER_MS } from '../timers.js'

/** One piece of a streamed body: written, flushed, and waited for before the next. */
export interface MockChunk {
  /** The piece as text (sent as UTF-8). Give this or `dataBase64`. Default: none. */
  readonly data?: string
  /** The piece as base64 bytes. Give this or `data`. Default: none. */
  readonly dataBase64?: string
  /** Milliseconds to wait before writing this piece. Default 0. */
  readonly delayMs?: number
}

/** How a route breaks the connection instead of answering in full. */
export type MockReset = 'before-headers' | 'mid-body'

/** One scripted answer. Routes are tried in order; the first that matches (and has answers left) answers. */
export interface MockRoute {
  /** The method to match, case-insensitive, or `"*"` for any. Default `"GET"`. */
  readonly method?: string
  /**
   * The path to match: exact (`"/items"`), or a prefix (`"/items/*"`: every path that starts with
   * `/items/`; `"/*"`: every path). The query is ignored unless the pattern has one (`"/search?q=a"`
   * then matches that exact path and query).
   */
  readonly path: string
  /** The status code, 200 to 599. Default 200. */
  readonly status?: number
  /** Response headers; a list repeats the header (`set-cookie`). Default none (`json` adds `content-type: application/json`). */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>
  /** The body as text (UTF-8). Give at most one of `body`, `json`, `bodyBase64` and `chunks`. Default: none (an empty body). */
  readonly body?: string
  /** The body as JSON (any JSON value, `null` too), with `content-type: application/json` unless `headers` set one. Default: none. */
  readonly json?: unknown
  /** The body as base64 bytes. Default: none. */
  readonly bodyBase64?: string
  /** A streamed body (chunked, no content-length): each piece after its own delay. Default: none. */
  readonly chunks?: readonly MockChunk[]
  /** Milliseconds to wait, after the request was read, before the status line. Default 0. */
  readonly delayMs?: number
  /**
   * Breaks the connection: `before-headers` closes it with no answer (after `delayMs`);
   * `mid-body` sends the status, headers and the first half of the body (or every chunk) and
   * then closes it, so the body never completes. Default: none (a full answer).
   */
  readonly reset?: MockReset
  /** Answer this many requests, then let the next matching route answer. Default: none (every request). */
  readonly times?: number
}

/** One scripted upstream: a loopback server for one host name. */
export interface MockUpstream {
  /** Serve HTTPS with a certificate from a CA made at start (the kit trusts it). Default false. */
  readonly tls?: boolean
  /** The answers, tried in order. A request no route matches gets 404 with a JSON body naming it. */
  readonly routes: readonly MockRoute[]
}

/** The whole description: upstreams by host name (`api.test`), each resolved to its own loopback server. */
export interface MockDescription {
  /** Host name to upstream. Names are lower-case DNS names, not IP addresses. */
  readonly upstreams: Readonly<Record<string, MockUpstream>>
}

/** `is required`, or `must be <what>, not <what was given>`: zod's messages for the description. */
const must = (what: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}, not ${shown(issue.input)}`),
})

function shown(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  return describeValue(value)
}

/** A value JSON.stringify writes as it is: no functions, undefined, non-finite numbers or cycles; plain objects only. */
function isJsonValue(value: unknown, seen: Set<object> = new Set()): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (typeof value !== 'object' || seen.has(value)) return false
  const proto = Object.getPrototypeOf(value)
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return false
  seen.add(value)
  const fine = Object.values(value).every((item) => isJsonValue(item, seen))
  seen.delete(value)
  return fine
}

const DelayMs = z.int(must(`a whole number of milliseconds from 0 to ${MAX_TIMER_MS}`)).min(0, must('at least 0')).max(MAX_TIMER_MS, must(`at most ${MAX_TIMER_MS}`))
const Base64 = z.base64(must('base64 (A-Z, a-z, 0-9, +, /, padded with =)'))
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Header values Node can write: Latin-1, no control characters but tab. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const HeaderValue = z.string(must('a string')).regex(HEADER_VALUE, must('a header value: Latin-1 text without control characters (no CR or LF)'))
/** Framing headers the server sets itself; a scripted one would contradict the body it sends. */
const FRAMING_HEADERS = ['content-length', 'transfer-encoding', 'connection']

const ChunkSchema = z
  .strictObject({ data: z.string(must('a string')).optional(), dataBase64: Base64.optional(), delayMs: DelayMs.optional() }, must('an object'))
  .check((ctx) => {
    const given = (['data', 'dataBase64'] as const).filter((key) => ctx.value[key] !== undefined)
    if (given.length !== 1) ctx.issues.push({ code: 'custom', input: ctx.value, message: given.length === 0 ? 'needs "data" or "dataBase64"' : 'has both "data" and "dataBase64"; give one' })
  })

/** What a URL's path and query hold unencoded (RFC 3986 pchar, "/" and "?", and "%" of an escape). */
const URL_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/

const PathPattern = z
  .string(must('a string'))
  .regex(/^\//, must('a path that starts with "/", such as "/items" or "/items/*"'))
  .regex(URL_PATH, must(`a path of URL characters (letters, digits and -._~!$&'()*+,;=:@/?%); percent-encode the others ("/caf%C3%A9", "%20" for a space)`))
  .regex(/^[^*]*(\/\*)?$/, must('a path with "*" only at its end, after a "/" ("/items/*")'))

const HeadersSchema = z.record(
  z.string().regex(TOKEN, must('a header name')),
  z.union([HeaderValue, z.array(HeaderValue)], must('a string or a list of strings')),
  must('an object of header names to values'),
)

/** zod skips an own `__proto__` key (JSON.parse makes one); say so instead of dropping the header. */
function refuseProtoKey(value: unknown, ctx: { issues: z.core.$ZodRawIssue[] }): unknown {
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, '__proto__')) {
    ctx.issues.push({ code: 'custom', input: value, path: ['__proto__'], message: "cannot be a header name here (JavaScript reads it as the object's prototype)" })
  }
  return value
}

const BODY_FIELDS = ['body', 'json', 'bodyBase64', 'chunks'] as const

const RouteFields = z.strictObject(
  {
    method: z.string(must('a string')).regex(/^(\*|[!#$%&'+.^_`|~0-9A-Za-z-]+)$/, must('a method such as "GET", or "*"')).optional(),
    path: PathPattern,
    status: z.int(must('a whole number from 200 to 599')).min(200, must('from 200 to 599')).max(599, must('from 200 to 599')).optional(),
    headers: z.preprocess(refuseProtoKey, HeadersSchema).optional(),
    body: z.string(must('a string')).optional(),
    json: z.custom<unknown>(isJsonValue, { error: (issue) => `must be a JSON value (no functions, undefined, NaN, Infinity or cycles), not ${shown(issue.input)}` }).optional(),
    bodyBase64: Base64.optional(),
    chunks: z.array(ChunkSchema, must('a list of chunks')).optional(),
    delayMs: DelayMs.optional(),
    reset: z.enum(['before-headers', 'mid-body'], must('"before-headers" or "mid-body"')).optional(),
    times: z.int(must('a whole number of at least 1')).min(1, must('at least 1')).optional(),
  },
  must('an object'),
)

/** The problems that span fields: two bodies, a body on a status that has none, a mid-body reset with nothing to cut. */
function routeProblem(route: z.infer<typeof RouteFields>): { message: string; path?: string[] } | undefined {
  const bodies = BODY_FIELDS.filter((key) => route[key] !== undefined)
  if (bodies.length > 1) return { message: `has ${bodies.map((key) => `"${key}"`).join(' and ')}; give at most one of body, json, bodyBase64, chunks` }
  if (bodies.length > 0 && (route.status === 204 || route.status === 304)) return { message: `has a body, but a ${route.status} response has none` }
  if (route.reset === 'mid-body' && bodies.length === 0) return { message: 'resets mid-body but has no body to cut; give body, json, bodyBase64 or chunks' }
  const framing = Object.keys(route.headers ?? {}).find((name) => FRAMING_HEADERS.includes(name.toLowerCase()))
  if (framing !== undefined) return { message: 'is set by the server from the body; leave it out', path: ['headers', framing] }
  return undefined
}

const RouteSchema = RouteFields.check((ctx) => {
  const problem = routeProblem(ctx.value)
  if (problem) ctx.issues.push({ code: 'custom', input: ctx.value, message: problem.message, ...(problem.path ? { path: problem.path } : {}) })
})

const UpstreamSchema = z.strictObject(
  { tls: z.boolean(must('true or false')).optional(), routes: z.array(RouteSchema, must('a list of routes')) },
  must('an object'),
)

/** Lower-case DNS labels: letters, digits and inner hyphens, 1-63 characters each. */
const HOST_NAME = /^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/

/** Whether a URL keeps the name as its host: `127.1`, `2130706433` and `api.123` are read as IPv4 (or refused). */
function urlKeepsName(name: string): boolean {
  try {
    return new URL(`http://${name}/`).hostname === name
  } catch {
    return false
  }
}

function upstreamNameProblem(name: string): string | undefined {
  if (isIP(name.replace(/^\[|\]$/g, '')) !== 0) return 'is an IP address; name the upstream with a host name such as "api.test"'
  if (name.length > 253 || !HOST_NAME.test(name)) return 'is not a host name: write lower-case labels of letters, digits and hyphens, such as "api.test"'
  if (!urlKeepsName(name)) return 'is read by URLs as an IPv4 address (its last label is a number); name the upstream with a host name such as "api.test"'
  return undefined
}

const MockDescriptionSchema: z.ZodType<MockDescription> = z.strictObject(
  {
    upstreams: z.record(z.string(), UpstreamSchema, must('an object of host names to upstreams')).check((ctx) => {
      for (const name of Object.keys(ctx.value)) {
        const message = upstreamNameProblem(name)
        if (message) ctx.issues.push({ code: 'custom', input: name, path: [name], message })
      }
    }),
  },
  must('an object such as { "upstreams": { "api.test": { "routes": [...] } } }'),
)

const KNOWN_KEYS: Record<string, readonly string[]> = {
  description: ['upstreams'],
  upstream: Object.keys(UpstreamSchema.shape),
  route: Object.keys(RouteFields.shape),
  chunk: Object.keys(ChunkSchema.shape),
}

/** `upstreams["api.test"].routes[0].status`: the path as a reader would write it in JavaScript. */
function pathText(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => {
      if (typeof key === 'number') return `[${key}]`
      const text = String(key)
      if (/^[A-Za-z_$][\w$]*$/.test(text)) return i === 0 ? text : `.${text}`
      return `[${JSON.stringify(text)}]`
    })
    .join('')
}

/** Which object a path points at, by its depth (description > upstream > route > chunk). */
function objectKind(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'description'
  if (path.length === 2) return 'upstream'
  return path.at(-2) === 'chunks' ? 'chunk' : 'route'
}

function issueText(issue: z.core.$ZodIssue): string {
  const where = issue.path.length === 0 ? 'the description' : pathText(issue.path)
  if (issue.code === 'invalid_key') return `${where} is not a header name (letters, digits and !#$%&'*+.^_\`|~-)`
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!
    const near = closestName(key, KNOWN_KEYS[objectKind(issue.path)] ?? [])
    return `${where} has an unknown field "${key}"${near ? `; did you mean "${near}"?` : ''}`
  }
  return `${where} ${issue.message}`
}

/**
 * Validates a mock description. Throws a TypeError naming the first bad field's path:
 * `mock description: upstreams["api.test"].routes[0].status must be from 200 to 599, not 99`.
 * `source` names where it came from (a file path) in that message.
 */
export function parseMocks(value: unknown, source = 'mock description'): MockDescription {
  const result = MockDescriptionSchema.safeParse(value)
  if (result.success) return result.data
  // An unknown field first: a misspelt one also makes the field it meant look missing.
  const issues = result.error.issues
  throw new TypeError(`${source}: ${issueText(issues.find((issue) => issue.code === 'unrecognized_keys') ?? issues[0]!)}`)
}

/**
 * Reads a JSON file and validates it as a mock description (what `capsule-host run --mock` does).
 * Throws a TypeError that names the file: `mocks.json: not JSON: ...`, or the bad field's path.
 */
export async function loadMocks(path: string): Promise<MockDescription> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new TypeError(`${path}: cannot read the mock file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new TypeError(`${path}: not JSON: ${(error as Error).message}`, { cause: error })
  }
  return parseMocks(value, path)
}
