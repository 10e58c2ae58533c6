// The bounded exact-key caches of pure results (URL normalisation, address classification) and the one-pass header object.
import { describe, expect, test } from 'vitest'
import { classifyAddress } from '../src/net/classify.js'
import { headerObject } from '../src/net/headers.js'
import { PureCache } from '../src/pure-cache.js'
import { normaliseUrl } from '../src/url/normalise.js'
import { parseRequest } from '../src/wire/parse.js'

/** A cache over a counting function, so a test sees which keys were computed. */
function counted(maxEntries: number, maxKeyLength = 100) {
  const computed: string[] = []
  const cache = new PureCache((key: string) => {
    computed.push(key)
    if (key === 'bad') throw new TypeError('refused')
    return Object.freeze({ key })
  }, maxEntries, maxKeyLength)
  return { cache, computed }
}

describe('PureCache', () => {
  test('a hit returns the same frozen object; a miss computes once', () => {
    const { cache, computed } = counted(4)
    const first = cache.get('a')
    expect(cache.get('a')).toBe(first)
    expect(computed).toEqual(['a'])
  })

  test('keys are exact: case, spaces and trailing characters are other keys', () => {
    const { cache, computed } = counted(8)
    for (const key of ['a', 'A', 'a ', ' a', 'a/']) cache.get(key)
    expect(computed).toEqual(['a', 'A', 'a ', ' a', 'a/'])
    expect(cache.size).toBe(5)
  })

  test.each([
    // [bound, keys asked in order, keys computed]
    [1, ['a', 'b', 'a'], ['a', 'b', 'a']],
    [2, ['a', 'b', 'a', 'c', 'a', 'b'], ['a', 'b', 'c', 'b']],
    [2, ['a', 'b', 'c', 'a'], ['a', 'b', 'c', 'a']],
    [3, ['a', 'b', 'c', 'a', 'd', 'b', 'a'], ['a', 'b', 'c', 'd', 'b']],
    // A hit on the key used last leaves the order as it is; a hit on another moves that one last.
    [2, ['a', 'b', 'b', 'a', 'c', 'b'], ['a', 'b', 'c', 'b']],
    [2, ['a', 'b', 'b', 'b', 'c', 'a'], ['a', 'b', 'c', 'a']],
    [1, ['a', 'a', 'b', 'b', 'a'], ['a', 'b', 'a']],
  ])('at most %i entries, least recently used out first: %j', (bound, asked, expected) => {
    const { cache, computed } = counted(bound)
    for (const key of asked) cache.get(key)
    expect(computed).toEqual(expected)
    expect(cache.size).toBeLessThanOrEqual(bound)
  })

  test.each([
    [99, true],
    [100, true],
    [101, false],
  ])('a key of %i characters (limit 100) is stored: %s', (length, stored) => {
    const { cache } = counted(4, 100)
    cache.get('k'.repeat(length))
    expect(cache.size).toBe(stored ? 1 : 0)
  })

  test('a compute that throws stores nothing and throws each time', () => {
    const { cache, computed } = counted(4)
    expect(() => cache.get('bad')).toThrow(TypeError)
    expect(() => cache.get('bad')).toThrow(TypeError)
    expect(computed).toEqual(['bad', 'bad'])
    expect(cache.size).toBe(0)
  })
})

describe('normaliseUrl through its cache', () => {
  test('the cached result is frozen and equal to a fresh one; a refusal is refused every time', () => {
    const url = normaliseUrl('http://Cache.Test:8080/a/../b?q=1')
    expect(Object.isFrozen(url)).toBe(true)
    expect(normaliseUrl('http://Cache.Test:8080/a/../b?q=1')).toBe(url)
    expect(url).toMatchObject({ href: 'http://cache.test:8080/b?q=1', hostname: 'cache.test', port: 8080, path: '/b?q=1' })
    for (let i = 0; i < 2; i++) {
      expect(() => normaliseUrl('http://user:pw@cache.test/')).toThrow(expect.objectContaining({ code: 'invalid_request' }))
    }
  })

  test('two spellings of one URL are two keys with equal results', () => {
    const a = normaliseUrl('http://cache.test/x')
    const b = normaliseUrl('HTTP://CACHE.TEST/x')
    expect(b).not.toBe(a)
    expect(b).toEqual(a)
  })
})

describe('classifyAddress through its cache', () => {
  test.each([
    ['127.0.0.1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'ipv4-mapped'],
  ])('%s is %s, frozen all the way down, and the same object again', (text, expected) => {
    const first = classifyAddress(text)!
    expect(first.class).toBe(expected)
    expect(Object.isFrozen(first)).toBe(true)
    expect(Object.isFrozen(first.embedded)).toBe(true)
    expect(first.embedded.every((e) => Object.isFrozen(e))).toBe(true)
    expect(Object.isFrozen(first.parsed)).toBe(true)
    expect(classifyAddress(text)).toBe(first)
  })

  test('not an address: undefined each time, never stored', () => {
    expect(classifyAddress('127.1')).toBeUndefined()
    expect(classifyAddress('127.1')).toBeUndefined()
  })
})

describe('headerObject', () => {
  test.each([
    ['one header', [['a', '1']], { a: '1' }],
    ['repeats joined with ", " in order', [['a', '1'], ['b', '2'], ['a', '3']], { a: '1, 3', b: '2' }],
    ['an empty value is kept', [['a', ''], ['a', 'x']], { a: ', x' }],
    ['no headers', [], {}],
  ] as const)('%s', (_name, pairs, expected) => {
    expect(headerObject(pairs.map(([n, v]) => [n, v] as [string, string]))).toEqual(expected)
  })

  test('__proto__, constructor and toString are own entries, and the prototype is untouched', () => {
    const object = headerObject([['__proto__', 'x'], ['constructor', 'y'], ['__proto__', 'z'], ['tostring', 'w']])
    expect(Object.getPrototypeOf(object)).toBe(Object.prototype)
    expect(Object.keys(object)).toEqual(['__proto__', 'constructor', 'tostring'])
    expect(Object.getOwnPropertyDescriptor(object, '__proto__')?.value).toBe('x, z')
    expect(object.constructor).toBe('y')
    expect(JSON.parse(JSON.stringify(object))).toEqual(JSON.parse('{"__proto__":"x, z","constructor":"y","tostring":"w"}'))
  })
})

describe('parseRequest through its cache of validated request texts', () => {
  const text = JSON.stringify({ url: 'http://cache.test/a', method: 'post', headers: { a: '1' } })

  test('the same text, as bytes or text, gives the same frozen request, validated as ever', () => {
    const first = parseRequest(text, 1 << 20)
    expect(first).toEqual({ url: 'http://cache.test/a', method: 'POST', headers: { a: '1' } })
    expect(Object.isFrozen(first) && Object.isFrozen(first.headers)).toBe(true)
    expect(parseRequest(new TextEncoder().encode(text), 1 << 20)).toBe(first)
  })

  test('a request with a body is validated each time, never kept', () => {
    const withBody = JSON.stringify({ url: 'http://cache.test/a', method: 'POST', body: 'a capsule secret' })
    expect(parseRequest(withBody, 1 << 20)).not.toBe(parseRequest(withBody, 1 << 20))
    const withBase64 = JSON.stringify({ url: 'http://cache.test/a', method: 'POST', bodyBase64: 'AAEC' })
    expect(parseRequest(withBase64, 1 << 20)).not.toBe(parseRequest(withBase64, 1 << 20))
  })

  test.each([
    ['not JSON', '{"url":', 'the request is not valid JSON'],
    ['an unknown field', '{"url":"http://cache.test/","verb":"GET"}', 'invalid request'],
    ['over the size limit', text, 'the request is'],
  ])('%s is refused with invalid_request every time', (_name, bad, message) => {
    const maxBytes = bad === text ? text.length - 1 : 1 << 20
    for (let i = 0; i < 2; i++) {
      expect(() => parseRequest(bad, maxBytes)).toThrow(expect.objectContaining({ code: 'invalid_request', message: expect.stringContaining(message) }))
    }
  })
})
