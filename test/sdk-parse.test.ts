// The AssemblyScript SDK's reply parsing, through the real probe capsule: parseResponse / parseStreamStart on a table of reply texts (every header form, bodies, errors, invalid replies), the JSON reader, the request builder, and `parsed` against a loopback server.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ERROR_CODES, TIMEOUT_PHASES } from '../src/errors.js'
import { createRuntime, type Capsule, type Runtime } from '../src/index.js'
import { ErrorReplySchema } from '../src/wire/schemas.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

/** What probe.sdk_parse reports of a parsed reply. */
interface Parsed {
  error: { code: string; message: string; phase?: string; retryAfterMs?: number } | null
  status: number
  handle?: string
  header: Array<string | null>
  values: string[][]
  headers: Array<[string, string]>
  rawHeaders: Array<[string, string]>
  bodyEncoding?: string
  body?: string
  finalUrl?: string
  redirects?: number
  elapsedMs?: number
}

let server: TestServer
let runtime: Runtime
let probe: Capsule
beforeAll(async () => {
  server = await startServer((req, res) => {
    res.setHeader('content-type', 'text/plain; charset=utf-8')
    res.setHeader('set-cookie', ['a=1', 'b=2'])
    res.end(req.url === '/empty' ? '' : 'hello, capsule')
  })
  const fetch = testFetch({ rules: [{ host: 'api.test', httpsOnly: false, port: server.port }] })
  runtime = createRuntime({ fetch, isolation: 'worker' })
  probe = await runtime.load({ wasm: capsulePath('probe'), id: 'sdk-parse' })
})
afterAll(async () => {
  await runtime.close()
  await closeAllFetches()
  await closeAllServers()
})

async function parse(kind: 'response' | 'stream', reply: string, names: string[] = []): Promise<Parsed> {
  return (await probe.call('sdk_parse', JSON.stringify({ kind, reply, names }))).json<Parsed>()
}

const bodyOf = (parsed: Parsed) => Buffer.from(parsed.body ?? '', 'base64')
const reply = (fields: Record<string, unknown>) => JSON.stringify({ status: 200, bodyEncoding: 'text', body: '', ...fields })
const invalid = (why: string) => ({ code: 'invalid_reply', message: `the host's reply could not be read: ${why}` })

const LIST: Array<[string, string]> = [
  ['content-type', 'application/json'],
  ['set-cookie', 'a=1'],
  ['x-one', 'only'],
  ['set-cookie', 'b=2; Path=/'],
]
const OBJECT = { 'content-type': 'application/json', 'set-cookie': 'a=1, b=2; Path=/', 'x-one': 'only' }
const NAMES = ['content-type', 'Content-Type', 'SET-COOKIE', 'x-one', 'x-missing', 'content-typ', 'content-type-x']

describe('parseResponse: the header forms', () => {
  test.each<[string, Record<string, unknown>, Partial<Parsed>]>([
    [
      'list only (the default envelope): lookups scan rawHeaders, repeats joined; headers built from the list',
      { rawHeaders: LIST },
      {
        header: ['application/json', 'application/json', 'a=1, b=2; Path=/', 'only', null, null, null],
        values: [['application/json'], ['application/json'], ['a=1', 'b=2; Path=/'], ['only'], [], [], []],
        headers: Object.entries(OBJECT),
        rawHeaders: LIST,
      },
    ],
    [
      'object only: lookups read headers; headerValues gives its one value; rawHeaders one per member',
      { headers: OBJECT },
      {
        header: ['application/json', 'application/json', 'a=1, b=2; Path=/', 'only', null, null, null],
        values: [['application/json'], ['application/json'], ['a=1, b=2; Path=/'], ['only'], [], [], []],
        headers: Object.entries(OBJECT),
        rawHeaders: Object.entries(OBJECT),
      },
    ],
    [
      'both (older replies): header() from the object, headerValues() from the list',
      { headers: { ...OBJECT, 'set-cookie': 'from the object' }, rawHeaders: LIST },
      {
        header: ['application/json', 'application/json', 'from the object', 'only', null, null, null],
        values: [['application/json'], ['application/json'], ['a=1', 'b=2; Path=/'], ['only'], [], [], []],
        headers: Object.entries({ ...OBJECT, 'set-cookie': 'from the object' }),
        rawHeaders: LIST,
      },
    ],
    ['neither', {}, { header: NAMES.map(() => null), values: NAMES.map(() => []), headers: [], rawHeaders: [] }],
    ['an empty list', { rawHeaders: [] }, { header: NAMES.map(() => null), values: NAMES.map(() => []), headers: [], rawHeaders: [] }],
    [
      'forms of the wrong type are passed over',
      { headers: ['content-type', 'x'], rawHeaders: { 'content-type': 'x' } },
      { header: NAMES.map(() => null), headers: [], rawHeaders: [] },
    ],
  ])('%s', async (_name, fields, expected) => {
    const parsed = await parse('response', reply(fields), NAMES)
    expect(parsed).toMatchObject({ error: null, status: 200, ...expected })
  })

  test('the list form built into headers lower-cases names and groups them case-insensitively, in first-seen order', async () => {
    const list = [['X-B', '1'], ['x-a', '2'], ['x-b', '3'], ['X-A', '4']]
    const parsed = await parse('response', reply({ rawHeaders: list }), ['x-b', 'X-A'])
    expect(parsed.header).toEqual(['1, 3', '2, 4'])
    expect(parsed.values).toEqual([['1', '3'], ['2', '4']])
    expect(parsed.headers).toEqual([['x-b', '1, 3'], ['x-a', '2, 4']])
    expect(parsed.rawHeaders).toEqual(list)
  })

  test('list entries that are not [name, value] pairs are passed over; a pair with more elements uses the first two', async () => {
    const text = reply({ rawHeaders: [['x-a', '1'], 'x-b', ['x-c'], [], ['x-d', '4', 'extra'], [5, 'five'], ['x-e', 6], ['x-a', '7']] })
    const parsed = await parse('response', text, ['x-a', 'x-c', 'x-d', 'x-e'])
    expect(parsed.header).toEqual(['1, 7', null, '4', ''])
    expect(parsed.rawHeaders).toEqual([['x-a', '1'], ['x-d', '4'], ['', 'five'], ['x-e', ''], ['x-a', '7']])
  })

  test.each<[string, Array<[string, string]> | string, string[], Array<string | null>]>([
    ['escapes in a value', [['x-v', 'a\tb "q" \\ / \u0001']], ['x-v'], ['a\tb "q" \\ / \u0001']],
    ['raw UTF-8 and Latin-1 in a value', [['x-v', 'café ü ÿ']], ['x-v'], ['café ü ÿ']],
    ['a surrogate pair written as escapes', '[["x-v","\\ud83d\\ude00 ok"]]', ['x-v'], ['\u{1f600} ok']],
    ['a lone surrogate escape becomes U+FFFD', '[["x-v","a\\ud800b"],["x-w","\\udc00"]]', ['x-v', 'x-w'], ['a\ufffdb', '\ufffd']],
    ['a name written with escapes matches its value', '[["x-\\u0061bc","1"],["x\\/y","2"]]', ['X-ABC', 'x/y'], ['1', '2']],
    ['a non-ASCII name: ASCII letters fold, others compare exactly', [['x-é', '1']], ['X-é', 'x-É', 'x-e'], ['1', null, null]],
    ['a value holding JSON punctuation', [['x-v', '"],["x-w","no"]'], ['x-w', 'yes']], ['x-v', 'x-w'], ['"],["x-w","no"]', 'yes']],
    ['an empty name and an empty value', [['', ''], ['x-e', '']], ['', 'x-e'], ['', '']],
  ])('rawHeaders lookup: %s', async (_name, list, names, expected) => {
    const text = typeof list === 'string' ? `{"status":200,"rawHeaders":${list}}` : reply({ rawHeaders: list })
    const parsed = await parse('response', text, names)
    expect(parsed.error).toBeNull()
    expect(parsed.header).toEqual(expected)
    expect(parsed.values).toEqual(expected.map((v) => (v === null ? [] : [v])))
  })

  test('object form: a key with escapes, and a value that is not a string (read as "")', async () => {
    const text = '{"status":200,"headers":{"x-\\u0061":"caf\\u00e9","X-Num":5,"x-b":"\\ud83d\\ude00"}}'
    const parsed = await parse('response', text, ['X-A', 'x-num', 'x-b'])
    expect(parsed.header).toEqual(['café', '', '\u{1f600}'])
    expect(parsed.headers).toEqual([['x-a', 'café'], ['X-Num', ''], ['x-b', '\u{1f600}']])
  })
})

describe('parseResponse: bodies and meta', () => {
  const bytes = (...b: number[]) => Buffer.from(b)
  test.each<[string, string, string, Buffer]>([
    ['text without escapes', reply({ body: 'hello, capsule' }), 'text', Buffer.from('hello, capsule')],
    ['text with every escape', reply({ body: '"\\/\b\f\n\r\t\u0000\u001f' }), 'text', Buffer.from('"\\/\b\f\n\r\t\u0000\u001f')],
    ['text with raw UTF-8', reply({ body: 'café 😀' }), 'text', Buffer.from('café 😀')],
    ['text with a surrogate pair as escapes', '{"status":200,"body":"\\ud83d\\ude00!"}', 'text', bytes(0xf0, 0x9f, 0x98, 0x80, 0x21)],
    ['text with a lone surrogate escape', '{"status":200,"body":"\\udbff"}', 'text', Buffer.from('\ufffd')],
    ['JSON text in a text body (escaped quotes)', reply({ body: '{"hello":"capsule"}' }), 'text', Buffer.from('{"hello":"capsule"}')],
    ['no bodyEncoding means text', '{"status":200,"body":"x"}', 'text', Buffer.from('x')],
    ['an unknown bodyEncoding is read as text', reply({ body: 'x', bodyEncoding: 'weird' }), 'weird', Buffer.from('x')],
    ['a bodyEncoding that is not a string means text', reply({ body: 'x', bodyEncoding: 5 }), 'text', Buffer.from('x')],
    ['no body', '{"status":204}', 'text', Buffer.alloc(0)],
    ['an empty text body', reply({ body: '' }), 'text', Buffer.alloc(0)],
    ['a text body that is not a string: its JSON text', '{"status":200,"body":[1, 2]}', 'text', Buffer.from('[1, 2]')],
    ['base64', reply({ body: 'AAEC/f7/', bodyEncoding: 'base64' }), 'base64', bytes(0, 1, 2, 253, 254, 255)],
    ['base64 with an escaped slash', '{"status":200,"body":"AAEC\\/f7\\/","bodyEncoding":"base64"}', 'base64', bytes(0, 1, 2, 253, 254, 255)],
    ['base64, URL-safe alphabet', reply({ body: 'AAEC_f7_', bodyEncoding: 'base64' }), 'base64', bytes(0, 1, 2, 253, 254, 255)],
    ['base64 with padding', reply({ body: 'AAE=', bodyEncoding: 'base64' }), 'base64', bytes(0, 1)],
    ['base64, empty', reply({ body: '', bodyEncoding: 'base64' }), 'base64', Buffer.alloc(0)],
    ['json: the value\'s exact source text', '{"status":200,"body":{ "a" : [1, 2.5, "\\u00e9"] },"bodyEncoding":"json"}', 'json', Buffer.from('{ "a" : [1, 2.5, "\\u00e9"] }')],
    ['json: a string value keeps its quotes', '{"status":200,"body":"x\\ny","bodyEncoding":"json"}', 'json', Buffer.from('"x\\ny"')],
    ['json: null', '{"status":200,"body":null,"bodyEncoding":"json"}', 'json', Buffer.from('null')],
  ])('%s', async (_name, text, encoding, body) => {
    const parsed = await parse('response', text)
    expect(parsed.error).toBeNull()
    expect(parsed.bodyEncoding).toBe(encoding)
    expect(bodyOf(parsed).equals(body), `body ${bodyOf(parsed).toString('hex')} != ${body.toString('hex')}`).toBe(true)
  })

  test.each<[string, string, Pick<Parsed, 'finalUrl' | 'redirects' | 'elapsedMs'>]>([
    ['meta', reply({ meta: { finalUrl: 'https://api.test/a?b=\u00e9', redirects: 2, elapsedMs: 12.25 } }), { finalUrl: 'https://api.test/a?b=é', redirects: 2, elapsedMs: 12.25 }],
    ['no meta', reply({}), { finalUrl: '', redirects: 0, elapsedMs: 0 }],
    ['meta that is not an object', reply({ meta: [1] }), { finalUrl: '', redirects: 0, elapsedMs: 0 }],
    ['meta members of the wrong types', reply({ meta: { finalUrl: 1, redirects: 1.5, elapsedMs: '3' } }), { finalUrl: '', redirects: 0, elapsedMs: 0 }],
    ['meta with escapes in finalUrl', '{"status":200,"meta":{"finalUrl":"https:\\/\\/x.test\\/\\u00e9","redirects":0,"elapsedMs":1}}', { finalUrl: 'https://x.test/é', redirects: 0, elapsedMs: 1 }],
  ])('%s', async (_name, text, meta) => {
    expect(await parse('response', text)).toMatchObject({ error: null, ...meta })
  })

  test.each<[string, string, number]>([
    ['status', reply({ status: 404 }), 404],
    ['a repeated key: the last one counts (as in JSON.parse)', '{"status":500,"body":"","status":201}', 201],
    ['whitespace everywhere', JSON.stringify({ status: 302, rawHeaders: LIST, body: 'x', meta: { redirects: 0 } }, null, 2).replaceAll('\n', '\r\n\t'), 302],
    ['a member nested 511 levels deep (the limit)', `{"status":200,"x":${'['.repeat(511)}${']'.repeat(511)}}`, 200],
    ['unknown members of any kind', '{"extra":{"a":[true,false,null,-1.5e3,""]},"status":203}', 203],
  ])('%s', async (_name, text, status) => {
    const parsed = await parse('response', text)
    expect(parsed.error).toBeNull()
    expect(parsed.status).toBe(status)
  })
})

describe('parseResponse: error replies and invalid replies', () => {
  test.each<[string, string, Parsed['error']]>([
    ['a host error', '{"error":{"code":"denied","message":"no rule allows GET https://x.test/"}}', { code: 'denied', message: 'no rule allows GET https://x.test/' }],
    ['with a phase', '{"error":{"code":"timeout","message":"no first byte within 100 ms","phase":"first_byte"}}', { code: 'timeout', message: 'no first byte within 100 ms', phase: 'first_byte' }],
    ['a phase that is not a string is left out', '{"error":{"code":"timeout","message":"m","phase":5}}', { code: 'timeout', message: 'm' }],
    ['rate_limited with retryAfterMs', '{"error":{"code":"rate_limited","message":"m","retryAfterMs":41250}}', { code: 'rate_limited', message: 'm', retryAfterMs: 41250 }],
    ['retryAfterMs 0', '{"error":{"code":"rate_limited","message":"m","retryAfterMs":0}}', { code: 'rate_limited', message: 'm', retryAfterMs: 0 }],
    ['retryAfterMs past 2^31 (an i64)', '{"error":{"code":"rate_limited","message":"m","retryAfterMs":31622400000}}', { code: 'rate_limited', message: 'm', retryAfterMs: 31622400000 }],
    ['a retryAfterMs that is not a whole number is left out', '{"error":{"code":"rate_limited","message":"m","retryAfterMs":1.5}}', { code: 'rate_limited', message: 'm' }],
    ['a retryAfterMs that is a string is left out', '{"error":{"code":"rate_limited","message":"m","retryAfterMs":"5"}}', { code: 'rate_limited', message: 'm' }],
    ['escapes in the message', '{"error":{"code":"network","message":"reset \\"here\\" \\u00e9"}}', { code: 'network', message: 'reset "here" é' }],
    ['an error beside a status: the error counts', '{"status":200,"error":{"code":"internal","message":"m"}}', { code: 'internal', message: 'm' }],
    ['an error without a code', '{"error":{"message":"m"}}', { code: 'invalid_reply', message: 'm' }],
    ['an empty error object', '{"error":{}}', { code: 'invalid_reply', message: '' }],
    ['error is not an object', '{"error":"boom"}', invalid('error is not an object')],
  ])('%s', async (_name, text, error) => {
    const parsed = await parse('response', text, ['content-type'])
    expect(parsed.error).toEqual(error)
    expect(parsed).toMatchObject({ status: 0, header: [null], headers: [], rawHeaders: [], bodyEncoding: '', body: '' })
  })

  const prefix = '{"status":200,"x":'
  test.each<[string, string, string]>([
    ['empty', '', 'expected a value at the end of the input'],
    ['only whitespace', ' \n', 'expected a value at the end of the input'],
    ['truncated in a string', '{"status":200,"body":"ab', 'unterminated string at the end of the input'],
    ['truncated after a member', '{"status":200,', 'expected a string key at the end of the input'],
    ['truncated before the closing brace', '{"status":200', 'unterminated object at the end of the input'],
    ['truncated in the header list', '{"status":200,"rawHeaders":[["a","b"]', 'unterminated array at the end of the input'],
    ['truncated in an escape', '{"status":200,"body":"a\\', 'unterminated string at byte 23'],
    ['truncated in a \\u escape', '{"status":200,"body":"\\u00', 'invalid \\u escape at byte 22'],
    ['trailing garbage', '{"status":200} x', 'unexpected data after the JSON value at byte 15'],
    ['two documents', '{"status":200}{}', 'unexpected data after the JSON value at byte 14'],
    ['not JSON at all', 'HTTP/1.1 200 OK', 'unexpected character at byte 0'],
    ['a bad literal', '{"status":tru}', 'invalid literal at byte 10'],
    ['a number with a leading zero', '{"status":0200}', 'expected , or } at byte 11'],
    ['a number without digits', '{"status":-}', 'invalid number at byte 11'],
    ['a fraction without digits', '{"status":2.}', 'invalid number at byte 12'],
    ['an exponent without digits', '{"status":2e+}', 'invalid number at byte 13'],
    ['a missing colon', '{"status" 200}', 'expected : at byte 10'],
    ['a key that is not a string', '{status:200}', 'expected a string key at byte 1'],
    ['a trailing comma', '{"status":200,}', 'expected a string key at byte 14'],
    ['a missing comma in an array', '{"status":200,"rawHeaders":[["a","b"] ["c","d"]]}', 'expected , or ] at byte 38'],
    // The whole reply is checked, even members the SDK never reads.
    ['an invalid escape deep in meta', '{"status":200,"meta":{"finalUrl":"\\x"}}', 'invalid escape at byte 34'],
    ['an invalid \\u escape in a header value', '{"status":200,"rawHeaders":[["a","\\u12G4"]]}', 'invalid \\u escape at byte 34'],
    ['a raw control character in a header value', '{"status":200,"rawHeaders":[["a","b\tc"]]}', 'control character in string at byte 35'],
    ['a bad literal in an unknown member', '{"status":200,"x":{"y":[nul]}}', 'invalid literal at byte 24'],
    ['nested 512 levels deep', `${prefix}${'['.repeat(512)}${']'.repeat(512)}}`, `nested too deeply at byte ${prefix.length + 511}`],
    ['nested far deeper (objects)', `${prefix}${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`, `nested too deeply at byte ${prefix.length + 511 * 5}`],
    ['not an object: an array', '[{"status":200}]', 'not an object'],
    ['not an object: a string', '"status"', 'not an object'],
    ['not an object: a number', '200', 'not an object'],
    ['not an object: null', 'null', 'not an object'],
    ['no status', '{"body":"x","bodyEncoding":"text"}', 'no status'],
    ['a status that is a string', '{"status":"200"}', 'no status'],
    ['a status that is null', '{"status":null}', 'no status'],
    // A status is an integer from 0 to 999 written as one: never wrapped, rounded or read from an exponent.
    ['a status past i32 (would wrap to 200)', '{"status":4294967496}', 'no status'],
    ['a status with an exponent', '{"status":2e2}', 'no status'],
    ['a status with a fraction', '{"status":200.5}', 'no status'],
    ['a negative status', '{"status":-1}', 'no status'],
    ['a status of 1000', '{"status":1000}', 'no status'],
  ])('%s', async (_name, text, why) => {
    const parsed = await parse('response', text, ['content-type'])
    expect(parsed.error).toEqual(invalid(why))
    expect(parsed).toMatchObject({ status: 0, header: [null], body: '' })
  })

  test.each<[string, string]>([
    ['a character outside the alphabet', '@@@@'],
    ['one character too many', 'AAECA'],
    ['padding in the middle', 'AA=C'],
    ['padding without whole quads', 'AAE=='],
    ['an escaped character outside the alphabet', 'AAE\\n'],
  ])('a base64 body that is not base64 (%s) is invalid_reply', async (_name, body) => {
    const parsed = await parse('response', `{"status":200,"rawHeaders":[["a","b"]],"body":"${body}","bodyEncoding":"base64"}`, ['a'])
    expect(parsed.error).toEqual(invalid('body is not base64'))
    // As before: the status and headers read so far stay.
    expect(parsed).toMatchObject({ status: 200, header: ['b'], body: '' })
  })
})

describe('every host error code and timeout phase (src/errors.ts) reads back as sent, from both parsers', () => {
  const rows: Array<[string, string | undefined]> = [
    ...ERROR_CODES.map((code): [string, undefined] => [code, undefined]),
    ...TIMEOUT_PHASES.map((phase): [string, string] => ['timeout', phase]),
  ]
  test.each(rows)('%s %s', async (code, phase) => {
    const extra = phase !== undefined ? { phase } : code === 'rate_limited' ? { retryAfterMs: 1234 } : {}
    const error = { code, message: `a ${code} message with "quotes" and \u00e9`, ...extra }
    const text = JSON.stringify({ error })
    expect(ErrorReplySchema.safeParse(JSON.parse(text)).success, 'a reply the host may send').toBe(true)
    for (const kind of ['response', 'stream'] as const) {
      const parsed = await parse(kind, text, ['content-type'])
      expect(parsed.error).toEqual(error)
      expect(parsed).toMatchObject({ status: 0, header: [null], rawHeaders: [] })
    }
  })

  test.each<[string, string, Parsed['error']]>([
    ['a code the SDK does not list is passed on as it came', '{"error":{"code":"slow_down","message":"m"}}', { code: 'slow_down', message: 'm' }],
    ['a code that is not a string reads as invalid_reply', '{"error":{"code":5,"message":"m"}}', { code: 'invalid_reply', message: 'm' }],
    ['a message that is not a string reads as ""', '{"error":{"code":"network","message":["m"]}}', { code: 'network', message: '' }],
    ['unknown members of the error are passed over', '{"error":{"code":"denied","message":"m","detail":{},"decidedBy":"rules"}}', { code: 'denied', message: 'm' }],
  ])('%s', async (_name, text, error) => {
    for (const kind of ['response', 'stream'] as const) expect((await parse(kind, text)).error).toEqual(error)
  })
})

describe('parseStreamStart', () => {
  test.each<[string, string, Partial<Parsed>]>([
    [
      'list only (the default envelope)',
      JSON.stringify({ handle: '3', status: 200, rawHeaders: LIST }),
      { handle: '3', status: 200, header: ['application/json', 'a=1, b=2; Path=/'], values: [['application/json'], ['a=1', 'b=2; Path=/']], rawHeaders: LIST },
    ],
    [
      'object only',
      JSON.stringify({ handle: '12', status: 206, headers: OBJECT }),
      { handle: '12', status: 206, header: ['application/json', 'a=1, b=2; Path=/'], values: [['application/json'], ['a=1, b=2; Path=/']], headers: Object.entries(OBJECT) },
    ],
    [
      'both',
      JSON.stringify({ handle: 'h-1', status: 200, headers: OBJECT, rawHeaders: LIST }),
      { handle: 'h-1', header: ['application/json', 'a=1, b=2; Path=/'], values: [['application/json'], ['a=1', 'b=2; Path=/']] },
    ],
    ['a handle with escapes', '{"handle":"\\u0034\\u0032","status":200}', { handle: '42', status: 200, header: [null, null] }],
    ['the smallest status', '{"handle":"3","status":0}', { handle: '3', status: 0 }],
    ['the largest status', '{"handle":"3","status":999}', { handle: '3', status: 999 }],
  ])('%s', async (_name, text, expected) => {
    expect(await parse('stream', text, ['Content-Type', 'set-cookie'])).toMatchObject({ error: null, ...expected })
  })

  test.each<[string, string, Parsed['error']]>([
    ['a host error with a phase', '{"error":{"code":"timeout","message":"m","phase":"connect"}}', { code: 'timeout', message: 'm', phase: 'connect' }],
    ['a host error without one', '{"error":{"code":"stream_limit","message":"4 streams are open"}}', { code: 'stream_limit', message: '4 streams are open' }],
    ['no handle', '{"status":200,"rawHeaders":[]}', invalid('no handle')],
    ['a handle that is a number', '{"handle":3,"status":200}', invalid('no handle')],
    ['not an object', '["3"]', invalid('not an object')],
    ['truncated', '{"handle":"3","status":200,"rawHeaders":[["a","b"],', invalid('expected a value at the end of the input')],
    ['trailing garbage', '{"handle":"3"}]', invalid('unexpected data after the JSON value at byte 14')],
    ['an invalid escape in a header name', '{"handle":"3","rawHeaders":[["\\q","b"]]}', invalid('invalid escape at byte 30')],
    ['no status', '{"handle":"3"}', invalid('no status')],
    ['a status past i32 (would wrap to 200)', '{"handle":"3","status":4294967496}', invalid('no status')],
    ['a status with an exponent', '{"handle":"3","status":2e2}', invalid('no status')],
    ['a status with a fraction', '{"handle":"3","status":200.5}', invalid('no status')],
  ])('%s', async (_name, text, error) => {
    const parsed = await parse('stream', text, ['a'])
    expect(parsed.error).toEqual(error)
    expect(parsed).toMatchObject({ status: 0, handle: '', header: [null], rawHeaders: [] })
  })
})

describe('the JSON reader (JsonValue: get/at/keys/items/size on members made on demand)', () => {
  const rewrite = async (text: string) => (await probe.call('json_rewrite', text)).json<{ value?: unknown; error?: string }>()

  test.each<[string, string]>([
    ['nested containers with whitespace', ' { "a" : [ 1 , { "b" : [ ] } , [ [ ] ] ] , "c" : { } } '],
    ['repeated keys (kept in order)', '{"a":1,"b":2,"a":3}'],
    ['keys and strings holding quotes, brackets and escapes', '{"a\\"}":"]\\"[{","b":[["x\\\\",",","y"]],"\\u00e9\\ud83d\\ude00":"\\/"}'],
    ['numbers', '[0,-1,1.5,-2.25e-3,1E3,9223372036854775807,9223372036854775808,-9223372036854775808,1e21]'],
    ['literals and empty strings', '[true,false,null,"",{"":""}]'],
    ['a scalar document', '"just a string"'],
    ['an array of 1000 elements', JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ i, s: `v${i}` })))],
  ])('%s reads back as JSON.parse reads it', async (_name, text) => {
    expect(await rewrite(text)).toEqual({ value: JSON.parse(text) })
  })

  test.each<[string, string, string]>([
    ['an error deep inside', '{"a":[1,{"b":[1,2,}]}]}', 'unexpected character at byte 18'],
    ['a control character in a key', '{"a\nb":1}', 'control character in string at byte 3'],
    ['truncated', '[1,2', 'unterminated array at the end of the input'],
  ])('%s is refused with the byte where it went wrong', async (_name, text, error) => {
    expect(await rewrite(text)).toEqual({ error })
  })
})

describe('HttpRequest.responseHeaders', () => {
  test.each<[string, string | undefined, Record<string, unknown>]>([
    ['not set: nothing is written (the host sends rawHeaders)', undefined, { url: 'https://api.test/', method: 'GET' }],
    ['list', 'list', { url: 'https://api.test/', method: 'GET', responseHeaders: 'list' }],
    ['object', 'object', { url: 'https://api.test/', method: 'GET', responseHeaders: 'object' }],
    ['both', 'both', { url: 'https://api.test/', method: 'GET', responseHeaders: 'both' }],
  ])('%s', async (_name, form, wire) => {
    const input = JSON.stringify({ url: 'https://api.test/', ...(form === undefined ? {} : { responseHeaders: form }) })
    expect((await probe.call('request_json', input)).json()).toEqual(wire)
  })
})

describe('probe.parsed: a real request through the SDK', () => {
  test.each<[string, string, unknown]>([
    ['a text body', '/', { status: 200, contentType: 'text/plain; charset=utf-8', bodyBytes: 'hello, capsule'.length }],
    ['an empty body', '/empty', { status: 200, contentType: 'text/plain; charset=utf-8', bodyBytes: 0 }],
  ])('%s', async (_name, path, expected) => {
    const out = await probe.call('parsed', JSON.stringify({ url: `http://api.test:${server.port}${path}` }))
    expect(out.json()).toEqual(expected)
  })

  test.each<[string, string | undefined]>([
    ['the default form (rawHeaders only)', undefined],
    ['responseHeaders "list"', 'list'],
    ['responseHeaders "object"', 'object'],
    ['responseHeaders "both"', 'both'],
  ])('the host\'s reply in %s reads the same', async (_name, form) => {
    const req = { url: `http://api.test:${server.port}/`, ...(form === undefined ? {} : { responseHeaders: form }) }
    const out = await probe.call('parsed', JSON.stringify(req))
    expect(out.json()).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', bodyBytes: 'hello, capsule'.length })
    const reply = (await probe.call('request', JSON.stringify(req))).json<Record<string, unknown>>()
    expect(['headers' in reply, 'rawHeaders' in reply]).toEqual([form === 'object' || form === 'both', form !== 'object'])
  })

  test('a refused request comes back as its error', async () => {
    const out = (await probe.call('parsed', JSON.stringify({ url: 'https://elsewhere.test/' }))).json<{ error: { code: string } }>()
    expect(out.error.code).toBe('denied')
  })
})
