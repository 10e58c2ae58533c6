// Runs the built capsule (npm run build first) against the mock upstreams of mocks.json, with capsule-host/testing.
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { createTestHost } from 'capsule-host/testing'

const WASM = fileURLToPath(new URL('../build/{{wasmName}}.wasm', import.meta.url))
const MOCKS = fileURLToPath(new URL('../mocks.json', import.meta.url))

// The host resolves greetings.test to its mock server on loopback (https://greetings.test, the
// capsule's own URL, reaches it) and allows nothing else.
let host
before(async () => {
  host = await createTestHost({ mocks: MOCKS })
})
after(() => host.close())

test('greet says the greeting to the name', async () => {
  const result = await host.run(WASM, 'greet', 'Ada')
  assert.equal(result.status, 'ok', result.error?.message)
  assert.equal(result.output, 'Hello, Ada!')
  // One request, allowed and answered 200, with the URL the capsule asked for.
  assert.deepEqual(result.audit.map((event) => [event.allowed, event.status, event.url]), [[true, 200, 'https://greetings.test/greeting']])
  // What the upstream received.
  const [received] = host.upstream('greetings.test').received
  assert.equal(received.method, 'GET')
  assert.equal(received.path, '/greeting')
  assert.equal(received.headers.accept, 'application/json')
})

test('an empty input greets the world', async () => {
  const result = await host.run(WASM, 'greet', '')
  assert.equal(result.output, 'Hello, world!')
})

test('a host the rules do not allow is refused, and the call fails with the reason', async () => {
  // The capsule's config points it elsewhere: the host refuses before any lookup.
  const result = await host.run(WASM, 'greet', 'Ada', { config: { api_url: 'https://elsewhere.test' } })
  assert.equal(result.status, 'failed')
  assert.match(result.error.message, /greeting request failed: denied/)
  assert.deepEqual(result.audit.map((event) => event.allowed), [false])
})

test('an API error fails the call', async () => {
  const broken = await createTestHost({
    mocks: { upstreams: { 'greetings.test': { tls: true, routes: [{ path: '/greeting', status: 503, body: 'down' }] } } },
  })
  try {
    const result = await broken.run(WASM, 'greet', 'Ada')
    assert.equal(result.status, 'failed')
    assert.match(result.error.message, /the greeting API answered 503/)
  } finally {
    await broken.close()
  }
})
