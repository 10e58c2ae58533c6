// Checks host-author options at creation: unknown names get a suggestion, wrong shapes a teaching message, every documented option passes.
import { afterAll, describe, expect, test } from 'vitest'
import { CapsuleError, createRuntime, createSafeFetch, memoryQuotaStore, type SafeFetch, type SafeFetchOptions } from '../src/index.js'
import { closestName, editDistance } from '../src/options.js'
import { tableResolver } from './helpers/fetch.js'
import { TEST_CA } from './helpers/servers.js'
import { tinyModule } from './helpers/wasm.js'

const made: SafeFetch[] = []
afterAll(async () => {
  await Promise.all(made.map((fetch) => fetch.close()))
})

function safeFetch(options?: unknown): SafeFetch {
  const fetch = createSafeFetch(options as never)
  made.push(fetch)
  return fetch
}

const SAFE_FETCH_NAMES = 'rules, policy, gates, resolver, dnsCache, addressPolicy, tls, limits, maxRedirects, onRequest, onError, auditStream, middleware, quotas, quotaStore, telemetry'
const noop = () => undefined

const UNKNOWN_SAFE_FETCH: ReadonlyArray<{ name: string; options: object; message: string }> = [
  { name: 'rule for rules', options: { rule: [] }, message: 'createSafeFetch: unknown option "rule"; did you mean "rules"?' },
  { name: 'gate for gates', options: { gate: [] }, message: 'createSafeFetch: unknown option "gate"; did you mean "gates"?' },
  { name: 'middlewares', options: { middlewares: [] }, message: 'createSafeFetch: unknown option "middlewares"; did you mean "middleware"?' },
  { name: 'case: onrequest', options: { onrequest: noop }, message: 'createSafeFetch: unknown option "onrequest"; did you mean "onRequest"?' },
  { name: 'case: onerror', options: { onerror: noop }, message: 'createSafeFetch: unknown option "onerror"; did you mean "onError"?' },
  { name: 'case: auditstream', options: { auditstream: process.stderr }, message: 'createSafeFetch: unknown option "auditstream"; did you mean "auditStream"?' },
  { name: 'resolve for resolver', options: { resolve: noop }, message: 'createSafeFetch: unknown option "resolve"; did you mean "resolver"?' },
  { name: 'limit for limits', options: { limit: {} }, message: 'createSafeFetch: unknown option "limit"; did you mean "limits"?' },
  { name: 'maxRedirect', options: { maxRedirect: 1 }, message: 'createSafeFetch: unknown option "maxRedirect"; did you mean "maxRedirects"?' },
  { name: 'swapped letters: plociy', options: { plociy: noop }, message: 'createSafeFetch: unknown option "plociy"; did you mean "policy"?' },
  { name: 'no close match', options: { colour: 'blue' }, message: `createSafeFetch: unknown option "colour"; the options are ${SAFE_FETCH_NAMES}` },
  {
    name: 'addressPolicy.allowed suggests the new name',
    options: { addressPolicy: { allowed: ['127.0.0.1/32'] } },
    message: 'createSafeFetch: unknown option "addressPolicy.allowed"; did you mean "addressPolicy.unsafeAllow"?',
  },
  {
    name: 'case: addressPolicy.unsafeallow',
    options: { addressPolicy: { unsafeallow: [] } },
    message: 'createSafeFetch: unknown option "addressPolicy.unsafeallow"; did you mean "addressPolicy.unsafeAllow"?',
  },
  {
    name: 'addressPolicy key with no close match lists only the new name',
    options: { addressPolicy: { cidrs: [] } },
    message: 'createSafeFetch: unknown option "addressPolicy.cidrs"; the options are addressPolicy.unsafeAllow',
  },
  { name: 'case: tls.CA', options: { tls: { CA: TEST_CA } }, message: 'createSafeFetch: unknown option "tls.CA"; did you mean "tls.ca"?' },
  { name: 'tls.cert (no client certificates)', options: { tls: { cert: TEST_CA } }, message: 'createSafeFetch: unknown option "tls.cert"; the options are tls.ca' },
]

const BAD_SAFE_FETCH: ReadonlyArray<{ name: string; options: unknown; message: string }> = [
  { name: 'options a string', options: 'api.test', message: 'createSafeFetch: options must be an object, not a string' },
  { name: 'options null', options: null, message: 'createSafeFetch: options must be an object, not null' },
  {
    name: 'rules a string',
    options: { rules: 'api.example.com' },
    message: 'createSafeFetch: rules must be a rule or an array of rules, such as { host: "api.example.com" }, not a string',
  },
  { name: 'policy a string', options: { policy: 'yes' }, message: 'createSafeFetch: policy must be a function, not a string' },
  { name: 'resolver an array', options: { resolver: ['127.0.0.1'] }, message: 'createSafeFetch: resolver must be a function, not an array' },
  { name: 'dnsCache true', options: { dnsCache: true }, message: 'createSafeFetch: dnsCache must be false or an object such as { maxEntries: 1000, maxTtlMs: 60000 }, not a boolean' },
  { name: 'dnsCache.maxEntrys', options: { dnsCache: { maxEntrys: 5 } }, message: 'createSafeFetch: unknown option "dnsCache.maxEntrys"; did you mean "dnsCache.maxEntries"?' },
  { name: 'dnsCache floor above its ceiling', options: { dnsCache: { minTtlMs: 2, maxTtlMs: 1 } }, message: 'createSafeFetch: dnsCache.minTtlMs (2) must not be more than dnsCache.maxTtlMs (1)' },
  { name: 'onRequest an object', options: { onRequest: {} }, message: 'createSafeFetch: onRequest must be a function, not an object' },
  { name: 'onError a string', options: { onError: 'log' }, message: 'createSafeFetch: onError must be a function, not a string' },
  {
    name: 'gates an object',
    options: { gates: {} },
    message: 'createSafeFetch: gates must be an array of gates, such as [{ name: "tenant", check(request) { ... } }], not an object',
  },
  { name: 'a gate without check', options: { gates: [{ name: 'tenant' }] }, message: 'createSafeFetch: gates[0]: a gate is { name: string, check(request) }' },
  { name: 'addressPolicy an array', options: { addressPolicy: ['127.0.0.1/32'] }, message: 'createSafeFetch: addressPolicy must be an object, not an array' },
  {
    name: 'addressPolicy.allow a string',
    options: { addressPolicy: { allow: '127.0.0.1/32' } },
    message: 'createSafeFetch: addressPolicy.allow must be an array of CIDR strings, such as ["127.0.0.1/32"], not a string',
  },
  {
    name: 'addressPolicy.unsafeAllow a string',
    options: { addressPolicy: { unsafeAllow: '127.0.0.1/32' } },
    message: 'createSafeFetch: addressPolicy.unsafeAllow must be an array of CIDR strings, such as ["127.0.0.1/32"], not a string',
  },
  {
    name: 'addressPolicy.unsafeAllow with a number',
    options: { addressPolicy: { unsafeAllow: ['127.0.0.1/32', 7] } },
    message: 'createSafeFetch: addressPolicy.unsafeAllow[1] must be a CIDR string, such as "127.0.0.1/32", not a number',
  },
  {
    name: 'both names of the exemption',
    options: { addressPolicy: { unsafeAllow: ['127.0.0.1/32'], allow: ['127.0.0.1/32'] } },
    message: 'createSafeFetch: addressPolicy: give "unsafeAllow" or its deprecated alias "allow", not both',
  },
  {
    name: 'a bad CIDR names unsafeAllow',
    options: { addressPolicy: { unsafeAllow: ['nope'] } },
    message: 'addressPolicy.unsafeAllow: "nope" is not a CIDR; write it as "127.0.0.1/32" or "fd00::/8"',
  },
  {
    name: 'a bad CIDR under the alias names allow',
    options: { addressPolicy: { allow: ['nope'] } },
    message: 'addressPolicy.allow: "nope" is not a CIDR; write it as "127.0.0.1/32" or "fd00::/8"',
  },
  { name: 'tls a PEM string', options: { tls: '-----BEGIN CERTIFICATE-----' }, message: 'createSafeFetch: tls must be an object, not a string' },
  { name: 'tls a Buffer', options: { tls: Buffer.from('pem') }, message: 'createSafeFetch: tls must be an object, not a Buffer' },
  { name: 'tls.ca a number', options: { tls: { ca: 5 } }, message: 'createSafeFetch: tls.ca must be a PEM string or Buffer, or an array of them, not a number' },
  { name: 'tls.ca list with a number', options: { tls: { ca: [TEST_CA, 5] } }, message: 'createSafeFetch: tls.ca[1] must be a PEM string or Buffer, not a number' },
  { name: 'limits a string', options: { limits: 'fast' }, message: 'createSafeFetch: limits must be an object, not a string' },
  { name: 'maxRedirects negative', options: { maxRedirects: -1 }, message: 'createSafeFetch: maxRedirects must be a whole number >= 0, not -1' },
  { name: 'maxRedirects fractional', options: { maxRedirects: 1.5 }, message: 'createSafeFetch: maxRedirects must be a whole number >= 0, not 1.5' },
  {
    name: 'auditStream without write',
    options: { auditStream: {} },
    message: 'createSafeFetch: auditStream must have a write(chunk) function, such as process.stderr, not an object',
  },
  { name: 'middleware a string', options: { middleware: 'auth' }, message: 'createSafeFetch: middleware: middleware must be a function (ctx, next) => ...' },
  { name: 'middleware list with a number', options: { middleware: [noop, 1] }, message: 'createSafeFetch: middleware[1]: middleware must be a function (ctx, next) => ...' },
]

describe('createSafeFetch', () => {
  test.each([...UNKNOWN_SAFE_FETCH, ...BAD_SAFE_FETCH])('$name', ({ options, message }) => {
    expect(() => safeFetch(options)).toThrow(new TypeError(message))
    expect(() => safeFetch(options)).toThrow(TypeError)
  })

  test('every documented option is accepted at once, and unsafeAllow opens its CIDR', async () => {
    const fetch = safeFetch({
      rules: { host: 'api.test' },
      policy: () => false,
      gates: [{ name: 'open', check: () => ({ allow: true }) }],
      resolver: tableResolver({ 'api.test': ['127.0.0.1'] }),
      dnsCache: { maxEntries: 10, minTtlMs: 0, maxTtlMs: 60_000, defaultTtlMs: 5_000 },
      addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
      tls: { ca: [TEST_CA, Buffer.from(TEST_CA)] },
      limits: { timeoutMs: 5_000 },
      maxRedirects: 2,
      onRequest: noop,
      onError: noop,
      auditStream: { write: () => true },
      middleware: [async (_ctx, next) => next()],
      quotas: [{ key: 'capsule', requests: { limit: 10, windowMs: 1000 } }],
      quotaStore: memoryQuotaStore(),
      telemetry: { propagateTraceContext: true },
    } satisfies Required<SafeFetchOptions>)
    await expect(fetch.explain({ url: 'https://api.test/' }, { capsuleId: 'c' })).resolves.toMatchObject({ allowed: true })
  })

  test.each([
    { name: 'unsafeAllow', addressPolicy: { unsafeAllow: ['127.0.0.1/32'] }, allowed: true },
    { name: 'the deprecated alias allow', addressPolicy: { allow: ['127.0.0.1/32'] }, allowed: true },
    { name: 'no exemption', addressPolicy: {}, allowed: false },
  ])('loopback through $name: allowed $allowed', async ({ addressPolicy, allowed }) => {
    const fetch = safeFetch({ rules: { host: 'api.test' }, resolver: tableResolver({ 'api.test': ['127.0.0.1'] }), addressPolicy })
    await expect(fetch.explain({ url: 'https://api.test/' }, { capsuleId: 'c' })).resolves.toMatchObject({ allowed })
  })
})

describe('createRuntime', () => {
  const fetch = safeFetch({})
  const ROWS: ReadonlyArray<{ name: string; options: unknown; message: string }> = [
    { name: 'limit for limits', options: { fetch, limit: {} }, message: 'createRuntime: unknown option "limit"; did you mean "limits"?' },
    { name: 'isolaton', options: { fetch, isolaton: 'inline' }, message: 'createRuntime: unknown option "isolaton"; did you mean "isolation"?' },
    { name: 'case: modulecachesize', options: { fetch, modulecachesize: 2 }, message: 'createRuntime: unknown option "modulecachesize"; did you mean "moduleCacheSize"?' },
    {
      name: 'rules belong to the safe fetch: no close match',
      options: { fetch, rules: [] },
      message: 'createRuntime: unknown option "rules"; the options are fetch, isolation, pool, limits, moduleCacheSize, onLog, logLevel',
    },
    { name: 'no fetch', options: {}, message: 'createRuntime: "fetch" must be a safe fetch from createSafeFetch(...)' },
    { name: 'options undefined', options: undefined, message: 'createRuntime: "fetch" must be a safe fetch from createSafeFetch(...)' },
    { name: 'isolation thread', options: { fetch, isolation: 'thread' }, message: 'createRuntime: isolation must be "worker", "inline" or "pool", not "thread"' },
    { name: 'limits a number', options: { fetch, limits: 5 }, message: 'createRuntime: limits must be an object, not a number' },
    { name: 'onlog', options: { fetch, onlog: () => {} }, message: 'createRuntime: unknown option "onlog"; did you mean "onLog"?' },
    { name: 'onLog a string', options: { fetch, onLog: 'stderr' }, message: 'createRuntime: onLog must be a function, not a string' },
    { name: 'logLevel warning', options: { fetch, logLevel: 'warning' }, message: 'createRuntime: logLevel must be one of "trace", "debug", "info", "warn", "error", not "warning"; did you mean "warn"?' },
    { name: 'logLevel stdout (not a filter level)', options: { fetch, logLevel: 'stdout' }, message: 'createRuntime: logLevel must be one of "trace", "debug", "info", "warn", "error", not "stdout"' },
    { name: 'logLevel a number', options: { fetch, logLevel: 2 }, message: 'createRuntime: logLevel must be one of "trace", "debug", "info", "warn", "error", not 2' },
    { name: 'wasi belongs to load', options: { fetch, wasi: {} }, message: 'createRuntime: unknown option "wasi"; the options are fetch, isolation, pool, limits, moduleCacheSize, onLog, logLevel' },
  ]
  test.each(ROWS)('$name', ({ options, message }) => {
    expect(() => createRuntime(options as never)).toThrow(new TypeError(message))
    expect(() => createRuntime(options as never)).toThrow(TypeError)
  })
})

describe('runtime.load', () => {
  const fetch = safeFetch({})
  const runtime = createRuntime({ fetch, isolation: 'worker', limits: { callTimeoutMs: 10_000 }, moduleCacheSize: 2 })
  afterAll(() => runtime.close())
  const wasm = tinyModule({ exports: ['f'] })
  const LOAD_NAMES = 'wasm, manifest, id, config, isolation, limits, onLog, logLevel, wasi'
  const ROWS: ReadonlyArray<{ name: string; options: unknown; message: string }> = [
    { name: 'swapped letters: wsam', options: { wsam: wasm }, message: 'load: unknown option "wsam"; did you mean "wasm"?' },
    { name: 'manfest', options: { wasm, manfest: {} }, message: 'load: unknown option "manfest"; did you mean "manifest"?' },
    { name: 'case: ID', options: { wasm, ID: 'x' }, message: 'load: unknown option "ID"; did you mean "id"?' },
    { name: 'no close match', options: { wasm, capsuleId: 'x' }, message: `load: unknown option "capsuleId"; the options are ${LOAD_NAMES}` },
    { name: 'options undefined', options: undefined, message: 'load: options must be an object, such as { wasm: "capsule.wasm" }' },
    { name: 'options a string', options: 'capsule.wasm', message: 'load: options must be an object, not a string' },
    { name: 'wasm a number', options: { wasm: 5 }, message: "load: wasm must be a file path, a URL or the module's bytes, not a number" },
    { name: 'manifest a number', options: { wasm, manifest: 5 }, message: 'load: manifest must be a manifest object (a capsule.json or an Extism manifest) or the path of one, not a number' },
    { name: 'empty id', options: { wasm, id: '' }, message: 'load: id must be a non-empty string' },
    { name: 'config values not strings', options: { wasm, config: { retries: 3 } }, message: 'load: config must be an object of string values, such as { "region": "eu" }' },
    { name: 'config an array', options: { wasm, config: ['eu'] }, message: 'load: config must be an object of string values, such as { "region": "eu" }' },
    { name: 'isolation thread', options: { wasm, isolation: 'thread' }, message: 'load: isolation must be "worker", "inline" or "pool", not "thread"' },
    { name: 'limits a string', options: { wasm, limits: 'low' }, message: 'load: limits must be an object, not a string' },
    { name: 'onLog an object', options: { wasm, onLog: {} }, message: 'load: onLog must be a function, not an object' },
    { name: 'logLevel INFO', options: { wasm, logLevel: 'INFO' }, message: 'load: logLevel must be one of "trace", "debug", "info", "warn", "error", not "INFO"; did you mean "info"?' },
    { name: 'loglevel', options: { wasm, loglevel: 'info' }, message: 'load: unknown option "loglevel"; did you mean "logLevel"?' },
    { name: 'wasi an array', options: { wasm, wasi: [] }, message: 'load: wasi must be an object, not an array' },
    { name: 'wasi.argv', options: { wasm, wasi: { argv: [] } }, message: 'load: unknown option "wasi.argv"; did you mean "wasi.args"?' },
    { name: 'wasi.fs (never granted)', options: { wasm, wasi: { fs: {} } }, message: 'load: unknown option "wasi.fs"; the options are wasi.args, wasi.env' },
    { name: 'wasi.args a string', options: { wasm, wasi: { args: '--x' } }, message: 'load: wasi.args must be an array of strings, such as ["--verbose"], not a string' },
    { name: 'wasi.args with a number', options: { wasm, wasi: { args: ['a', 1] } }, message: 'load: wasi.args[1] must be a string, not a number' },
    { name: 'wasi.args with a NUL', options: { wasm, wasi: { args: ['a\0b'] } }, message: 'load: wasi.args[0] contains a NUL character, which WASI cannot pass' },
    { name: 'wasi.env an array', options: { wasm, wasi: { env: ['A=1'] } }, message: 'load: wasi.env must be an object of string values, such as { "TZ": "UTC" }, not an array' },
    { name: 'wasi.env a number value', options: { wasm, wasi: { env: { A: 1 } } }, message: 'load: wasi.env.A must be a string, not a number' },
    { name: 'wasi.env a name with =', options: { wasm, wasi: { env: { 'A=B': 'x' } } }, message: 'load: wasi.env: "A=B" is not a variable name (it must be non-empty, without "=" or NUL)' },
    { name: 'wasi.env an empty name', options: { wasm, wasi: { env: { '': 'x' } } }, message: 'load: wasi.env: "" is not a variable name (it must be non-empty, without "=" or NUL)' },
    { name: 'wasi.env a value with a NUL', options: { wasm, wasi: { env: { A: 'x\0' } } }, message: 'load: wasi.env.A contains a NUL character, which WASI cannot pass' },
  ]
  test.each(ROWS)('$name is load_failed', async ({ options, message }) => {
    const error = await runtime.load(options as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CapsuleError)
    expect(error).toMatchObject({ code: 'load_failed', message })
  })

  test('every documented load option is accepted at once', async () => {
    const capsule = await runtime.load({
      wasm,
      manifest: { name: 'every-option', version: '1.0.0' },
      id: 'every-option',
      config: { region: 'eu' },
      isolation: 'worker',
      limits: { callTimeoutMs: 5_000 },
      onLog: () => {},
      logLevel: 'debug',
      wasi: { args: ['every-option'], env: { TZ: 'UTC' } },
    })
    expect(capsule.id).toBe('every-option')
    await capsule.unload()
  })
})

describe('suggestions', () => {
  test.each([
    ['rule', 'rules', 1],
    ['plociy', 'policy', 2],
    ['', 'abc', 3],
    ['kitten', 'sitting', 3],
  ])('editDistance(%j, %j) = %i', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance)
  })
  test.each([
    ['rule', ['rules', 'policy'], 'rules'],
    ['ca', ['id'], undefined],
    ['timeout', ['rules', 'limits'], undefined],
    ['LIMITS', ['rules', 'limits'], 'limits'],
  ])('closestName(%j, %j) = %j', (name, known, expected) => {
    expect(closestName(name, known)).toBe(expected)
  })
})
