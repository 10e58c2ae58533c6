// The Extism kernel HTTP translation without a plugin: request JSON to a checked request, headers to Extism's object, the channel encoding.
import { describe, expect, test } from 'vitest'
import { createSafeFetch } from '../src/index.js'
import { decodeKernelReply, encodeKernelReply, extismHeaders, kernelRequest } from '../src/runtime/kernel-http.js'
import { parseRequest } from '../src/wire/parse.js'

const bytes = (text: string) => new TextEncoder().encode(text)
const json = (value: unknown) => bytes(JSON.stringify(value))
const MAX = 1024

describe('kernelRequest: Extism request JSON and body block -> checked capsule-host request', () => {
  // Each row: the request block, the body block (undefined: offset 0), and what the host then parses.
  test.each<[string, Uint8Array, Uint8Array | undefined, Record<string, unknown>, string | undefined]>([
    ['url only: method GET by default', json({ url: 'http://a.test/x' }), undefined, { url: 'http://a.test/x' }, undefined],
    ['method lower-case is upper-cased', json({ url: 'http://a.test/', method: 'post' }), undefined, { method: 'POST' }, undefined],
    ['method null (absent)', json({ url: 'http://a.test/', method: null }), undefined, { url: 'http://a.test/' }, undefined],
    ['headers object', json({ url: 'http://a.test/', headers: { accept: 'a/b' } }), undefined, { headers: { accept: 'a/b' } }, undefined],
    ['headers null (the Go PDK\'s empty map)', json({ url: 'http://a.test/', headers: null }), undefined, { url: 'http://a.test/' }, undefined],
    ['header: the JS SDK\'s alias', json({ url: 'http://a.test/', header: { accept: 'x' } }), undefined, { headers: { accept: 'x' } }, undefined],
    ['a body block is sent as its bytes', json({ url: 'http://a.test/', method: 'PUT' }), bytes('héllo'), { method: 'PUT' }, 'héllo'],
    ['an empty body block is an empty body', json({ url: 'http://a.test/', method: 'PUT' }), new Uint8Array(0), { method: 'PUT' }, ''],
  ])('%s', (_name, request, body, expected, bodyText) => {
    const parsed = parseRequest(kernelRequest(request, body, MAX), MAX)
    expect(parsed).toMatchObject(expected)
    if (!('method' in expected)) expect(parsed.method).toBeUndefined()
    if (bodyText === undefined) expect(parsed.bodyBase64).toBeUndefined()
    else expect(Buffer.from(parsed.bodyBase64!, 'base64').toString()).toBe(bodyText)
  })

  const url = 'http://a.test/'
  test.each<[string, Uint8Array, Uint8Array | undefined, RegExp]>([
    ['not UTF-8', Uint8Array.of(0x7b, 0xff, 0x7d), undefined, /not valid UTF-8 JSON/],
    ['not JSON', bytes('{"url":'), undefined, /not valid UTF-8 JSON/],
    ['an array', json([url]), undefined, /must be a JSON object/],
    ['null', bytes('null'), undefined, /must be a JSON object/],
    ['no url', json({ method: 'GET' }), undefined, /needs a "url" string/],
    ['url not a string', json({ url: 5 }), undefined, /needs a "url" string/],
    ['an unknown field', json({ url, options: { redirect: 'follow' } }), undefined, /unknown field "options"/],
    ['a body field (the capsule-host ABI\'s)', json({ url, body: 'x' }), undefined, /unknown field "body"/],
    ['headers and header both', json({ url, headers: {}, header: {} }), undefined, /headers or header, not both/],
    ['a header value that is not a string', json({ url, headers: { a: 1 } }), undefined, /invalid request/],
    ['a method that is not a token', json({ url, method: 'GE T' }), undefined, /HTTP method token/],
    ['a request block over the limit', bytes(`{"url":"${'a'.repeat(MAX)}"}`), undefined, /the limit is 1024/],
    ['a body block over the limit on its own', json({ url }), new Uint8Array(MAX + 1), /the request is 1025 bytes; the limit is 1024/],
  ])('refused: %s -> invalid_request', (_name, request, body, message) => {
    expect(() => kernelRequest(request, body, MAX)).toThrow(expect.objectContaining({ code: 'invalid_request', message: expect.stringMatching(message) }))
  })

  test('boundary: head and body together exactly at the limit pass; one byte more is refused', () => {
    // The frame's size past its 5-byte header is what counts: head JSON plus body bytes.
    const head = json({ url, method: 'PUT' })
    const headBytes = head.byteLength
    expect(() => kernelRequest(head, new Uint8Array(MAX - headBytes), MAX)).not.toThrow()
    expect(() => kernelRequest(head, new Uint8Array(MAX - headBytes + 1), MAX)).toThrow(expect.objectContaining({ code: 'invalid_request' }))
  })
})

describe('extismHeaders: the response head as Extism\'s JSON object', () => {
  test.each<[string, Array<[string, string]>, Record<string, string>]>([
    ['none', [], {}],
    ['one of each', [['content-type', 'text/plain'], ['x-a', '1']], { 'content-type': 'text/plain', 'x-a': '1' }],
    ['a repeat joined with ", " (RFC 9110 §5.3)', [['x-a', '1'], ['x-a', '2'], ['x-a', '3']], { 'x-a': '1, 2, 3' }],
    ['set-cookie lines joined with "\\n" (their values hold commas)', [['set-cookie', 'a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT'], ['set-cookie', 'b=2']], { 'set-cookie': 'a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT\nb=2' }],
    ['one set-cookie stays as it is', [['set-cookie', 'a=1']], { 'set-cookie': 'a=1' }],
    ['a name like __proto__ is an ordinary key', [['__proto__', 'x']], { ['__proto__']: 'x' }],
  ])('%s', (_name, raw, expected) => {
    const object = JSON.parse(new TextDecoder().decode(extismHeaders(raw))) as Record<string, string>
    expect(Object.entries(object)).toEqual(Object.entries(expected))
  })
})

describe('the worker channel encoding of a kernel reply', () => {
  test.each([
    ['a response with headers and body', { ok: true as const, status: 201, headers: bytes('{"a":"b"}'), body: bytes('body') }],
    ['an empty body', { ok: true as const, status: 204, headers: bytes('{}'), body: new Uint8Array(0) }],
    ['an error', { ok: false as const, error: { code: 'denied' as const, message: 'no rule allows GET http://x/' } }],
    ['a timeout error keeps its phase', { ok: false as const, error: { code: 'timeout' as const, message: 't', phase: 'total' as const } }],
  ])('%s round-trips', (_name, reply) => {
    expect(decodeKernelReply(encodeKernelReply(reply))).toEqual(reply)
  })
})

describe('the abi field of the audit event', () => {
  test('host code calling the safe fetch directly gets capsule-host; a session may say extism', async () => {
    const events: Array<{ abi: string; requestId: string }> = []
    const fetch = createSafeFetch({ onRequest: (e) => events.push(e) })
    await fetch.request({ url: 'https://nowhere.test/' }, { capsuleId: 'host' })
    const session = fetch.registerCapsule('kernel')
    await session.request({ url: 'https://nowhere.test/' }, undefined, { abi: 'extism' })
    await session.requestBytes({ url: 'https://nowhere.test/' })
    session.recordInvalid('request', { code: 'invalid_request', message: 'x' }, { abi: 'extism' })
    // Nothing allows the host, so nothing is resolved or connected.
    expect(events.map((e) => e.abi)).toEqual(['capsule-host', 'extism', 'capsule-host', 'extism'])
    await fetch.close()
  })
})
