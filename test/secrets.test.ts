// Secret redaction: the forms a value adds, injected-header derivations, matching rules, the streamed reader at every split, and the secret() scope.
import { describe, expect, test } from 'vitest'
import { REDACTED, RequestSecrets, secret, withSecrets } from '../src/fetch/secrets.js'
import type { BodyReader } from '../src/net/transport/types.js'

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8')
const text = (data: Uint8Array): string => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')

function secretsOf(...values: string[]): RequestSecrets {
  const secrets = new RequestSecrets()
  for (const value of values) secrets.add(value)
  return secrets
}

/**
 * How the chunks of a ChunkReader come: each from the network when a read asks for it (nothing
 * buffered between reads), one turn of the event loop after the last read (as from a socket with
 * more data on the way), or all already received (`buffered` counts what is left).
 */
type Arrival = 'arriving' | 'next-turn' | 'queued'
const arrivals: Arrival[] = ['arriving', 'next-turn', 'queued']

/** A reader over fixed chunks, one chunk (or its first `maxBytes`) per read, optionally failing at the end. */
class ChunkReader implements BodyReader {
  readonly #chunks: Buffer[]
  readonly #failure: Error | undefined
  readonly #arrival: Arrival
  bytesRead = 0
  cancelled = 0
  constructor(chunks: ReadonlyArray<string | Buffer>, { failure, arrival = 'arriving' }: { failure?: Error; arrival?: Arrival } = {}) {
    this.#chunks = chunks.map((c) => (typeof c === 'string' ? bytes(c) : c))
    this.#failure = failure
    this.#arrival = arrival
  }
  /** For `next-turn`: whether a turn of the event loop passed since the last read. */
  #turned = false
  get buffered(): number {
    const left = this.#chunks.reduce((sum, chunk) => sum + chunk.length, 0)
    return this.#arrival === 'queued' || (this.#arrival === 'next-turn' && this.#turned) ? left : 0
  }
  async read(maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array | null> {
    this.#turned = false
    if (this.#arrival === 'next-turn') setImmediate(() => (this.#turned = true))
    const chunk = this.#chunks.shift()
    if (chunk === undefined) {
      if (this.#failure) throw this.#failure
      return null
    }
    if (chunk.length > maxBytes) this.#chunks.unshift(chunk.subarray(maxBytes))
    const piece = chunk.subarray(0, maxBytes)
    this.bytesRead += piece.length
    return piece
  }
  cancel(): void {
    this.cancelled++
  }
}

/** Reads to the end, checking every chunk is non-empty and within `maxBytes`. */
async function drain(reader: BodyReader, maxBytes?: number): Promise<string[]> {
  const chunks: string[] = []
  for (let chunk = await reader.read(maxBytes); chunk !== null; chunk = await reader.read(maxBytes)) {
    expect(chunk.byteLength).toBeGreaterThan(0)
    expect(chunk.byteLength).toBeLessThanOrEqual(maxBytes ?? Number.POSITIVE_INFINITY)
    chunks.push(Buffer.from(chunk).toString('latin1'))
  }
  return chunks
}
const joined = (chunks: string[]): string => Buffer.from(chunks.join(''), 'latin1').toString('utf8')

/** The rule spelt out byte by byte: at each position the longest pattern that starts there, else the byte. */
function reference(patterns: Buffer[], data: Buffer): { out: Buffer; count: number } {
  const out: Buffer[] = []
  let count = 0
  for (let i = 0; i < data.length; ) {
    const hit = patterns.filter((p) => data.subarray(i, i + p.length).equals(p)).sort((a, b) => b.length - a.length)[0]
    if (hit) {
      out.push(bytes(REDACTED))
      count++
      i += hit.length
    } else out.push(data.subarray(i, ++i))
  }
  return { out: Buffer.concat(out), count }
}

describe('REDACTED', () => {
  test('is the fixed marker', () => {
    expect(REDACTED).toBe('[redacted]')
  })
})

describe('add', () => {
  const rows: Array<{ name: string; values: string[]; size: number; echo: string; expected: string }> = [
    { name: 'an empty value is ignored', values: [''], size: 0, echo: 'x', expected: 'x' },
    { name: 'a plain ASCII value is one pattern', values: ['abcdefgh'], size: 1, echo: 'abcdefgh', expected: REDACTED },
    { name: 'the same value twice is one pattern', values: ['abcdefgh', 'abcdefgh'], size: 1, echo: 'abcdefgh', expected: REDACTED },
    { name: 'a quote adds the JSON and percent forms', values: ['ab"cdefg'], size: 3, echo: '{"v":"ab\\"cdefg"}', expected: '{"v":"[redacted]"}' },
    { name: 'the percent form of a quote', values: ['ab"cdefg'], size: 3, echo: '?q=ab%22cdefg&', expected: '?q=[redacted]&' },
    { name: 'a backslash adds the JSON form', values: ['ab\\cdefg'], size: 3, echo: '"ab\\\\cdefg"', expected: `"${REDACTED}"` },
    { name: 'a slash adds the PHP JSON form and the percent form', values: ['ab/cdefg'], size: 3, echo: 'ab\\/cdefg ab%2Fcdefg ab/cdefg', expected: `${REDACTED} ${REDACTED} ${REDACTED}` },
    { name: 'a control character adds the JSON form', values: ['ab\ncdefg'], size: 3, echo: '"ab\\ncdefg"', expected: `"${REDACTED}"` },
    { name: 'a space adds the percent form', values: ['Bearer abcdefgh'], size: 2, echo: 'Bearer%20abcdefgh', expected: REDACTED },
    // UTF-8, the Python/PHP \u form, the percent form and the latin1 bytes (counted among the byte patterns).
    { name: 'a latin1 character', values: ['pässwörd'], size: 4, echo: '"p\\u00e4ssw\\u00f6rd" p%C3%A4ssw%C3%B6rd pässwörd', expected: `"${REDACTED}" ${REDACTED} ${REDACTED}` },
    { name: 'a character above U+00FF has no latin1 form', values: ['€uro-secret'], size: 3, echo: '\\u20acuro-secret', expected: REDACTED },
    { name: 'an astral character as a surrogate pair of \\u escapes', values: ['key😀value'], size: 3, echo: 'key\\ud83d\\ude00value', expected: REDACTED },
    { name: 'a lone surrogate has no percent form', values: ['ab\ud800cdefg'], size: 2, echo: 'ab\\ud800cdefg', expected: REDACTED },
    { name: 'two values', values: ['abcdefgh', 'ijklmnop'], size: 2, echo: 'ijklmnop abcdefgh', expected: `${REDACTED} ${REDACTED}` },
  ]
  test.each(rows)('$name', ({ values, size, echo, expected }) => {
    const secrets = secretsOf(...values)
    expect(secrets.size).toBe(size)
    expect(secrets.scrubText(echo)).toBe(expected)
  })

  test('a value that is not a string is refused', () => {
    expect(() => new RequestSecrets().add(42 as unknown as string)).toThrow(new TypeError('a secret is a string, not number'))
  })
})

describe('addInjectedHeader', () => {
  const token = 'abcdefgh12345'
  const rows: Array<{ name: string; header: string; value: string; counts: boolean; echo: string; expected: string }> = [
    { name: 'Bearer: the whole value and the token', header: 'authorization', value: `Bearer ${token}`, counts: true, echo: `{"authorization":"Bearer ${token}","t":"${token}"}`, expected: '{"authorization":"[redacted]","t":"[redacted]"}' },
    { name: 'Basic: the base64 credential alone and its percent form', header: 'authorization', value: 'Basic dXNlcjpwYXNzd29yZA==', counts: true, echo: 'dXNlcjpwYXNzd29yZA== dXNlcjpwYXNzd29yZA%3D%3D', expected: `${REDACTED} ${REDACTED}` },
    { name: 'token: the credential alone', header: 'authorization', value: 'token ghp_0123456789', counts: true, echo: 'x ghp_0123456789 y', expected: `x ${REDACTED} y` },
    { name: 'a lower-case scheme', header: 'authorization', value: `bearer ${token}`, counts: true, echo: token, expected: REDACTED },
    { name: 'another scheme: the rest after it', header: 'authorization', value: 'Digest username="u", response="0123456789"', counts: true, echo: 'username="u", response="0123456789"', expected: REDACTED },
    { name: 'several spaces after the scheme', header: 'authorization', value: `Bearer   ${token}`, counts: true, echo: `[${token}]`, expected: `[${REDACTED}]` },
    { name: 'a credential of 7 characters is not added alone', header: 'authorization', value: 'Bearer abc1234', counts: true, echo: 'Bearer abc1234 abc1234', expected: `${REDACTED} abc1234` },
    { name: 'a credential of 8 characters is', header: 'authorization', value: 'Bearer abc12345', counts: true, echo: 'Bearer abc12345 abc12345', expected: `${REDACTED} ${REDACTED}` },
    { name: 'characters are code points: 7 astral ones (14 code units) are short', header: 'authorization', value: 'Bearer 😀😀😀😀😀😀😀', counts: true, echo: '😀😀😀😀😀😀😀', expected: '😀😀😀😀😀😀😀' },
    { name: 'a value without a scheme is added whole', header: 'authorization', value: 'rawapikey123', counts: true, echo: 'rawapikey123', expected: REDACTED },
    { name: 'the trimmed value too', header: 'authorization', value: `  Bearer ${token} `, counts: true, echo: `"Bearer ${token}"`, expected: `"${REDACTED}"` },
    { name: 'proxy-authorization', header: 'proxy-authorization', value: `Basic ${token}`, counts: true, echo: `Basic ${token} ${token}`, expected: `${REDACTED} ${REDACTED}` },
    { name: 'a mixed-case header name', header: 'Authorization', value: `Bearer ${token}`, counts: true, echo: token, expected: REDACTED },
    { name: 'cookie: the whole value and each long value', header: 'cookie', value: `session=${token}; theme=dark`, counts: true, echo: `session=${token}; theme=dark {"session":"${token}","theme":"dark"}`, expected: `${REDACTED} {"session":"${REDACTED}","theme":"dark"}` },
    { name: 'cookie: a quoted value, with and without its quotes', header: 'cookie', value: `sid="${token}"`, counts: true, echo: `"${token}" ${token}`, expected: `${REDACTED} ${REDACTED}` },
    { name: 'cookie: a value without a name', header: 'cookie', value: `${token}; a=b`, counts: true, echo: `=${token}=`, expected: `=${REDACTED}=` },
    { name: 'cookie: a value of 7 characters is not added alone', header: 'cookie', value: 'a=1234567', counts: true, echo: 'a=1234567 1234567', expected: `${REDACTED} 1234567` },
    { name: 'cookie: names are not secrets', header: 'cookie', value: 'longcookiename=v', counts: true, echo: 'longcookiename', expected: 'longcookiename' },
    { name: 'an empty authorization adds nothing but counts', header: 'authorization', value: '', counts: true, echo: 'Bearer', expected: 'Bearer' },
    { name: 'another header is not a secret', header: 'x-api-key', value: token, counts: false, echo: token, expected: token },
    { name: 'set-cookie is not a request credential', header: 'set-cookie', value: `a=${token}`, counts: false, echo: token, expected: token },
  ]
  test.each(rows)('$name', ({ header, value, counts, echo, expected }) => {
    const secrets = new RequestSecrets()
    expect(secrets.addInjectedHeader(header, value)).toBe(counts)
    expect(secrets.scrubText(echo)).toBe(expected)
  })

  test('Bearer adds exactly the whole value, the token and the percent form of the whole value', () => {
    const secrets = new RequestSecrets()
    secrets.addInjectedHeader('authorization', 'Bearer abcdefgh12345')
    expect(secrets.size).toBe(3)
    expect(new RequestSecrets().size).toBe(0)
  })
})

describe('matching', () => {
  const rows: Array<{ name: string; secrets: string[]; input: string; expected: string; count: number }> = [
    { name: 'no match leaves the text', secrets: ['abcdefgh'], input: 'abcdefg hbcdefgh', expected: 'abcdefg hbcdefgh', count: 0 },
    { name: 'at the very start', secrets: ['abcdefgh'], input: 'abcdefgh tail', expected: `${REDACTED} tail`, count: 1 },
    { name: 'at the very end', secrets: ['abcdefgh'], input: 'head abcdefgh', expected: `head ${REDACTED}`, count: 1 },
    { name: 'the whole input', secrets: ['abcdefgh'], input: 'abcdefgh', expected: REDACTED, count: 1 },
    { name: 'adjacent occurrences', secrets: ['abcdefgh'], input: 'abcdefghabcdefgh', expected: REDACTED + REDACTED, count: 2 },
    { name: 'a self-overlapping secret: non-overlapping, leftmost', secrets: ['aaaa'], input: 'aaaaaa', expected: `${REDACTED}aa`, count: 1 },
    { name: 'overlapping secrets: the earliest wins', secrets: ['efghijkl', 'abcdefgh'], input: 'abcdefghijkl', expected: `${REDACTED}ijkl`, count: 1 },
    { name: 'same start: the longest wins', secrets: ['abcd1234', 'abcd1234xyz'], input: 'abcd1234xyz!', expected: `${REDACTED}!`, count: 1 },
    { name: 'a secret inside a longer one that starts earlier', secrets: ['tok12345', 'Bearer tok12345'], input: 'Bearer tok12345 tok12345', expected: `${REDACTED} ${REDACTED}`, count: 2 },
    { name: 'the shorter one where the longer one is incomplete', secrets: ['tok12345', 'Bearer tok12345'], input: 'Bearer tok1234 tok12345', expected: `Bearer tok1234 ${REDACTED}`, count: 1 },
    { name: 'several secrets in one text', secrets: ['first-secret', 'second-secret'], input: 'a second-secret b first-secret c second-secret', expected: `a ${REDACTED} b ${REDACTED} c ${REDACTED}`, count: 3 },
    { name: 'a UTF-8 secret', secrets: ['pässwörd€'], input: 'x pässwörd€ y', expected: `x ${REDACTED} y`, count: 1 },
    { name: 'a secret shorter than the marker', secrets: ['s'], input: 'sss', expected: REDACTED.repeat(3), count: 3 },
    { name: 'a secret that is part of the marker is replaced once', secrets: ['redacted'], input: 'redacted', expected: REDACTED, count: 1 },
  ]

  test.each(rows)('text: $name', ({ secrets: values, input, expected, count }) => {
    const secrets = secretsOf(...values)
    expect(secrets.scrubText(input)).toBe(expected)
    expect(secrets.replacements).toBe(count)
  })

  test.each(rows)('bytes: $name', ({ secrets: values, input, expected, count }) => {
    const secrets = secretsOf(...values)
    const data = bytes(input)
    const out = secrets.scrubBytes(data)
    expect(text(out)).toBe(expected)
    expect(secrets.replacements).toBe(count)
    if (count === 0) expect(out).toBe(data)
  })

  test('bytes: a Uint8Array view with an offset, and the latin1 form of a header value', () => {
    const secrets = secretsOf('pässwörd')
    const backing = new Uint8Array([0x21, ...Buffer.from('<pässwörd>', 'latin1'), 0x21])
    const view = backing.subarray(1, backing.length - 1)
    expect(Buffer.from(secrets.scrubBytes(view)).toString('latin1')).toBe(`<${REDACTED}>`)
    expect(secrets.replacements).toBe(1)
  })

  test('with no secrets every scrub returns its input', () => {
    const secrets = new RequestSecrets()
    const data = bytes('abc')
    const value = { a: ['b'] }
    const headers: Array<[string, string]> = [['a', 'b']]
    const reader = new ChunkReader(['abc'])
    expect(secrets.scrubText('abc')).toBe('abc')
    expect(secrets.scrubBytes(data)).toBe(data)
    expect(secrets.scrubValue(value)).toBe(value)
    expect(secrets.scrubHeaders(headers)).toBe(headers)
    expect(secrets.scrubReader(reader)).toBe(reader)
  })

  test('replacements add up over every scrub call', () => {
    const secrets = secretsOf('abcdefgh')
    secrets.scrubText('abcdefgh abcdefgh')
    secrets.scrubBytes(bytes('abcdefgh'))
    secrets.scrubHeaders([['abcdefgh', 'abcdefgh']])
    secrets.scrubValue({ abcdefgh: ['abcdefgh'] })
    secrets.scrubText('nothing')
    expect(secrets.replacements).toBe(7)
  })

  test('a pattern added after a scrub is used by the next one', () => {
    const secrets = secretsOf('abcdefgh')
    expect(secrets.scrubText('abcdefgh ijklmnop')).toBe(`${REDACTED} ijklmnop`)
    secrets.add('ijklmnop')
    expect(secrets.scrubText('abcdefgh ijklmnop')).toBe(`${REDACTED} ${REDACTED}`)
  })

  test('bytes agree with the rule spelt out byte by byte on 500 seeded random inputs', () => {
    let seed = 7
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n
    const alphabet = 'ab'
    for (let round = 0; round < 500; round++) {
      const values = Array.from({ length: 1 + random(3) }, () => Array.from({ length: 1 + random(4) }, () => alphabet[random(2)]).join(''))
      const secrets = secretsOf(...values)
      const data = bytes(Array.from({ length: random(24) }, () => alphabet[random(2)]).join(''))
      const expected = reference([...new Set(values)].map(bytes), data)
      expect(text(secrets.scrubBytes(data))).toBe(text(expected.out))
      expect(secrets.replacements).toBe(expected.count)
    }
  })
})

describe('scrubValue', () => {
  test('scrubs strings and keys, keeps numbers, booleans, null and the structure', () => {
    const secrets = secretsOf('abcdefgh')
    const input = { n: 1, t: true, z: null, s: 'x abcdefgh', list: ['abcdefgh', 2, { deep: 'abcdefgh' }], abcdefgh: 'key' }
    expect(secrets.scrubValue(input)).toEqual({
      n: 1,
      t: true,
      z: null,
      s: `x ${REDACTED}`,
      list: [REDACTED, 2, { deep: REDACTED }],
      [REDACTED]: 'key',
    })
    expect(secrets.replacements).toBe(4)
    expect(input.list[0]).toBe('abcdefgh')
  })

  test('returns the same objects where nothing matched', () => {
    const secrets = secretsOf('abcdefgh')
    const untouched = { a: [1, 'b'] }
    const input = { untouched, hit: 'abcdefgh' }
    const out = secrets.scrubValue(input) as typeof input
    expect(out).not.toBe(input)
    expect(out.untouched).toBe(untouched)
    expect(secrets.scrubValue(untouched)).toBe(untouched)
    expect(secrets.scrubValue('plain')).toBe('plain')
    expect(secrets.scrubValue(42)).toBe(42)
  })

  test('a __proto__ key stays an own key', () => {
    const secrets = secretsOf('abcdefgh')
    const input = JSON.parse('{"__proto__":{"x":"abcdefgh"}}') as object
    const out = secrets.scrubValue(input) as Record<string, unknown>
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ x: REDACTED })
  })
})

describe('scrubHeaders', () => {
  test('scrubs names and values and keeps order and repeats', () => {
    const secrets = secretsOf('abcdefgh')
    const list = [['x-echo', 'Bearer abcdefgh'], ['x-abcdefgh', 'v'], ['x-echo', 'plain']] as const
    expect(secrets.scrubHeaders(list)).toEqual([['x-echo', `Bearer ${REDACTED}`], [`x-${REDACTED}`, 'v'], ['x-echo', 'plain']])
    expect(list[0][1]).toBe('Bearer abcdefgh')
    expect(secrets.replacements).toBe(2)
  })

  test('returns the same list when nothing matched', () => {
    const secrets = secretsOf('abcdefgh')
    const list: Array<[string, string]> = [['a', 'b']]
    expect(secrets.scrubHeaders(list)).toBe(list)
  })
})

describe('scrubReader', () => {
  const unlimited = undefined
  const maxes = [1, 3, REDACTED.length, unlimited]
  const splitRows = [
    { name: 'an ASCII Bearer header', value: 'Bearer abcdefgh12345' },
    { name: 'a UTF-8 secret (split inside its characters too)', value: 'pässwörd€' },
    { name: 'a secret shorter than the marker', value: 'abcdefgh' },
  ]
  for (const { name, value } of splitRows) {
    for (const [maxBytes, arrival] of maxes.flatMap((m) => arrivals.map((a) => [m, a] as const))) {
      test(`${name}, split at every offset across two chunks, maxBytes ${maxBytes ?? 'unlimited'}, ${arrival}`, async () => {
        const secretBytes = bytes(value)
        for (const [head, tail] of [['head: ', ' :tail'], ['', ''], ['', ' tail'], ['head ', '']]) {
          const body = Buffer.concat([bytes(head!), secretBytes, bytes(tail!)])
          for (let offset = 1; offset < secretBytes.length; offset++) {
            const secrets = secretsOf(value)
            const at = head!.length + offset
            const chunks = await drain(secrets.scrubReader(new ChunkReader([body.subarray(0, at), body.subarray(at)], { arrival })), maxBytes)
            expect(joined(chunks)).toBe(`${head}${REDACTED}${tail}`)
            expect(secrets.replacements).toBe(1)
          }
        }
      })

      test(`${name}, in 1-byte chunks, maxBytes ${maxBytes ?? 'unlimited'}, ${arrival}`, async () => {
        const body = bytes(`a ${value}${value} b ${value}`)
        const secrets = secretsOf(value)
        const ones = Array.from(body, (b) => Buffer.from([b]))
        const chunks = await drain(secrets.scrubReader(new ChunkReader(ones, { arrival })), maxBytes)
        expect(joined(chunks)).toBe(`a ${REDACTED}${REDACTED} b ${REDACTED}`)
        expect(secrets.replacements).toBe(3)
      })
    }
  }

  const exact: Array<{ name: string; chunks: string[]; maxBytes: number | undefined; arrival?: Arrival; expected: string[] }> = [
    // The last (longest - 1) = 7 bytes are always held back until the next chunk or the end, whatever they are.
    { name: 'unlimited: a match across chunks, then the held tail at the end', chunks: ['12abcd', 'efgh34'], maxBytes: unlimited, expected: ['12[redacted]', '34'] },
    { name: 'maxBytes 3 cuts the marker', chunks: ['12abcd', 'efgh34'], maxBytes: 3, expected: ['12', '[re', 'dac', 'ted', ']', '34'] },
    { name: 'maxBytes 10', chunks: ['12abcd', 'efgh34'], maxBytes: 10, expected: ['12[redacte', 'd]', '34'] },
    { name: 'maxBytes 1', chunks: ['xabcdefghy'], maxBytes: 1, expected: ['x', ...'[redacted]', 'y'] },
    { name: 'a tail that cannot start the secret is held back all the same', chunks: ['hello', ' world'], maxBytes: unlimited, expected: ['hell', 'o world'] },
    { name: 'an incomplete secret at the end is flushed as it is', chunks: ['xx', 'abcdefg'], maxBytes: unlimited, expected: ['xx', 'abcdefg'] },
    { name: 'a false start is held exactly as long as any other bytes', chunks: ['xxabc', 'dxfgh'], maxBytes: unlimited, expected: ['xxa', 'bcdxfgh'] },
    // Arriving: the decided part of each chunk goes out at once, and its held tail when the next chunk comes.
    { name: 'arriving chunks go out in two pieces each', chunks: ['xxxxxxxxxxxx', 'yyyyyyyyyyyy', 'zzzzzzzzzzzz'], maxBytes: unlimited, expected: ['xxxxx', 'xxxxxxx', 'yyyyy', 'yyyyyyy', 'zzzzz', 'zzzzzzz'] },
    // Next turn: the reader waits one turn of the event loop for the next chunk, which decides the tail.
    { name: 'chunks one turn apart go out whole', chunks: ['xxxxxxxxxxxx', 'yyyyyyyyyyyy', 'zzzzzzzzzzzz'], maxBytes: unlimited, arrival: 'next-turn', expected: ['xxxxxxxxxxxx', 'yyyyyyyyyyyy', 'zzzzz', 'zzzzzzz'] },
    // Queued: a chunk waits for the next one (already there) to decide its tail, then goes out whole.
    { name: 'queued chunks go out whole, the last one split', chunks: ['xxxxxxxxxxxx', 'yyyyyyyyyyyy', 'zzzzzzzzzzzz'], maxBytes: unlimited, arrival: 'queued', expected: ['xxxxxxxxxxxx', 'yyyyyyyyyyyy', 'zzzzz', 'zzzzzzz'] },
    { name: 'queued: a false start in the tail leaves the chunk whole', chunks: ['xxxxxxxxxxab', 'cXefghyyyyyy', 'zzzzzzzzzzzz'], maxBytes: unlimited, arrival: 'queued', expected: ['xxxxxxxxxxab', 'cXefghyyyyyy', 'zzzzz', 'zzzzzzz'] },
    { name: 'queued: a match in the decided part, the chunk whole', chunks: ['abcdefghxxxxxxxx', 'yyyyyyyyyyyy'], maxBytes: unlimited, arrival: 'queued', expected: ['[redacted]xxxxxxxx', 'yyyyy', 'yyyyyyy'] },
    { name: 'queued: a match across chunks splits at it', chunks: ['xxxxxxxxxxab', 'cdefghyyyyyy', 'zzzzzzzzzzzz'], maxBytes: unlimited, arrival: 'queued', expected: ['xxxxx', 'xxxxx[redacted]', 'yyyyyy', 'zzzzz', 'zzzzzzz'] },
    { name: 'queued, maxBytes 5', chunks: ['xxxxxxxxxxab', 'cdefghyyyyyy'], maxBytes: 5, arrival: 'queued', expected: ['xxx', 'xx', 'xxxxx', '[reda', 'cted]', 'yyyyy', 'y'] },
  ]
  test.each(exact)('exact reads: $name', async ({ chunks, maxBytes, arrival, expected }) => {
    const secrets = secretsOf('abcdefgh')
    expect(await drain(secrets.scrubReader(new ChunkReader(chunks, { arrival })), maxBytes)).toEqual(expected)
  })

  test('what a read returns never depends on whether the held tail starts a secret (no prefix oracle)', async () => {
    const lengths = async (chunks: string[], maxBytes: number | undefined, arrival: Arrival) =>
      (await drain(secretsOf('abcdefgh').scrubReader(new ChunkReader(chunks, { arrival })), maxBytes)).map((c) => c.length)
    for (const [maxBytes, arrival] of [undefined, 1, 3, 7, 64].flatMap((m) => arrivals.map((a) => [m, a] as const))) {
      for (const prefix of ['a', 'ab', 'abc', 'abcdefg']) {
        const other = 'q'.repeat(prefix.length)
        const pair = [`xxxxxxxxxx${prefix}`, 'zzzzzzzzzzzz']
        expect(await lengths(pair, maxBytes, arrival)).toEqual(await lengths([`xxxxxxxxxx${other}`, 'zzzzzzzzzzzz'], maxBytes, arrival))
        expect(await lengths([`xx${prefix}`], maxBytes, arrival)).toEqual(await lengths([`xx${other}`], maxBytes, arrival))
      }
    }
  })

  test('with nothing buffered, holds back at most (longest pattern - 1) bytes', async () => {
    const secrets = secretsOf('abcdefgh')
    const inner = new ChunkReader([...'xyabcdefgabcdefgzz'].map((c) => c))
    const reader = secrets.scrubReader(inner)
    let out = 0
    for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) {
      out += chunk.byteLength
      expect(inner.bytesRead - out).toBeLessThanOrEqual(7)
      expect(reader.bytesRead).toBe(inner.bytesRead)
    }
    expect(out).toBe(18)
    expect(secrets.replacements).toBe(0)
  })

  test('a slow body: the decided part of a chunk goes out before the next chunk comes', async () => {
    let release: (chunk: Uint8Array | null) => void = () => {}
    const later = new Promise<Uint8Array | null>((resolve) => (release = resolve))
    const chunks: Array<Promise<Uint8Array | null>> = [Promise.resolve(bytes('xxxxxxxxxxxx')), later]
    const inner: BodyReader = { bytesRead: 0, buffered: 0, cancel: () => {}, read: () => chunks.shift() ?? Promise.resolve(null) }
    const reader = secretsOf('abcdefgh').scrubReader(inner)
    // The second chunk has not come: only the held tail (7 bytes) waits for it.
    expect(text((await reader.read())!)).toBe('xxxxx')
    const next = reader.read()
    release(bytes('yy'))
    // Joined to the tail, the short chunk leaves the last 7 bytes held in turn, until the end.
    expect(text((await next)!)).toBe('xx')
    expect(text((await reader.read())!)).toBe('xxxxxyy')
    expect(await reader.read()).toBeNull()
  })

  test('a short pattern complete in the held tail waits for a longer one that starts earlier', async () => {
    const secrets = secretsOf('cdef', 'abcdefghij')
    expect(joined(await drain(secrets.scrubReader(new ChunkReader(['xabcdef', 'ghijx']))))).toBe(`x${REDACTED}x`)
    expect(joined(await drain(secretsOf('cdef', 'abcdefghij').scrubReader(new ChunkReader(['xabcdef', 'ghiXx']))))).toBe(`xab${REDACTED}ghiXx`)
    expect(secrets.replacements).toBe(1)
  })

  test('streamed output equals the whole-body scrub on 300 seeded random chunkings', async () => {
    let seed = 11
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n
    for (let round = 0; round < 300; round++) {
      const values = Array.from({ length: 1 + random(3) }, () => Array.from({ length: 1 + random(5) }, () => 'ab'[random(2)]).join(''))
      const body = bytes(Array.from({ length: random(40) }, () => 'abc'[random(3)]).join(''))
      const chunks: Buffer[] = []
      for (let at = 0; at < body.length; ) {
        const size = 1 + random(6)
        chunks.push(body.subarray(at, at + size))
        at += size
      }
      const whole = secretsOf(...values)
      const streamed = secretsOf(...values)
      const maxBytes = [1, 2, 3, 10, undefined][random(5)]
      const out = await drain(streamed.scrubReader(new ChunkReader(chunks, { arrival: arrivals[round % arrivals.length] })), maxBytes)
      expect(joined(out)).toBe(text(whole.scrubBytes(body)))
      expect(streamed.replacements).toBe(whole.replacements)
    }
  })

  test('an error from the inner reader passes through; held bytes are not handed out', async () => {
    const failure = new Error('upstream reset')
    const secrets = secretsOf('abcdefgh')
    const reader = secrets.scrubReader(new ChunkReader(['hello ', 'abcd'], { failure }))
    expect(text((await reader.read())!)).toBe('hel')
    await expect(reader.read()).rejects.toBe(failure)
    await expect(reader.read()).rejects.toBe(failure)
  })

  test('bytesRead and cancel() are the inner reader’s', async () => {
    const inner = new ChunkReader(['abc', 'defgh'])
    const reader = secretsOf('abcdefgh').scrubReader(inner)
    // The first read needs the whole secret before it can hand out anything.
    expect(text((await reader.read(2))!)).toBe('[r')
    expect(reader.bytesRead).toBe(8)
    expect(joined(await drain(reader, 2))).toBe('edacted]')
    reader.cancel()
    expect(inner.cancelled).toBe(1)
  })

  test('maxBytes below 1 is refused', async () => {
    const reader = secretsOf('abcdefgh').scrubReader(new ChunkReader(['x']))
    await expect(reader.read(0)).rejects.toThrow(new RangeError('maxBytes must be at least 1, not 0'))
  })
})

describe('secret() and withSecrets()', () => {
  test('outside a scope secret() throws a TypeError', () => {
    expect(() => secret('abcdefgh')).toThrow(TypeError)
    expect(() => secret('abcdefgh')).toThrow(/^secret\(\) was called outside a middleware/)
  })

  test('inside withSecrets it adds, also after an await, and returns the value unchanged', async () => {
    const secrets = new RequestSecrets()
    const result = await withSecrets(secrets, async () => {
      expect(secret('first-secret')).toBe('first-secret')
      await new Promise((resolve) => setImmediate(resolve))
      return secret('second-secret')
    })
    expect(result).toBe('second-secret')
    expect(secrets.size).toBe(2)
    expect(secrets.scrubText('first-secret second-secret')).toBe(`${REDACTED} ${REDACTED}`)
    expect(() => secret('abcdefgh')).toThrow(TypeError)
  })

  test('concurrent scopes stay apart', async () => {
    const a = new RequestSecrets()
    const b = new RequestSecrets()
    const tick = () => new Promise((resolve) => setImmediate(resolve))
    await Promise.all([
      withSecrets(a, async () => {
        await tick()
        secret('secret-of-a')
      }),
      withSecrets(b, async () => {
        secret('secret-of-b')
        await tick()
        secret('more-of-b!')
      }),
    ])
    expect([a.size, b.size]).toEqual([1, 2])
    expect(a.scrubText('secret-of-b')).toBe('secret-of-b')
  })

  test('withSecrets returns what fn returns, synchronously', () => {
    expect(withSecrets(new RequestSecrets(), () => 7)).toBe(7)
  })
})

describe('what a capsule can make the scan cost', () => {
  test('a cookie middleware appends to: only the added cookie is a secret, not the capsule’s own', () => {
    const own = Array.from({ length: 100 }, (_, i) => `c${i}=capsule-own-value-${i}`).join('; ')
    const secrets = new RequestSecrets()
    expect(secrets.addInjectedHeader('cookie', `${own}; session=host-session-token-1`, own)).toBe(true)
    // The whole header (as written and trimmed, in its forms) and the one added value: no capsule value.
    expect(secrets.scrubText('capsule-own-value-7 host-session-token-1')).toBe(`capsule-own-value-7 ${REDACTED}`)
    expect(secrets.size).toBeLessThanOrEqual(4)
  })

  test('a body made of the anchor of a pattern is scrubbed exactly (the search falls back to the whole pattern)', () => {
    const secrets = new RequestSecrets()
    secrets.add('ZzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzZ')
    // Every 6 bytes hold the pattern's anchor ("Zzzzzz") and none holds the pattern.
    const body = Buffer.alloc(6 * 40_000, 'Zzzzzz')
    expect(secrets.scrubBytes(body)).toBe(body)
    const planted = Buffer.concat([body, bytes('ZzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzZ'), body])
    expect(text(secrets.scrubBytes(planted))).toBe(`${'Zzzzzz'.repeat(40_000)}${REDACTED}${'Zzzzzz'.repeat(40_000)}`)
  })
})
