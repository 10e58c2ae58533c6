// Capsule log lines, engine side: Extism's log_* filtered by level, WASI stdout/stderr as lines, every line capped and escaped, and a bounded volume per call.
import { afterAll, describe, expect, test } from 'vitest'
import { createRuntime, type CapsuleLogEntry, type LogLevel, type Runtime } from '../src/index.js'
import { LogLines, MAX_LOG_BYTES_PER_CALL, MAX_LOG_LINE_BYTES, MAX_LOG_LINES_PER_CALL } from '../src/runtime/log-lines.js'
import type { CapsuleLogLevel } from '../src/runtime/logs.js'
import { capsulePath, describeIsolations, type Isolation } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'

const runtimes: Runtime[] = []
function logged(isolation: Isolation, logLevel?: LogLevel): { runtime: Runtime; entries: CapsuleLogEntry[] } {
  const entries: CapsuleLogEntry[] = []
  const runtime = createRuntime({ fetch: testFetch(), isolation, onLog: (entry) => void entries.push(entry), ...(logLevel ? { logLevel } : {}) })
  runtimes.push(runtime)
  return { runtime, entries }
}
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
})

const NOTICE = `capsule-host: this call reached its log limit (${MAX_LOG_LINES_PER_CALL} lines or ${MAX_LOG_BYTES_PER_CALL} bytes); the rest of its log lines are dropped`
const levelsFrom = (lowest: LogLevel) => (['trace', 'debug', 'info', 'warn', 'error'] as const).slice(['trace', 'debug', 'info', 'warn', 'error'].indexOf(lowest))

describeIsolations('isolation %s', (isolation) => {
  test.each([
    ['trace', levelsFrom('trace')],
    ['debug', levelsFrom('debug')],
    [undefined, levelsFrom('info')], // Extism's default
    ['info', levelsFrom('info')],
    ['warn', levelsFrom('warn')],
    ['error', levelsFrom('error')],
  ] as const)('logLevel %s passes exactly %j', async (logLevel, passed) => {
    const { runtime, entries } = logged(isolation, logLevel)
    const stdio = await runtime.load({ wasm: capsulePath('wasi-stdio'), id: `levels-${isolation}-${logLevel}` })
    expect((await stdio.call('levels')).text()).toBe('logged')
    expect(entries).toEqual(passed.map((level) => ({ capsuleId: `levels-${isolation}-${logLevel}`, level, message: `at ${level}` })))
  })

  test('stdout and stderr become lines at every level; an open line is delivered when the call ends', async () => {
    const { runtime, entries } = logged(isolation, 'error')
    const stdio = await runtime.load({ wasm: capsulePath('wasi-stdio'), id: `stdio-${isolation}` })
    expect((await stdio.call('speak')).text()).toBe('spoken')
    expect(entries.map(({ level, message }) => [level, message])).toEqual([
      ['stdout', 'out one'],
      ['stdout', 'out two'],
      ['stderr', 'err one'],
      ['stdout', 'partial'],
    ])
  })

  test('a call that exits still delivers what it wrote', async () => {
    const { runtime, entries } = logged(isolation)
    const stdio = await runtime.load({ wasm: capsulePath('wasi-stdio') })
    await expect(stdio.call('speak', '7')).rejects.toMatchObject({ code: 'capsule_failed' })
    expect(entries.map((e) => e.message)).toEqual(['out one', 'out two', 'err one', 'partial'])
  })

  test.each([
    ['flood', MAX_LOG_LINES_PER_CALL - 1, 'stdout'],
    ['flood', MAX_LOG_LINES_PER_CALL, 'stdout'],
    ['flood_logs', MAX_LOG_LINES_PER_CALL, 'info'],
  ] as const)('%s of %i lines: all delivered, no notice', async (name, count, level) => {
    const { runtime, entries } = logged(isolation)
    const stdio = await runtime.load({ wasm: capsulePath('wasi-stdio') })
    await stdio.call(name, String(count))
    expect(entries).toHaveLength(count)
    expect(entries.every((e) => e.level === level)).toBe(true)
  })

  test.each([
    ['flood', MAX_LOG_LINES_PER_CALL + 1, 'stdout', 'line'],
    ['flood', 20_000, 'stdout', 'line'],
    ['flood_logs', MAX_LOG_LINES_PER_CALL + 1, 'info', 'log'],
    ['flood_logs', 20_000, 'info', 'log'],
  ] as const)('%s of %i lines: the first 1000, then one notice; the next call has the whole volume again', async (name, count, level, prefix) => {
    const { runtime, entries } = logged(isolation)
    const stdio = await runtime.load({ wasm: capsulePath('wasi-stdio') })
    expect((await stdio.call(name, String(count))).text()).toBe('flooded')
    expect(entries).toHaveLength(MAX_LOG_LINES_PER_CALL + 1)
    expect(entries[MAX_LOG_LINES_PER_CALL - 1]).toMatchObject({ level, message: `${prefix} ${MAX_LOG_LINES_PER_CALL - 1}` })
    expect(entries[MAX_LOG_LINES_PER_CALL]).toMatchObject({ level, message: NOTICE })
    entries.length = 0
    await stdio.call(name, '2')
    expect(entries.map((e) => e.message)).toEqual([`${prefix} 0`, `${prefix} 1`])
  })

  test('without onLog the capsule logs and writes freely and nothing is delivered', async () => {
    const runtime = createRuntime({ fetch: testFetch(), isolation })
    runtimes.push(runtime)
    const stdio = await runtime.load({ wasm: capsulePath('wasi-stdio') })
    expect((await stdio.call('levels')).text()).toBe('logged')
    expect((await stdio.call('flood', '5000')).text()).toBe('flooded')
  })
})

describe('LogLines', () => {
  function collect(level: LogLevel = 'info') {
    const out: Array<[CapsuleLogLevel, string]> = []
    return { lines: new LogLines((l, m) => void out.push([l, m]), level), out }
  }
  const bytes = (text: string) => new TextEncoder().encode(text)

  test.each([
    ['one write, two lines', ['a\nb\n'], [['stdout', 'a'], ['stdout', 'b']]],
    ['a line over two writes', ['ab', 'c\n'], [['stdout', 'abc']]],
    ['empty lines are lines', ['\n\n'], [['stdout', ''], ['stdout', '']]],
    ['an open line waits for the end of the call', ['tail'], [['stdout', 'tail']]],
    ['CR and ESC are escaped', ['a\r\n\u001b[31mred\n'], [['stdout', 'a\\r'], ['stdout', '\\u001b[31mred']]],
    ['bidi overrides are escaped', ['\u202eevil\n'], [['stdout', '\\u202eevil']]],
  ])('%s', (_name, writes, expected) => {
    const { lines, out } = collect()
    for (const w of writes) lines.write('stdout', bytes(w))
    lines.endCall()
    expect(out).toEqual(expected)
  })

  test('invalid UTF-8 becomes U+FFFD', () => {
    const { lines, out } = collect()
    lines.write('stderr', Uint8Array.of(0x61, 0xff, 0xfe, 0x62, 0x0a))
    expect(out).toEqual([['stderr', 'a\ufffd\ufffdb']])
  })

  test.each([
    [MAX_LOG_LINE_BYTES - 1, 1],
    [MAX_LOG_LINE_BYTES, 1],
    [MAX_LOG_LINE_BYTES + 1, 2],
    [3 * MAX_LOG_LINE_BYTES, 3],
  ])('a line of %i bytes is delivered in %i piece(s), each capped at 4096 characters', (size, pieces) => {
    const { lines, out } = collect()
    lines.write('stdout', new Uint8Array(size).fill(0x78))
    lines.write('stdout', bytes('\n'))
    lines.endCall()
    expect(out).toHaveLength(pieces)
    expect(out.every(([, m]) => m.length <= 4096 + 40)).toBe(true)
  })

  test('the byte bound: lines past 1 MiB in a call are dropped after one notice', () => {
    const { lines, out } = collect()
    const line = new Uint8Array(MAX_LOG_LINE_BYTES).fill(0x61)
    const fit = Math.floor(MAX_LOG_BYTES_PER_CALL / MAX_LOG_LINE_BYTES)
    for (let i = 0; i < fit + 10; i++) lines.line('warn', line)
    expect(out).toHaveLength(fit + 1)
    expect(out.at(-1)).toEqual(['warn', NOTICE])
  })

  test.each([
    ['trace', false],
    ['debug', false],
    ['info', true],
    ['error', true],
    ['stdout', true],
    ['stderr', true],
  ] as const)('at level info, wants(%s) is %s', (level, wanted) => {
    expect(collect('info').lines.wants(level)).toBe(wanted)
  })

  test('with no sink nothing is wanted, not even stdout', () => {
    const lines = new LogLines(undefined, 'trace')
    expect(lines.wants('stdout')).toBe(false)
    expect(lines.wants('error')).toBe(false)
  })
})
