// Every time limit fits a Node timer: host limits (TypeError), capsule request options (invalid_request), manifests (load_failed).
import { afterAll, describe, expect, test } from 'vitest'
import { CapsuleError, CapsuleHostError } from '../src/errors.js'
import { DEFAULT_LIMITS, resolveLimits } from '../src/limits.js'
import { parseManifest } from '../src/runtime/manifest.js'
import { MAX_TIMER_MS } from '../src/timers.js'
import { parseRequest } from '../src/wire/parse.js'
import { closeAllFetches, errorOf, testFetch } from './helpers/fetch.js'

afterAll(closeAllFetches)

/** [row, value, accepted where no limit is allowed (Infinity spelled out), accepted elsewhere]. */
const ROWS: ReadonlyArray<readonly [string, unknown, boolean, boolean]> = [
  ['0', 0, false, false],
  ['-1', -1, false, false],
  ['1.5', 1.5, false, false],
  ['1', 1, true, true],
  ['MAX_TIMER_MS', MAX_TIMER_MS, true, true],
  ['MAX_TIMER_MS + 1', MAX_TIMER_MS + 1, false, false],
  ['2**31', 2 ** 31, false, false],
  ['Infinity', Number.POSITIVE_INFINITY, true, false],
  ['NaN', Number.NaN, false, false],
  ["'100'", '100', false, false],
]

const HOST_FIELDS = ['connectTimeoutMs', 'firstByteTimeoutMs', 'idleTimeoutMs', 'timeoutMs', 'hostTimeoutMs', 'streamTimeoutMs'] as const
/** Where the design allows "no limit". */
const UNLIMITED = new Set<string>(['streamTimeoutMs'])

const cases = <F extends string>(fields: readonly F[]) =>
  fields.flatMap((field) => ROWS.map(([row, value, unlimited, limited]) => [field, row, value, UNLIMITED.has(field) ? unlimited : limited] as const))

describe('host limits (createSafeFetch)', () => {
  test('hostTimeoutMs defaults to 10 s; streamTimeoutMs to no limit', () => {
    expect(DEFAULT_LIMITS.hostTimeoutMs).toBe(10_000)
    expect(DEFAULT_LIMITS.streamTimeoutMs).toBe(Number.POSITIVE_INFINITY)
    expect(testFetch().limits.hostTimeoutMs).toBe(10_000)
  })

  test.each(cases(HOST_FIELDS))('limits.%s = %s: accepted %s', (field, _row, value, accepted) => {
    const make = () => testFetch({ limits: { [field]: value } })
    if (accepted) expect(make().limits[field]).toBe(value)
    else expect(make).toThrow(new RegExp(`^invalid limits: [^]*→ at ${field}$`))
    if (!accepted) expect(make).toThrow(TypeError)
  })

  test('over the timer maximum, the message says what a timer can hold', () => {
    expect(() => resolveLimits({ hostTimeoutMs: MAX_TIMER_MS + 1 })).toThrow(
      `invalid limits: ✖ must be at most ${MAX_TIMER_MS} ms (what a Node timer can hold)\n  → at hostTimeoutMs`,
    )
  })
})

describe('capsule request options', () => {
  const OPTION_FIELDS = ['timeoutMs', 'connectTimeoutMs', 'firstByteTimeoutMs', 'idleTimeoutMs'] as const

  test.each(cases(OPTION_FIELDS))('options.%s = %s: accepted %s', (field, _row, value, accepted) => {
    const parse = () => parseRequest({ url: 'https://api.test/', options: { [field]: value } }, 1024 * 1024)
    if (accepted) expect(parse().options?.[field]).toBe(value)
    else {
      expect(parse).toThrow(CapsuleHostError)
      expect(parse).toThrow(expect.objectContaining({ code: 'invalid_request', message: expect.stringContaining(`→ at options.${field}`) }))
    }
  })

  test('an option over the timer maximum is refused as invalid_request before any network', async () => {
    const fetch = testFetch({ rules: { host: 'api.test' } })
    const reply = await fetch.request(JSON.stringify({ url: 'https://api.test/', options: { timeoutMs: MAX_TIMER_MS + 1 } }), { capsuleId: 'c' })
    expect(errorOf(reply)?.code).toBe('invalid_request')
    expect(errorOf(reply)?.message).toContain(`must be at most ${MAX_TIMER_MS} ms`)
  })
})

describe('manifest limits', () => {
  const MANIFEST_FIELDS = ['callTimeoutMs', ...HOST_FIELDS] as const

  test.each(cases(MANIFEST_FIELDS))('limits.%s = %s: accepted %s', (field, _row, value, accepted) => {
    const parse = () => parseManifest({ name: 'm', version: '1', limits: { [field]: value } })
    if (accepted) expect(parse().limits?.[field]).toBe(value)
    else {
      expect(parse).toThrow(CapsuleError)
      expect(parse).toThrow(expect.objectContaining({ code: 'load_failed', message: expect.stringContaining(`→ at limits.${field}`) }))
    }
  })
})
