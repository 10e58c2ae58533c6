// Checks the module cache: a compiled module is kept while capsules use it, plus a bounded LRU of released ones.
import { afterAll, describe, expect, test } from 'vitest'
import { createRuntime, type Runtime, type RuntimeOptions } from '../src/index.js'
import { describeIsolations } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { tinyModule } from './helpers/wasm.js'

const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
})

function runtimeWith(options: Partial<RuntimeOptions> = {}): Runtime {
  const runtime = createRuntime({ fetch: testFetch(), ...options })
  runtimes.push(runtime)
  return runtime
}

/** A distinct module for each `n`: its one export is named after it. */
const variant = (n: number) => tinyModule({ exports: [`f${n}`] })

test.each<[string, unknown]>([
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['a string', '8'],
  ['null', null],
])('moduleCacheSize %s is a TypeError naming the field', (_name, size) => {
  expect(() => createRuntime({ fetch: testFetch(), moduleCacheSize: size as number })).toThrow(
    new TypeError(`createRuntime: "moduleCacheSize" must be a whole number of modules, 0 or more, not ${String(size)}`),
  )
})

test.each([0, 1, 8, 1000])('moduleCacheSize %d is accepted', (size) => {
  expect(runtimeWith({ moduleCacheSize: size }).cachedModules).toBe(0)
})

describeIsolations('isolation %s', (isolation) => {
  test('a module is kept while any capsule uses it, and released into the recent ones after', async () => {
    const runtime = runtimeWith({ isolation, moduleCacheSize: 1 })
    const [a, b] = await Promise.all([runtime.load({ wasm: variant(1) }), runtime.load({ wasm: variant(1) })])
    expect([runtime.compilations, runtime.cachedModules]).toEqual([1, 1])
    await a!.unload()
    expect(runtime.cachedModules).toBe(1)
    // In use by b, so variant 2 (released at once) cannot push it out of a cache of one.
    await (await runtime.load({ wasm: variant(2) })).unload()
    expect([runtime.compilations, runtime.cachedModules]).toEqual([2, 2])
    await b!.unload()
    expect(runtime.cachedModules).toBe(1)
    await (await runtime.load({ wasm: variant(1) })).unload()
    expect(runtime.compilations).toBe(2)
  })

  test('the released modules are a bounded LRU: the least recently released goes first', async () => {
    const runtime = runtimeWith({ isolation, moduleCacheSize: 2 })
    for (const n of [1, 2, 3]) await (await runtime.load({ wasm: variant(n) })).unload()
    expect([runtime.compilations, runtime.cachedModules]).toEqual([3, 2])
    // 1 was evicted; 2 and 3 were kept. Using 2 again makes 3 the oldest.
    await (await runtime.load({ wasm: variant(2) })).unload()
    expect(runtime.compilations).toBe(3)
    await (await runtime.load({ wasm: variant(1) })).unload()
    expect([runtime.compilations, runtime.cachedModules]).toEqual([4, 2])
    await (await runtime.load({ wasm: variant(2) })).unload()
    expect(runtime.compilations).toBe(4)
    await (await runtime.load({ wasm: variant(3) })).unload()
    expect(runtime.compilations).toBe(5)
  })

  test('size 0 keeps only the modules in use', async () => {
    const runtime = runtimeWith({ isolation, moduleCacheSize: 0 })
    const capsule = await runtime.load({ wasm: variant(1) })
    expect(runtime.cachedModules).toBe(1)
    await capsule.unload()
    expect(runtime.cachedModules).toBe(0)
    await (await runtime.load({ wasm: variant(1) })).unload()
    expect([runtime.compilations, runtime.cachedModules]).toEqual([2, 0])
  })

  test('concurrent loads of the same bytes compile once', async () => {
    const runtime = runtimeWith({ isolation, moduleCacheSize: 0 })
    const capsules = await Promise.all(Array.from({ length: 6 }, () => runtime.load({ wasm: variant(7) })))
    expect([runtime.compilations, runtime.cachedModules]).toEqual([1, 1])
    await Promise.all(capsules.map((c) => c.unload()))
    expect(runtime.cachedModules).toBe(0)
  })

  test('a load that fails after compiling releases its module', async () => {
    const runtime = runtimeWith({ isolation, moduleCacheSize: 0 })
    const trapping = tinyModule({ exports: ['f'], startTraps: true })
    await expect(runtime.load({ wasm: trapping })).rejects.toMatchObject({ code: 'load_failed' })
    expect([runtime.compilations, runtime.cachedModules]).toEqual([1, 0])
  })

  test('a module that does not compile is not kept, and is compiled again when asked for again', async () => {
    const runtime = runtimeWith({ isolation })
    const bad = tinyModule({ tables: [{ min: 10_001 }] })
    for (let i = 0; i < 2; i++) await expect(runtime.load({ wasm: bad, limits: { memoryBytes: 64 * 1024 } })).rejects.toMatchObject({ code: 'load_failed' })
    expect([runtime.compilations, runtime.cachedModules]).toEqual([2, 0])
  })

  test('a stopped capsule releases its module like an unloaded one', async () => {
    const runtime = runtimeWith({ isolation, moduleCacheSize: 0 })
    const grower = tinyModule({ exports: ['f'], memory: { min: 1 }, exportMemory: true, grow: [{ export: 'grow', memory: true, delta: 1, until: 'trap' }] })
    const capsule = await runtime.load({ wasm: grower, limits: { memoryBytes: 1024 * 1024 } })
    await expect(capsule.call('grow')).rejects.toMatchObject({ code: 'memory_limit' })
    expect(runtime.cachedModules).toBe(0)
  })
})

test('soak: 200 distinct modules loaded and unloaded leave the cache at its bound', async () => {
  const runtime = runtimeWith({ isolation: 'worker' })
  const rssBefore = process.memoryUsage().rss
  // Four at a time: while they are loaded, the cache holds them and at most 8 released ones.
  for (let n = 0; n < 200; n += 4) {
    const capsules = await Promise.all([n, n + 1, n + 2, n + 3].map((i) => runtime.load({ wasm: variant(i) })))
    expect(runtime.cachedModules).toBeLessThanOrEqual(8 + 4)
    await Promise.all(capsules.map((c) => c.unload()))
  }
  expect([runtime.compilations, runtime.cachedModules]).toEqual([200, 8])
  // The eight most recent are the ones kept: loading them again compiles nothing.
  for (let n = 192; n < 200; n++) await (await runtime.load({ wasm: variant(n) })).unload()
  expect([runtime.compilations, runtime.cachedModules]).toEqual([200, 8])
  // Not an exact figure: 200 workers came and went, and RSS did not keep them.
  expect(process.memoryUsage().rss - rssBefore).toBeLessThan(512 * 1024 * 1024)
}, 120_000)
