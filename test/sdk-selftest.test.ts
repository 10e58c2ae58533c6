// The AssemblyScript SDK tested directly: capsules/sdk-selftest runs its JSON reader and writer, base64, request builder and stream reader on the cases in test/fixtures/sdk-cases/*.json, checked against JavaScript's own (JSON.parse, Buffer, the host's zod request schema) and a real loopback server.
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRuntime, type Capsule, type Runtime } from '../src/index.js'
import { HttpRequestSchema } from '../src/wire/schemas.js'
import { capsulePath, fnv1a32 } from './helpers/capsules.js'
import { closeAllFetches, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

/** A case's input: a JSON text, UTF-8 bytes in hex, or pieces repeated. */
interface Input {
  name: string
  json?: string
  hex?: string
  repeat?: Array<[string, number]>
}

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/sdk-cases/${name}`, import.meta.url), 'utf8')) as T
}

function bytesOf(c: Input): Buffer {
  if (c.hex !== undefined) return Buffer.from(c.hex, 'hex')
  if (c.repeat !== undefined) return Buffer.from(c.repeat.map(([s, n]) => s.repeat(n)).join(''), 'utf8')
  return Buffer.from(c.json ?? '', 'utf8')
}

/** A piece of a served body: text, hex, or `pattern` bytes of a fixed sequence, `repeat` times. */
interface Piece {
  text?: string
  hex?: string
  pattern?: number
  repeat?: number
}

/** `size` bytes of a fixed sequence. */
function pattern(size: number): Buffer {
  const body = Buffer.alloc(size)
  for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >> 9)) & 0xff
  return body
}

function pieceBytes(p: Piece): Buffer[] {
  const one = p.text !== undefined ? Buffer.from(p.text, 'utf8') : p.hex !== undefined ? Buffer.from(p.hex, 'hex') : pattern(p.pattern ?? 0)
  return Array.from({ length: p.repeat ?? 1 }, () => one)
}

/** What the server answers on one path. */
interface Served {
  status?: number
  headers?: Array<[string, string]>
  chunks: Buffer[]
  length?: boolean
  hang?: boolean
}

/** The loopback server's routes, by path, filled in from the fixtures below. */
const routes = new Map<string, Served>()

async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const route = routes.get(req.url ?? '')
  if (req.url === '/reset') {
    res.writeHead(200)
    return void res.write('part', () => res.socket?.destroy()) // chunked, so the body is unfinished
  }
  if (route === undefined) return void res.writeHead(404).end('no such route')
  if (route.hang) return
  const total = route.chunks.reduce((n, c) => n + c.length, 0)
  const headers = [...(route.headers ?? []), ...(route.length ? [['content-length', String(total)]] : [])].flat()
  res.writeHead(route.status ?? 200, headers)
  for (const chunk of route.chunks) await new Promise<void>((resolve, reject) => res.write(chunk, (e) => (e ? reject(e) : resolve())))
  res.end()
}

let runtime: Runtime
let selftest: Capsule
let server: TestServer
/** A loopback port nothing listens on (a server's, closed). */
let closedPort: number
beforeAll(async () => {
  server = await startServer(serve)
  const closed = await startServer(() => undefined)
  closedPort = closed.port
  await closed.close()
  const fetch = testFetch({
    resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'elsewhere.test': ['127.0.0.1'], 'blocked.test': ['127.0.0.2'] }),
    rules: [
      { host: 'api.test', httpsOnly: false, port: [server.port, closedPort] },
      { host: 'nowhere.test', httpsOnly: false, port: server.port },
      { host: 'blocked.test', httpsOnly: false, port: server.port },
    ],
    maxRedirects: 3,
  })
  runtime = createRuntime({ fetch, isolation: 'worker' })
  selftest = await runtime.load({ wasm: capsulePath('sdk-selftest'), id: 'sdk-selftest' })
})

/** A fixture URL with {port} and {closed} filled in, or the server's URL for `path`. */
const urlOf = (c: { url?: string; path?: string }) =>
  (c.url ?? `http://api.test:{port}${c.path}`).replace('{port}', String(server.port)).replace('{closed}', String(closedPort))
afterAll(async () => {
  await runtime?.close()
  await closeAllFetches()
  await closeAllServers()
})

// ---- JSON reading ----

/** What json_parse says of a value (see capsules/sdk-selftest/index.ts). */
type Tree =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | { t: 'num'; raw: string; bits: string; int: string | null; i64or: string }
  | { t: 'str'; bytes: string; utf16: string; equalsItself: boolean }
  | { t: 'arr'; size: number; items: Tree[]; itemsSame: boolean; outOfRangeNull: boolean }
  | { t: 'obj'; size: number; items: Tree[]; itemsSame: boolean; outOfRangeNull: boolean; keys: string[]; get: number[] }
type Parsed = { ok: true; raw: string; tree: Tree } | { ok: false; error: string }

const fromUnits = (hex: string) => String.fromCharCode(...(hex.match(/.{4}/g) ?? []).map((u) => parseInt(u, 16)))
const fromBits = (hex: string) => Buffer.from(hex, 'hex').readDoubleBE(0)

/** The JavaScript value the SDK read (strings from str(), numbers from f64()). */
function toJs(t: Tree): unknown {
  switch (t.t) {
    case 'null': return null
    case 'bool': return t.v
    case 'num': return fromBits(t.bits)
    case 'str': return fromUnits(t.utf16)
    case 'arr': return t.items.map(toJs)
    case 'obj': return Object.fromEntries(t.keys.map((k, i) => [fromUnits(k), toJs(t.items[i]!)]))
  }
}

const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n

/** The i64 an integer literal holds, or null when it has a fraction or exponent or does not fit. */
function i64Of(raw: string): string | null {
  if (!/^-?\d+$/.test(raw)) return null
  const n = BigInt(raw)
  return n >= I64_MIN && n <= I64_MAX ? n.toString() : null
}

/** Every way the accessors disagree with each other or with the source, by path. */
function inconsistencies(t: Tree, path = '$'): string[] {
  switch (t.t) {
    case 'num': {
      const int = i64Of(t.raw)
      const out = []
      if (t.int !== int) out.push(`${path}: i64 ${t.int} for ${t.raw}, expected ${int}`)
      if (t.i64or !== (int ?? '-42')) out.push(`${path}: i64(-42) ${t.i64or} for ${t.raw}`)
      return out
    }
    case 'str':
      return t.equalsItself ? [] : [`${path}: equalsString(str()) is false`]
    case 'arr':
    case 'obj': {
      const out = t.items.flatMap((item, i) => inconsistencies(item, `${path}[${i}]`))
      if (t.size !== t.items.length || !t.itemsSame || !t.outOfRangeNull) out.push(`${path}: size/items/at disagree`)
      if (t.t === 'obj') {
        t.keys.forEach((k, i) => {
          if (t.get[i] !== t.keys.lastIndexOf(k)) out.push(`${path}: get(key ${i}) gave member ${t.get[i]}, not the last with that key`)
        })
      }
      return out
    }
    default:
      return []
  }
}

/** UTF-8 bytes of each string's bytes() and of its str(), for strings anywhere in the tree. */
function stringBytes(t: Tree): Array<{ bytes: string; ofStr: string }> {
  if (t.t === 'str') return [{ bytes: t.bytes, ofStr: Buffer.from(fromUnits(t.utf16), 'utf8').toString('hex') }]
  if (t.t === 'arr' || t.t === 'obj') return t.items.flatMap(stringBytes)
  return []
}

async function parse(input: Buffer): Promise<Parsed> {
  return (await selftest.call('json_parse', input)).json<Parsed>()
}

function jsonParse(input: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(input.toString('utf8')) }
  } catch {
    return { ok: false }
  }
}

/** The document's own bytes, without the whitespace around it. */
const trimmed = (input: Buffer) => Buffer.from(input.toString('latin1').replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, ''), 'latin1')

describe('JSON: documents that must be accepted read as JSON.parse reads them', () => {
  const { cases } = fixture<{ cases: Input[] }>('json-accept.json')
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const input = bytesOf(c)
    const expected = jsonParse(input)
    expect(expected.ok, 'JSON.parse accepts it').toBe(true)
    const parsed = await parse(input)
    if (!parsed.ok) throw new Error(`the SDK refused it: ${parsed.error}`)
    expect(toJs(parsed.tree)).toEqual((expected as { value: unknown }).value)
    expect(inconsistencies(parsed.tree)).toEqual([])
    for (const s of stringBytes(parsed.tree)) expect(s.bytes).toBe(s.ofStr)
    expect(parsed.raw).toBe(trimmed(input).toString('hex'))
  })
})

describe('JSON: documents that must be refused are refused, with the byte where they went wrong', () => {
  const { cases } = fixture<{ cases: Array<Input & { error: string }> }>('json-reject.json')
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const input = bytesOf(c)
    expect(jsonParse(input).ok, 'JSON.parse refuses it').toBe(false)
    expect(await parse(input)).toEqual({ ok: false, error: c.error })
  })
})

interface ImplementationCase extends Input {
  sdk: 'accept' | 'reject'
  jsonParse: 'accept' | 'reject'
  value?: unknown
  bytes?: string[]
  error?: string
}

describe('JSON: what the SDK does where JSON leaves it open, or differs from JSON.parse', () => {
  const { cases } = fixture<{ cases: ImplementationCase[] }>('json-implementation.json')
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const input = bytesOf(c)
    expect(jsonParse(input).ok ? 'accept' : 'reject', 'JSON.parse').toBe(c.jsonParse)
    const parsed = await parse(input)
    if (c.sdk === 'reject') {
      expect(parsed).toEqual({ ok: false, error: c.error })
      return
    }
    if (!parsed.ok) throw new Error(`the SDK refused it: ${parsed.error}`)
    expect(toJs(parsed.tree)).toEqual(c.value)
    expect(stringBytes(parsed.tree).map((s) => s.bytes)).toEqual(c.bytes)
    expect(inconsistencies(parsed.tree)).toEqual([])
  })
})

/** A deterministic stream of numbers in [0, 1) (a linear congruential generator), for sweeps. */
function lcg(seed: number): () => number {
  let state = seed
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return state / 2 ** 32
  }
}

/** `count` finite f64 values of every magnitude: random bit patterns, subnormals and integers. */
function sweepValues(count: number, seed: number): number[] {
  const next = lcg(seed)
  const out: number[] = []
  const bits = Buffer.alloc(8)
  while (out.length < count) {
    for (let i = 0; i < 8; i++) bits[i] = Math.floor(next() * 256)
    if (out.length % 10 === 9) bits[0] = bits[0]! & 0x80 // a subnormal (or zero)
    const value = bits.readDoubleBE(0)
    if (Number.isFinite(value)) out.push(value)
  }
  return out
}

describe('JSON: number text reads as the f64 JSON.parse reads (a sweep)', () => {
  const values = sweepValues(3000, 7)
  const next = lcg(11)
  const texts = [
    ...values.map(String),
    ...values.map((v) => v.toPrecision(17)),
    ...values.map((v) => v.toExponential(20)),
    ...values.map((v) => v.toPrecision(1 + Math.floor(next() * 16))),
    ...Array.from({ length: 3000 }, () => `${Math.floor(next() * 1e9)}e${Math.floor(next() * 700) - 350}`),
    ...Array.from({ length: 3000 }, () => `${next() < 0.5 ? '-' : ''}0.${String(Math.floor(next() * 1e9)).padStart(9, '0')}${'0'.repeat(Math.floor(next() * 20))}${Math.floor(next() * 1e6)}`),
  ]
  test.each(Array.from({ length: Math.ceil(texts.length / 3000) }, (_, i) => [i, texts.slice(i * 3000, i * 3000 + 3000)] as const))(
    'batch %i',
    async (_i, batch) => {
      const parsed = await parse(Buffer.from(`[${batch.join(',')}]`))
      if (!parsed.ok || parsed.tree.t !== 'arr') throw new Error(`refused: ${JSON.stringify(parsed)}`)
      const wrong = parsed.tree.items.flatMap((item, i) => {
        const expected = JSON.parse(batch[i]!) as number
        const got = item.t === 'num' ? fromBits(item.bits) : NaN
        return Object.is(got, expected) ? [] : [`${batch[i]}: ${got}, JSON.parse ${expected}`]
      })
      expect(wrong.slice(0, 10), `${wrong.length} of ${batch.length} numbers read wrong`).toEqual([])
    },
  )
})

describe('JSON: an exponent of seven digits and more, cancelled by a run of zeros (about 1 MB of number text)', () => {
  // The exponent was read only up to 100000: 1e-1000000 after a million zeros read as Infinity.
  test.each([
    ['1 and 1,000,000 zeros, e-1000000', `1${'0'.repeat(1_000_000)}e-1000000`],
    ['1 and 999,990 zeros, e-1000000', `1${'0'.repeat(999_990)}e-1000000`],
    ['0. and 1,000,000 zeros then 1, e1000010', `0.${'0'.repeat(1_000_000)}1e1000010`],
    ['0. and 999,999 zeros then 1, e1000000', `0.${'0'.repeat(999_999)}1e1000000`],
    ['a padded exponent', `1${'0'.repeat(1_000_000)}e-0000000001000000`],
    ['past every bound: 0', `0.${'0'.repeat(10)}1e-999999999`],
    ['past every bound: Infinity', `1e999999999`],
  ])('%s', async (_name, text) => {
    const parsed = await parse(Buffer.from(`[${text}]`))
    if (!parsed.ok || parsed.tree.t !== 'arr') throw new Error(`refused: ${JSON.stringify(parsed).slice(0, 200)}`)
    const item = parsed.tree.items[0]!
    expect(item.t === 'num' ? fromBits(item.bits) : NaN).toBe(JSON.parse(text))
  })
})

describe('JsonValue accessors on every kind of value, with their defaults', () => {
  interface Access {
    get: Tree | null
    at: Tree | null
    keyAt: string | null
    getString: string
    getNumber: string
    str: string
    f64: string
    rawText: string
    [other: string]: unknown
  }
  const number = (bits: string) => (Number.isNaN(fromBits(bits)) ? 'NaN' : fromBits(bits))
  const value = (t: Tree | null) => (t === null ? '(none)' : toJs(t))
  const { cases } = fixture<{ cases: Array<{ name: string; doc: string; key: string; index: number; expect: Record<string, unknown> }> }>('json-access.json')
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const out = (await selftest.call('json_access', { doc: c.doc, key: c.key, index: c.index })).json<Access>()
    const readable = {
      ...out,
      get: value(out.get),
      at: value(out.at),
      keyAt: out.keyAt === null ? null : fromUnits(out.keyAt),
      getString: fromUnits(out.getString),
      getNumber: number(out.getNumber),
      str: fromUnits(out.str),
      f64: number(out.f64),
      rawText: fromUnits(out.rawText),
    }
    expect(readable).toEqual(c.expect)
  })

  test('a doc that is not JSON is its error', async () => {
    expect((await selftest.call('json_access', { doc: '{"a":', key: 'a', index: 0 })).json()).toEqual({ error: 'expected a value at the end of the input' })
  })
})

// ---- JSON writing ----

type WriteOp = [string, unknown?]

async function write(ops: WriteOp[]): Promise<Buffer> {
  return Buffer.from((await selftest.call('json_write', ops)).bytes())
}

describe('JsonWriter writes exactly the expected text', () => {
  const { cases } = fixture<{ cases: Array<{ name: string; ops: WriteOp[]; text?: string; hex?: string }> }>('json-write.json')
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const out = await write(c.ops)
    if (c.hex !== undefined) {
      expect(out.toString('hex')).toBe(c.hex)
      return
    }
    expect(out.toString('utf8')).toBe(c.text)
    expect(Buffer.from(c.text!, 'utf8').equals(out), 'the text is the whole output').toBe(true)
    const oneDocument = !c.name.startsWith('values one after another')
    if (oneDocument) expect(() => JSON.parse(c.text!)).not.toThrow()
  })
})

describe('JsonWriter round trips', () => {
  test('number(v) reads back as v with JSON.parse for 5000 f64 values (-0 as 0, as JSON.stringify writes it)', async () => {
    const values = sweepValues(5000, 3)
    const ops: WriteOp[] = [['beginArray'], ...values.map((v): WriteOp => ['number', bitsHex(v)]), ['endArray']]
    const read = JSON.parse((await write(ops)).toString('utf8')) as number[]
    const wrong = values.flatMap((v, i) => (Object.is(read[i], Object.is(v, -0) ? 0 : v) ? [] : [`${v} read back as ${read[i]}`]))
    expect(wrong.slice(0, 10), `${wrong.length} of ${values.length}`).toEqual([])
  })

  test('string(s) reads back as s for all 65536 code units in a row, lone surrogates as U+FFFD', async () => {
    const units = Array.from({ length: 0x10000 }, (_, u) => u)
    const hex = units.map((u) => u.toString(16).padStart(4, '0')).join('')
    const text = (await write([['string', { utf16: hex }]])).toString('utf8')
    // U+DBFF then U+DC00 is a pair (U+10FC00); every other surrogate is lone. Buffer writes lone ones as U+FFFD too.
    const expected = Buffer.from(String.fromCharCode(...units), 'utf8').toString('utf8')
    expect(expected).toContain('\u{10fc00}')
    expect(JSON.parse(text) === expected).toBe(true)
  })

  test('string(s) reads back as s for every supplementary plane\'s first and last code point', async () => {
    const points = Array.from({ length: 16 }, (_, i) => [0x10000 * (i + 1), 0x10000 * (i + 1) + 0xffff]).flat()
    const s = String.fromCodePoint(...points)
    const hex = Array.from({ length: s.length }, (_, i) => s.charCodeAt(i).toString(16).padStart(4, '0')).join('')
    expect(JSON.parse((await write([['string', { utf16: hex }]])).toString('utf8'))).toBe(s)
  })

  test('what the writer writes, the reader reads: a document of every kind read back through json_parse', async () => {
    const doc = { a: [1, -2.5, 'x\u0000y', { '': null }], 'k\u00e9': true, n: -9007199254740991, e: 1e-300 }
    const parsed = await parse(Buffer.from(JSON.stringify(doc)))
    if (!parsed.ok) throw new Error(parsed.error)
    const rewritten = await write(treeOps(parsed.tree))
    expect(JSON.parse(rewritten.toString('utf8'))).toEqual(doc)
  })
})

function bitsHex(v: number): string {
  const b = Buffer.alloc(8)
  b.writeDoubleBE(v)
  return b.toString('hex')
}

/** Writer calls that write the value `t` describes (strings by their bytes, numbers by their bits). */
function treeOps(t: Tree): WriteOp[] {
  switch (t.t) {
    case 'null': return [['null']]
    case 'bool': return [['bool', t.v]]
    case 'num': return [['number', t.bits]]
    case 'str': return [['stringBytes', t.bytes]]
    case 'arr': return [['beginArray'], ...t.items.flatMap(treeOps), ['endArray']]
    case 'obj': return [['beginObject'], ...t.keys.flatMap((k, i) => [['key', { utf16: k }] as WriteOp, ...treeOps(t.items[i]!)]), ['endObject']]
  }
}

// ---- base64 ----

interface Base64Out {
  encode: string[]
  encodedLength: number[]
  decode: Array<string | null>
  decodeBytes: Array<string | null>
}

async function base64(encode: Buffer[], decode: unknown[]): Promise<Base64Out> {
  return (await selftest.call('base64', { encode: encode.map((b) => b.toString('hex')), decode })).json<Base64Out>()
}

describe('base64', () => {
  const { cases } = fixture<{ cases: Array<{ name: string; text: unknown; bytes: string | null }> }>('base64.json')
  test.each(cases.map((c) => [c.name, c] as const))('decode: %s', async (_name, c) => {
    const out = await base64([], [c.text])
    expect(out.decode).toEqual([c.bytes])
    expect(out.decodeBytes).toEqual([c.bytes])
  })

  /** Bytes 0..n-1 of a fixed pseudo-random sequence. */
  const bytes = (n: number, seed: number) => {
    const next = lcg(seed)
    return Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)))
  }
  const lengths = Array.from({ length: 301 }, (_, n) => n)

  test('encode: every length 0..300 is what Buffer writes, with padding, and encodedLength says its size', async () => {
    const inputs = lengths.map((n) => bytes(n, n + 1))
    const out = await base64(inputs, [])
    expect(out.encode).toEqual(inputs.map((b) => b.toString('base64')))
    expect(out.encodedLength).toEqual(out.encode.map((s) => s.length))
    expect(out.encode.every((s) => s.length % 4 === 0)).toBe(true)
  })

  test('decode: every length 0..300 reads back, padded, unpadded and URL-safe', async () => {
    const inputs = lengths.map((n) => bytes(n, 1000 + n))
    const texts = inputs.flatMap((b) => [b.toString('base64'), b.toString('base64').replace(/=+$/, ''), b.toString('base64url')])
    const out = await base64([], texts)
    const expected = inputs.flatMap((b) => [b.toString('hex'), b.toString('hex'), b.toString('hex')])
    expect(out.decode).toEqual(expected)
    expect(out.decodeBytes).toEqual(expected)
  })

  test('every byte value, and every three-byte group of one value, round trips', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    const triples = Array.from({ length: 256 }, (_, i) => Buffer.from([i, i, i]))
    const out = await base64([all, ...triples], [all.toString('base64'), ...triples.map((t) => t.toString('base64'))])
    expect(out.encode).toEqual([all, ...triples].map((b) => b.toString('base64')))
    expect(out.decode).toEqual([all, ...triples].map((b) => b.toString('hex')))
  })
})

// ---- requests ----

interface RequestCase {
  name: string
  request: { make: 'new' | 'get' | 'post'; url: string; method?: string; ops?: unknown[][] }
  wire: string
  schema: string
}

/** What HttpRequestSchema says of a wire request: ok, or its issues as "path: message". */
function schemaVerdict(wire: unknown): string {
  const checked = HttpRequestSchema.safeParse(wire)
  return checked.success ? 'ok' : checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
}

describe('HttpRequest.toJson writes the wire request the host reads', () => {
  const { cases } = fixture<{ cases: RequestCase[] }>('requests.json')
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const wire = (await selftest.call('build_request', c.request)).text()
    expect(wire).toBe(c.wire)
    expect(schemaVerdict(JSON.parse(wire))).toBe(c.schema)
  })

  test('a binary body of every length 0..64 and of every byte value is the base64 of its bytes', async () => {
    const bodies = [...Array.from({ length: 65 }, (_, n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 255))), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]
    for (const body of bodies) {
      const wire = (await selftest.call('build_request', { make: 'post', url: 'https://api.test/', ops: [['bodyBytes', body.toString('hex')]] })).json<{ bodyBase64: string }>()
      expect(wire.bodyBase64).toBe(body.toString('base64'))
      expect(schemaVerdict(wire)).toBe('ok')
    }
  })

  test('a request the builder cannot describe is a failed call that names the call', async () => {
    await expect(selftest.call('build_request', { make: 'get', url: 'https://api.test/', ops: [['cookie', 'a=1']] })).rejects.toThrow('unknown builder call ["cookie","a=1"]')
  })
})

// ---- a real host: buffered exchanges and streams ----

interface ExchangeCase {
  name: string
  path?: string
  url?: string
  method?: string
  serve?: Piece & { status?: number; headers?: Array<[string, string]>; hang?: boolean }
  ops: unknown[][]
  expect: { error?: string; phase?: string; status?: number; bodyEncoding?: string; body?: string; json?: unknown; redirects?: number; finalPath?: string }
}

/** What `send` reads of a response (capsules/sdk-selftest describeResponse). */
interface Described {
  error: { code: string; message: string; phase?: string } | null
  ok: boolean
  status: number
  bodyEncoding: string
  body: string
  /** HttpResponse.text(): the body decoded as UTF-8, ill-formed sequences as U+FFFD (as TextDecoder). */
  text: string
  headers: Array<[string, string]>
  rawHeaders: Array<[string, string]>
  finalUrl: string
  redirects: number
  json: unknown
}

/** Whether `wanted` appears in `list` in order (other entries may come between). */
function inOrder(list: Array<[string, string]>, wanted: Array<[string, string]>): boolean {
  let at = 0
  for (const entry of list) if (at < wanted.length && entry[0] === wanted[at]![0] && entry[1] === wanted[at]![1]) at++
  return at === wanted.length
}

/** `headers` with names lower-cased and repeats joined with ", ", in first-seen order. */
function joined(headers: Array<[string, string]>): Array<[string, string]> {
  const out = new Map<string, string>()
  for (const [name, value] of headers) {
    const key = name.toLowerCase()
    out.set(key, out.has(key) ? `${out.get(key)}, ${value}` : value)
  }
  return [...out]
}

describe('request() and parseResponse through a real host and a loopback server', () => {
  const { cases } = fixture<{ cases: ExchangeCase[] }>('exchanges.json')
  for (const c of cases) {
    if (c.serve && c.path) routes.set(c.path, { status: c.serve.status, headers: c.serve.headers, chunks: c.serve.hang ? [] : pieceBytes(c.serve), hang: c.serve.hang })
  }
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const request = { make: 'new', url: urlOf(c), ...(c.method === undefined ? {} : { method: c.method }), ops: c.ops }
    const got = (await selftest.call('send', request)).json<Described>()
    if (c.expect.error !== undefined) {
      expect(got.error?.code, got.error?.message).toBe(c.expect.error)
      expect(got.error?.phase).toBe(c.expect.phase)
      expect(got).toMatchObject({ ok: false, status: 0, bodyEncoding: '', body: '', headers: [], rawHeaders: [], json: null })
      return
    }
    expect(got.error).toBeNull()
    expect(got).toMatchObject({ status: c.expect.status, bodyEncoding: c.expect.bodyEncoding, ok: got.status >= 200 && got.status < 300 })
    const body = c.expect.body !== undefined ? Buffer.from(c.expect.body, 'utf8') : Buffer.concat(pieceBytes(c.serve ?? {}))
    expect(got.body).toBe(body.toString('hex'))
    expect(got.text).toBe(new TextDecoder().decode(body))
    if (c.expect.json !== undefined) expect(got.json).toEqual(c.expect.json)
    const final = c.expect.finalPath === undefined ? c.serve : routes.get(c.expect.finalPath)
    const served = (final?.headers ?? []).map(([n, v]): [string, string] => [n.toLowerCase(), v])
    const form = c.ops.find((op) => op[0] === 'responseHeaders')?.[1] ?? 'list'
    if (form !== 'object') expect(inOrder(got.rawHeaders, served), JSON.stringify(got.rawHeaders)).toBe(true)
    expect(inOrder(got.headers, joined(served)), JSON.stringify(got.headers)).toBe(true)
    expect(got.redirects).toBe(c.expect.redirects ?? 0)
    expect(got.finalUrl).toBe(c.expect.finalPath === undefined ? request.url : `http://api.test:${server.port}${c.expect.finalPath}`)
  })

  test('what the upstream received: the method, every header in order with repeats, and the body bytes', async () => {
    const received: Array<{ method?: string; headers: string[]; body: Buffer }> = []
    routes.set('/echo', { chunks: [Buffer.from('ok')] })
    server.server.prependListener('request', (req: IncomingMessage) => {
      if (req.url !== '/echo') return
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => received.push({ method: req.method, headers: req.rawHeaders, body: Buffer.concat(chunks) }))
    })
    const url = `http://api.test:${server.port}/echo`
    const binary = pattern(70_000)
    const sends = [
      { make: 'post', url, ops: [['header', 'x-a', '1'], ['header', 'X-B', 'two'], ['header', 'x-a', '3'], ['body', 'caf\u00e9 \n']] },
      { make: 'new', url, method: 'put', ops: [['bodyBytes', binary.toString('hex')]] },
      { make: 'new', url, method: 'DELETE', ops: [] },
    ]
    for (const request of sends) expect((await selftest.call('send', request)).json<Described>().status).toBe(200)
    expect(received.map((r) => r.method)).toEqual(['POST', 'PUT', 'DELETE'])
    const pairs = (flat: string[]) => Array.from({ length: flat.length / 2 }, (_, i): [string, string] => [flat[2 * i]!.toLowerCase(), flat[2 * i + 1]!])
    expect(inOrder(pairs(received[0]!.headers), [['x-a', '1'], ['x-b', 'two'], ['x-a', '3']])).toBe(true)
    expect(received[0]!.body.toString('utf8')).toBe(sends[0]!.ops[3]![1])
    expect(received[1]!.body.equals(binary)).toBe(true)
    expect(received[2]!.body.length).toBe(0)
  })
})

interface StreamCase {
  name: string
  url?: string
  status?: number
  chunks?: Piece[]
  length?: boolean
  mode: 'read' | 'readInto' | 'readAll'
  size?: number
  bufferSize?: number
  error?: string
}

/** What stream_read reports (capsules/sdk-selftest). */
interface StreamRead {
  error: { code: string } | null
  status: number
  handle: string
  pieces: number[]
  bytes: number
  bytesRead: number
  fnv1a32: string
  done: boolean
  afterEnd: boolean
  afterClose: boolean
}

const DEFAULT_STREAM_BUFFER = 256 * 1024

describe('stream() read to its end through the SDK (the trapping read path)', () => {
  const { cases } = fixture<{ cases: StreamCase[] }>('streams.json')
  cases.forEach((c, i) => {
    if (c.chunks) routes.set(`/stream/${i}`, { status: c.status, chunks: c.chunks.flatMap(pieceBytes), length: c.length })
  })
  test.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const url = c.url !== undefined ? urlOf(c) : `http://api.test:${server.port}/stream/${i}`
    const input = { request: { make: 'get', url }, mode: c.mode, size: c.size ?? 0, bufferSize: c.bufferSize ?? 0 }
    const got = (await selftest.call('stream_read', input)).json<StreamRead>()
    if (c.error !== undefined) {
      expect(got).toMatchObject({ error: { code: c.error }, status: 0, handle: '', pieces: [], bytes: 0, done: false, afterEnd: true, afterClose: true })
      return
    }
    const body = Buffer.concat((c.chunks ?? []).flatMap(pieceBytes))
    expect(got).toMatchObject({ error: null, status: c.status ?? 200, bytes: body.length, bytesRead: body.length, fnv1a32: fnv1a32(body), done: true, afterEnd: true, afterClose: true })
    const bound = c.mode === 'readInto' ? c.size! : c.mode === 'readAll' ? Infinity : (c.bufferSize ?? 0) > 0 ? c.bufferSize! : DEFAULT_STREAM_BUFFER
    expect(got.pieces.filter((n) => n > bound || n === 0)).toEqual(c.mode === 'readAll' && body.length === 0 ? [0] : [])
    if (c.mode === 'readAll') expect(got.pieces).toEqual([body.length])
  })

  test('a read that fails (the socket reset mid-body) fails the whole call with the host code', async () => {
    const input = { request: { make: 'get', url: `http://api.test:${server.port}/reset` }, mode: 'read' }
    await expect(selftest.call('stream_read', input)).rejects.toMatchObject({ code: 'capsule_failed', hostCode: 'network' })
  })
})

describe('parseJsonString: a document given as an AssemblyScript string', () => {
  const units = (s: string) => Array.from({ length: s.length }, (_, i) => s.charCodeAt(i).toString(16).padStart(4, '0')).join('')
  test.each<[string, string, unknown]>([
    ['reads as parseJson reads its UTF-8', '{"a":[1,"\u00e9\ud83d\ude00"],"b":-0.0}', { a: [1, '\u00e9\ud83d\ude00'], b: -0 }],
    ['a lone surrogate in the string is encoded as U+FFFD first', '["a\ud800b"]', ['a\ufffdb']],
    ['a lone surrogate outside a JSON string is not JSON', '[\udc00]', 'unexpected character at byte 1'],
    ['an error names the byte of the UTF-8 form', '["\u00e9",]', 'unexpected character at byte 6'],
  ])('%s', async (_name, text, expected) => {
    const parsed = (await selftest.call('json_parse_string', { utf16: units(text) })).json<Parsed>()
    if (typeof expected === 'string') expect(parsed).toEqual({ ok: false, error: expected })
    else expect(parsed.ok && toJs(parsed.tree)).toEqual(expected)
  })
})
