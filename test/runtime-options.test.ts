// createRuntime's and load()'s log and WASI options: the per-capsule sink (levels, a handler that throws), log lines and WASI grants end to end.
import { existsSync } from 'node:fs'
import { afterAll, describe, expect, test } from 'vitest'
import { createRuntime, type CapsuleLogEntry, type CapsuleLogLevel, type LogLevel, type Runtime, type WasiGrants } from '../src/index.js'
import { capsuleLogs } from '../src/runtime/runtime.js'
import { capsulePath, describeIsolations } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'

const ALL: readonly CapsuleLogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'stdout', 'stderr']

/** The levels a sink passes when its lowest level is `min`, writing one line at every level. */
function passed(min: LogLevel): CapsuleLogLevel[] {
  const seen: CapsuleLogEntry[] = []
  const sink = capsuleLogs('c1', (entry) => void seen.push(entry), min)!
  expect(sink.level).toBe(min)
  for (const level of ALL) sink.write(level, `at ${level}`)
  return seen.map((entry) => entry.level)
}

describe('the log sink of one capsule', () => {
  test('no handler: no sink, so engines drop lines where they are made', () => {
    expect(capsuleLogs('c1', undefined, 'info')).toBeUndefined()
  })

  test.each<[LogLevel, CapsuleLogLevel[]]>([
    ['trace', ['trace', 'debug', 'info', 'warn', 'error', 'stdout', 'stderr']],
    ['debug', ['debug', 'info', 'warn', 'error', 'stdout', 'stderr']],
    ['info', ['info', 'warn', 'error', 'stdout', 'stderr']],
    ['warn', ['warn', 'error', 'stdout', 'stderr']],
    ['error', ['error', 'stdout', 'stderr']],
  ])('logLevel %s passes %j (stdout and stderr always)', (min, levels) => {
    expect(passed(min)).toEqual(levels)
  })

  test('an entry names the capsule, the level and the message', () => {
    const seen: CapsuleLogEntry[] = []
    capsuleLogs('c7', (entry) => void seen.push(entry), 'info')!.write('warn', 'disk almost full')
    expect(seen).toEqual([{ capsuleId: 'c7', level: 'warn', message: 'disk almost full' }])
  })

  test('a handler that throws is swallowed: the write returns, and later lines still arrive', () => {
    const seen: string[] = []
    const sink = capsuleLogs('c1', (entry) => {
      seen.push(entry.message)
      if (entry.message === 'boom') throw new Error('the host handler failed')
    }, 'info')!
    expect(() => sink.write('info', 'boom')).not.toThrow()
    sink.write('info', 'after')
    expect(seen).toEqual(['boom', 'after'])
  })

  test('an async handler that rejects leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = []
    const listener = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', listener)
    try {
      const sink = capsuleLogs('c1', async () => {
        throw new Error('rejected')
      }, 'info')!
      sink.write('error', 'x')
      // Node reports an unhandled rejection once the microtasks after the macrotask that made it have run: one turn is enough.
      await new Promise(setImmediate)
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', listener)
    }
  })
})

const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
})

describeIsolations('capsule log lines reach onLog (%s)', (isolation) => {
  const runtime = createRuntime({ fetch: testFetch(), isolation })
  runtimes.push(runtime)

  test("the runtime's onLog gets Extism's log_info lines at the default level", async () => {
    const seen: CapsuleLogEntry[] = []
    const own = createRuntime({ fetch: testFetch(), isolation, onLog: (entry) => void seen.push(entry) })
    runtimes.push(own)
    const capsule = await own.load({ wasm: capsulePath('hostile'), id: `logs-${isolation}` })
    expect((await capsule.call('log_flood', '3:hello')).text()).toBe('3')
    expect(seen).toEqual([1, 2, 3].map(() => ({ capsuleId: `logs-${isolation}`, level: 'info', message: 'hello' })))
  })

  test("load's onLog and logLevel override the runtime's: warn drops info, keeps error", async () => {
    const runtimeLines: CapsuleLogEntry[] = []
    const own = createRuntime({ fetch: testFetch(), isolation, onLog: (entry) => void runtimeLines.push(entry), logLevel: 'trace' })
    runtimes.push(own)
    const seen: CapsuleLogEntry[] = []
    const capsule = await own.load({ wasm: capsulePath('hostile'), onLog: (entry) => void seen.push(entry), logLevel: 'warn' })
    await capsule.call('log_flood', '2:quiet')
    await expect(capsule.call('log_then_trap', '4:oops')).rejects.toMatchObject({ code: 'capsule_failed' })
    expect(seen.map((e) => [e.level, e.message])).toEqual([['error', 'oops']])
    expect(runtimeLines).toEqual([])
  })

  test('an onLog that throws never fails the call', async () => {
    const capsule = await runtime.load({
      wasm: capsulePath('hostile'),
      onLog: () => {
        throw new Error('handler bug')
      },
    })
    expect((await capsule.call('log_flood', '5:x')).text()).toBe('5')
  })
})

const WASI_CAPSULE = existsSync(new URL('../capsules/dist/wasi-stdio.wasm', import.meta.url))

describeIsolations('WASI grants and output reach the module and onLog (%s)', (isolation) => {
  const environment = async (wasi?: WasiGrants) => {
    const runtime = createRuntime({ fetch: testFetch(), isolation })
    runtimes.push(runtime)
    const capsule = await runtime.load({ wasm: capsulePath('wasi-stdio'), ...(wasi ? { wasi } : {}) })
    return (await capsule.call('environment')).json<{ args: string[]; env: string[] }>()
  }

  test.skipIf(!WASI_CAPSULE)('without grants the module sees no arguments and no environment, not even the host\'s', async () => {
    expect(await environment()).toMatchObject({ args: [], env: [] })
  })

  test.skipIf(!WASI_CAPSULE)('granted args and env are exactly what it sees; changing the grants after the load changes nothing', async () => {
    const runtime = createRuntime({ fetch: testFetch(), isolation })
    runtimes.push(runtime)
    const grants = { args: ['tool', '--flag', ''], env: { TZ: 'UTC', EMPTY: '' } }
    const capsule = await runtime.load({ wasm: capsulePath('wasi-stdio'), wasi: grants })
    grants.args.push('late')
    ;(grants.env as Record<string, string>).LATE = '1'
    expect(await capsule.call('environment').then((o) => o.json())).toMatchObject({ args: ['tool', '--flag', ''], env: ['TZ=UTC', 'EMPTY='] })
  })

  test.skipIf(!WASI_CAPSULE)('stdout and stderr lines pass any logLevel; Extism levels below it are dropped', async () => {
    const seen: CapsuleLogEntry[] = []
    const runtime = createRuntime({ fetch: testFetch(), isolation, logLevel: 'warn', onLog: (entry) => void seen.push(entry) })
    runtimes.push(runtime)
    const capsule = await runtime.load({ wasm: capsulePath('wasi-stdio') })
    expect((await capsule.call('speak')).text()).toBe('spoken')
    expect((await capsule.call('levels')).text()).toBe('logged')
    const lines = seen.map((e) => [e.level, e.message])
    expect(lines).toEqual(expect.arrayContaining([['stdout', 'out one'], ['stdout', 'out two'], ['stderr', 'err one'], ['warn', 'at warn'], ['error', 'at error']]))
    expect(lines.filter(([level]) => level === 'trace' || level === 'debug' || level === 'info')).toEqual([])
  })
})
