// Plugins built by Extism's maintainers (../shared/fixtures/extism-plugins) load and behave under capsule-host, in each isolation.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test } from 'vitest'
import { createRuntime, type Runtime } from '../src/index.js'
import { describeIsolations, type Isolation } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/extism-plugins/', import.meta.url))
const present = existsSync(FIXTURES)
const fixture = (name: string) => `${FIXTURES}${name}.wasm`

const runtimes: Runtime[] = []
function runtimeFor(isolation: Isolation, limits = {}): Runtime {
  const runtime = createRuntime({ fetch: testFetch(), isolation, limits })
  runtimes.push(runtime)
  return runtime
}
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
})

describe.skipIf(!present)(present ? 'Extism fixtures' : `Extism fixtures: SKIPPED, ${FIXTURES} is absent`, () => {
  describeIsolations('isolation %s', (isolation) => {
    test('code.wasm counts vowels; its total is an Extism var that adds up across calls', async () => {
      const code = await runtimeFor(isolation).load({ wasm: fixture('code') })
      expect((await code.call('count_vowels', 'hello world')).json()).toEqual({ count: 3, total: 3, vowels: 'aeiouAEIOU' })
      expect((await code.call('count_vowels', 'AEIOU y')).json()).toEqual({ count: 5, total: 8, vowels: 'aeiouAEIOU' })
      expect((await code.call('count_vowels', 'xyz')).json()).toEqual({ count: 0, total: 8, vowels: 'aeiouAEIOU' })
    })

    // Inputs around the PDK's 8-byte loads and stores: shorter than one, exactly one, one over.
    test.each([1, 7, 8, 9, 15, 16, 4096, 65537])('echo.wasm returns %i bytes of input unchanged', async (size) => {
      const echo = await runtimeFor(isolation).load({ wasm: fixture('echo') })
      const input = Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff)
      expect((await echo.call('echo', input)).bytes()).toEqual(input)
    })

    test.each([1, 7, 8, 9, 1024])('consume.wasm reads %i bytes of input and returns nothing', async (size) => {
      const consume = await runtimeFor(isolation).load({ wasm: fixture('consume') })
      expect((await consume.call('consume', new Uint8Array(size).fill(0x61))).bytes()).toEqual(new Uint8Array(0))
    })

    // The boundary below one byte: these Rust PDK builds trap in their own code on an empty input
    // (a Wasm memory access out of bounds, not a host function), under Extism's JS SDK as here.
    test.each([['echo'], ['consume']])('%s.wasm with an empty input traps in the plugin: capsule_failed', async (name) => {
      const plugin = await runtimeFor(isolation).load({ wasm: fixture(name) })
      await expect(plugin.call(name, new Uint8Array(0))).rejects.toMatchObject({ code: 'capsule_failed', message: `the call to "${name}" failed: memory access out of bounds` })
    })

    test('allocations.wasm allocates Extism blocks and returns nothing, call after call', async () => {
      const allocations = await runtimeFor(isolation).load({ wasm: fixture('allocations') })
      for (let i = 0; i < 3; i++) expect((await allocations.call('allocations', 'x')).bytes().byteLength).toBe(0)
    })

    test('globals.wasm (WASI reactor) counts up across calls on one instance', async () => {
      const globals = await runtimeFor(isolation).load({ wasm: fixture('globals') })
      for (let i = 0; i < 5; i++) expect((await globals.call('globals')).json()).toEqual({ count: i })
    })

    test.each(['try_read', 'try_write'])('read_write.wasm %s fails: there is no preopened directory', async (name) => {
      const plugin = await runtimeFor(isolation).load({ wasm: fixture('read_write'), config: { path: '/etc/hostname' } })
      await expect(plugin.call(name)).rejects.toMatchObject({
        code: 'capsule_failed',
        message: expect.stringContaining('failed to find a pre-opened file descriptor through which "/etc/hostname" could be opened'),
      })
    })

    test('unreachable.wasm (WASI) traps: capsule_failed naming the trap', async () => {
      const plugin = await runtimeFor(isolation).load({ wasm: fixture('unreachable') })
      await expect(plugin.call('do_unreachable')).rejects.toMatchObject({ code: 'capsule_failed', message: 'the call to "do_unreachable" failed: unreachable' })
    })

    test('code-functions.wasm imports a host function capsule-host does not provide: refused at load, naming it', async () => {
      await expect(runtimeFor(isolation).load({ wasm: fixture('code-functions') })).rejects.toMatchObject({
        code: 'load_failed',
        message: expect.stringMatching(/^the capsule imports "extism:host\/user" "hello_world", which capsule-host does not provide; it provides http_request, /),
      })
    })
  })

  describe('worker isolation', () => {
    test('loop.wasm never returns: call_timeout, and the capsule is stopped', async () => {
      const loop = await runtimeFor('worker', { callTimeoutMs: 300 }).load({ wasm: fixture('loop') })
      await expect(loop.call('loop_forever')).rejects.toMatchObject({ code: 'call_timeout', message: 'the call to "loop_forever" ran past 300 ms; the capsule was stopped' })
      await expect(loop.call('loop_forever')).rejects.toMatchObject({ code: 'unloaded' })
    })
  })
})
