// The committed protocol.schema.json is what the zod wire schemas generate, and real wire messages validate against it.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { z } from 'zod'
import { CapsuleHostError, ERROR_CODES, INTERNAL_WIRE_ERROR, TIMEOUT_PHASES } from '../src/errors.js'
import { CapsuleHttp } from '../src/runtime/capsule-http.js'
import { PROTOCOL_SCHEMA_FILE, PROTOCOL_SCHEMA_ID, protocolJsonSchemaText } from '../src/wire/json-schema.js'
import { HttpRequestSchema, REQUEST_BOUNDS, STREAM_NEXT_TAG } from '../src/wire/schemas.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

const committed = readFileSync(new URL(`../${PROTOCOL_SCHEMA_FILE}`, import.meta.url), 'utf8')
const doc = JSON.parse(committed) as {
  $schema: string
  $id: string
  title: string
  description: string
  $defs: Record<string, { enum?: unknown[]; not?: { required?: string[] } }>
}

test(`${PROTOCOL_SCHEMA_FILE} is what src/wire/schemas.ts generates`, () => {
  expect(committed, `${PROTOCOL_SCHEMA_FILE} is out of date with src/wire/schemas.ts: run \`npm run schema\` and commit it`).toBe(
    protocolJsonSchemaText(),
  )
})

describe('its structure', () => {
  test('a draft 2020-12 document with an id, a title, a description and every wire message', () => {
    expect(doc.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(doc.$id).toBe(PROTOCOL_SCHEMA_ID)
    expect(doc.title).toMatch(/wire protocol/)
    expect(doc.description).toMatch(/npm run schema/)
    expect(Object.keys(doc.$defs)).toEqual(
      expect.arrayContaining(['HttpRequest', 'RequestOptions', 'BufferedResponse', 'StreamStart', 'ErrorReply', 'WireError', 'ErrorCode', 'TimeoutPhase', 'StreamNextTag']),
    )
  })

  test('the error codes are ERROR_CODES and the phases TIMEOUT_PHASES, in order', () => {
    expect(doc.$defs.ErrorCode?.enum).toEqual([...ERROR_CODES])
    expect(doc.$defs.ErrorCode?.enum).toContain('internal')
    expect(doc.$defs.TimeoutPhase?.enum).toEqual([...TIMEOUT_PHASES])
  })

  test("http_stream_next's tag bytes are STREAM_NEXT_TAG (data, end, error), integers", () => {
    expect(doc.$defs.StreamNextTag).toMatchObject({ type: 'integer', enum: [STREAM_NEXT_TAG.data, STREAM_NEXT_TAG.end, STREAM_NEXT_TAG.error] })
    expect(STREAM_NEXT_TAG).toEqual({ data: 0, end: 1, error: 2 })
    const valid = validatorOf('StreamNextTag')
    expect([0, 1, 2, 3, -1, 0.5, '0'].map(valid)).toEqual([true, true, true, false, false, false, false])
  })

  test('every $ref points at a $defs entry of the document', () => {
    const refs = [...committed.matchAll(/"\$ref": "([^"]+)"/g)].map((m) => m[1]!)
    expect(refs.length).toBeGreaterThan(0)
    for (const ref of refs) expect(Object.keys(doc.$defs).map((name) => `#/$defs/${name}`)).toContain(ref)
  })
})

/**
 * A validator for one `$defs` entry of the committed file, through zod's (experimental)
 * z.fromJSONSchema. It has no `not`, so the request's one use of it, `not: { required }`, is
 * applied here by hand.
 */
function validatorOf(name: string): (value: unknown) => boolean {
  const copy = structuredClone(doc)
  const forbidden = copy.$defs[name]?.not?.required
  delete copy.$defs[name]?.not
  const schema = z.fromJSONSchema({ ...copy, $ref: `#/$defs/${name}` } as Parameters<typeof z.fromJSONSchema>[0])
  return (value) => {
    if (!schema.safeParse(value).success) return false
    const keys = value !== null && typeof value === 'object' ? Object.keys(value) : []
    return forbidden === undefined || !forbidden.every((key) => keys.includes(key))
  }
}

describe('requests: the JSON Schema agrees with the zod schema', () => {
  const valid = validatorOf('HttpRequest')
  const many = (n: number) => Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v'] as [string, string])
  test.each<[string, unknown]>([
    ['the smallest', { url: 'https://api.example.com/' }],
    [
      'every field (the docs example, text body)',
      {
        url: 'https://api.example.com/v1/users?page=2',
        method: 'get',
        headers: { accept: 'application/json' },
        body: 'text body',
        responseBody: 'text',
        options: { timeoutMs: 5000, connectTimeoutMs: 2000, firstByteTimeoutMs: 3000, idleTimeoutMs: 10000, redirect: 'manual', maxRedirects: 3, maxResponseBytes: 65536, integrity: 'sha256-abc' },
      },
    ],
    ['pairs and a base64 body, as the SDK writes them', { url: 'https://x.test/', method: 'POST', headers: [['a', '1'], ['a', '2']], bodyBase64: 'AAEC', responseBody: 'base64' }],
    [`${REQUEST_BOUNDS.headers} header pairs`, { url: 'https://x.test/', headers: many(REQUEST_BOUNDS.headers) }],
    ['both body and bodyBase64', { url: 'https://x.test/', body: 'a', bodyBase64: 'AA==' }],
    ['an unknown field', { url: 'https://x.test/', verb: 'GET' }],
    ['an unknown option', { url: 'https://x.test/', options: { retries: 3 } }],
    ['no url', { method: 'GET' }],
    ['an empty url', { url: '' }],
    ['a method that is not a token', { url: 'https://x.test/', method: 'GE T' }],
    ['a method too long', { url: 'https://x.test/', method: 'G'.repeat(REQUEST_BOUNDS.methodChars + 1) }],
    [`${REQUEST_BOUNDS.headers + 1} header pairs`, { url: 'https://x.test/', headers: many(REQUEST_BOUNDS.headers + 1) }],
    [`${REQUEST_BOUNDS.headers + 1} header names`, { url: 'https://x.test/', headers: Object.fromEntries(many(REQUEST_BOUNDS.headers + 1)) }],
    ['a header triple', { url: 'https://x.test/', headers: [['a', 'b', 'c']] }],
    ['bodyBase64 that is not base64', { url: 'https://x.test/', bodyBase64: 'not base64!' }],
    ['a timeout of 0', { url: 'https://x.test/', options: { timeoutMs: 0 } }],
    ['a timeout past a Node timer', { url: 'https://x.test/', options: { timeoutMs: 2 ** 31 } }],
    ['a fractional cap', { url: 'https://x.test/', options: { maxResponseBytes: 1.5 } }],
    ['an unknown redirect mode', { url: 'https://x.test/', options: { redirect: 'sometimes' } }],
    ['an unknown response body', { url: 'https://x.test/', responseBody: 'json' }],
  ])('%s', (_name, request) => {
    expect(valid(request)).toBe(HttpRequestSchema.safeParse(request).success)
  })
})

describe('replies from the host functions validate', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer((req, res) => {
      if (req.url === '/bytes') {
        res.setHeader('content-type', 'application/octet-stream')
        res.end(Buffer.from([0, 1, 2, 255]))
        return
      }
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.end('hello')
    })
  })
  afterAll(async () => {
    await closeAllFetches()
    await closeAllServers()
  })

  const rules = () => ({ host: 'api.test', httpsOnly: false, port: server.port })
  const http = (options: Parameters<typeof testFetch>[0] = {}) =>
    new CapsuleHttp(testFetch({ rules: rules(), limits: { maxOpenStreams: 1 }, ...options }).registerCapsule('schema-test'))
  const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
  const reply = (out: Uint8Array) => JSON.parse(new TextDecoder().decode(out)) as Record<string, unknown>
  const url = (path: string) => `http://api.test:${server.port}${path}`

  test('buffered: text, base64 and a middleware\'s JSON value', async () => {
    const valid = validatorOf('BufferedResponse')
    const text = reply(await http().request(bytes({ url: url('/text') })))
    const base64 = reply(await http().request(bytes({ url: url('/bytes'), responseBody: 'base64' })))
    const rewrite = async (_c: unknown, next: () => Promise<unknown>) => {
      await next()
      return { made: ['up'] }
    }
    const json = reply(await http({ middleware: rewrite }).request(bytes({ url: url('/json') })))
    expect([text.bodyEncoding, base64.bodyEncoding, json.bodyEncoding]).toEqual(['text', 'base64', 'json'])
    for (const r of [text, base64, json]) expect(valid(r), JSON.stringify(r)).toBe(true)
    expect(valid({ ...text, extra: 1 })).toBe(false)
  })

  test.each([
    ['default', undefined, ['rawHeaders']],
    ['list', 'list', ['rawHeaders']],
    ['object', 'object', ['headers']],
    ['both', 'both', ['headers', 'rawHeaders']],
  ] as const)('responseHeaders %s: the reply carries exactly that header form, and validates', async (_name, form, fields) => {
    const host = http()
    const ask = { url: url('/text'), ...(form ? { responseHeaders: form } : {}) }
    const buffered = reply(await host.request(bytes(ask)))
    const start = reply(await host.streamStart(bytes(ask)))
    for (const [r, schema] of [[buffered, 'BufferedResponse'], [start, 'StreamStart']] as const) {
      expect(['headers', 'rawHeaders'].filter((f) => f in r), JSON.stringify(r)).toEqual(fields)
      expect(validatorOf(schema)(r), JSON.stringify(r)).toBe(true)
    }
    host.closeAll()
  })

  test('responseHeaders other than list, object or both is invalid_request', async () => {
    const bad = reply(await http().request(bytes({ url: url('/text'), responseHeaders: 'raw' })))
    expect(bad).toMatchObject({ error: { code: 'invalid_request' } })
  })

  test('stream start', async () => {
    const host = http()
    const start = reply(await host.streamStart(bytes({ url: url('/text') })))
    expect(start.handle).toBe('1')
    expect(validatorOf('StreamStart')(start), JSON.stringify(start)).toBe(true)
    const refused = reply(await host.streamStart(bytes({ url: url('/text') })))
    expect(refused).toMatchObject({ error: { code: 'stream_limit' } })
    expect(validatorOf('ErrorReply')(refused)).toBe(true)
    host.closeAll()
  })

  test('errors: refused, invalid, internal and a timeout with its phase', async () => {
    const valid = validatorOf('ErrorReply')
    const denied = reply(await http().request(bytes({ url: 'http://elsewhere.test/' })))
    const invalid = reply(await http().request(bytes({ url: url('/'), verb: 'GET' })))
    expect([denied, invalid].map((r) => (r.error as { code: string }).code)).toEqual(['denied', 'invalid_request'])
    const timeout = { error: new CapsuleHostError('timeout', 'no first byte within 3000 ms', { phase: 'first_byte' }).toWire() }
    for (const r of [denied, invalid, { error: INTERNAL_WIRE_ERROR }, timeout]) expect(valid(r), JSON.stringify(r)).toBe(true)
    expect(valid({ error: { code: 'rate_limited_someday', message: 'x' } })).toBe(false)
    expect(valid({ error: { code: 'timeout', message: 'x', phase: 'later' } })).toBe(false)
    expect(valid({ error: { code: 'denied' } })).toBe(false)
  })
})
