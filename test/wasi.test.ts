// WASI preview 1 under capsule-host: the sandbox (no file system, no sockets, nothing ungranted), proc_exit, reactor and command modules, clocks and randomness, import checks.
import { existsSync } from 'node:fs'
import { afterAll, describe, expect, test } from 'vitest'
import { createRuntime, type CapsuleLogEntry, type Runtime } from '../src/index.js'
import { WASI_FUNCTION_NAMES, wasiFunctions } from '../src/runtime/wasi.js'
import { capsulePath, describeIsolations, type Isolation } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { tinyModule } from './helpers/wasm.js'

const runtimes: Runtime[] = []
function runtimeFor(isolation: Isolation, entries: CapsuleLogEntry[] = []): Runtime {
  const runtime = createRuntime({ fetch: testFetch(), isolation, onLog: (entry) => void entries.push(entry) })
  runtimes.push(runtime)
  return runtime
}
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
})

const EBADF = 8
const EFAULT = 21
const EINVAL = 28
const ENOTDIR = 54
const ENOTSOCK = 57
const ENOTSUP = 58
/** `value` for fds 0-2 (the standard streams) and `rest` for every other fd up to `last`. */
const stdioThen = (value: number, rest: number, last: number) => Array.from({ length: last + 1 }, (_, fd) => (fd <= 2 ? value : rest))
const all = (value: number, count: number) => Array<number>(count).fill(value)

describeIsolations('isolation %s', (isolation) => {
  describe('the sandbox: a capsule trying every WASI path to a host file or socket gets nothing', () => {
    let report: Record<string, unknown>
    test('the probe runs', async () => {
      const hostile = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-hostile') })
      report = (await hostile.call('probe')).json()
    })

    const paths = ['/', '..', '/etc/passwd', 'etc/passwd', '.', '', '../../../../etc/passwd', '/proc/self/environ', 'C:\\Windows']
    test.each(paths)('path_open(%j) on fds 0..64: ENOTDIR on the standard streams, EBADF on every other fd, no fd handed out', (path) => {
      expect((report.path_open as Record<string, number[]>)[path]).toEqual(stdioThen(ENOTDIR, EBADF, 64))
    })

    test.each([
      ['path_open_create', stdioThen(ENOTDIR, EBADF, 64)],
      ['fd_prestat_get', all(EBADF, 1025)], // fds 0..1024: no preopened directory at all
      ['fd_prestat_dir_name', all(EBADF, 65)],
      ['fd_readdir', stdioThen(ENOTDIR, EBADF, 64)],
      ['sock_accept', stdioThen(ENOTSOCK, EBADF, 64)],
      ['sock_recv', stdioThen(ENOTSOCK, EBADF, 64)],
      ['sock_send', stdioThen(ENOTSOCK, EBADF, 64)],
      ['sock_shutdown', stdioThen(ENOTSOCK, EBADF, 64)],
      ['fd_write', all(EBADF, 62)], // fds 3..64
      ['fd_write_stdin', EBADF],
      ['fd_read', all(EBADF, 64)], // fds 1..64: only stdin reads
      ['path_unlink_file', stdioThen(ENOTDIR, EBADF, 8)],
      ['path_create_directory', stdioThen(ENOTDIR, EBADF, 8)],
      ['path_filestat_get', stdioThen(ENOTDIR, EBADF, 8)],
      ['path_symlink', stdioThen(ENOTDIR, EBADF, 8)],
      ['path_rename', stdioThen(ENOTDIR, EBADF, 8)],
      ['fd_renumber', stdioThen(ENOTSUP, EBADF, 8)],
      ['poll_fd_read', [0, ...all(EBADF, 8)]], // stdin is readable (at its end); stdout is not; no other fd exists
      ['environ_sizes_get', [0, 0, 0]], // errno, count, bytes: no variables without a grant
      ['args_sizes_get', [0, 0, 0]],
      ['environ_get', 0],
      ['args_get', 0],
      ['bad_pointer', EFAULT], // an iovec pointer outside the capsule's memory
      ['iovecs_1024', 0], // the most iovecs one call may name (all empty here)
      ['iovecs_1025', EINVAL],
      ['iovecs_max', EINVAL], // 0xffffffff: negative as an i32, a count as WASI reads it
    ])('%s answers %j', (name, expected) => {
      expect(report[name]).toEqual(expected)
    })

    test('O_CREAT created nothing on the host', () => {
      expect(existsSync('/tmp/capsule-was-here')).toBe(false)
    })
  })

  describe('grants', () => {
    test('without grants a module sees no arguments and no environment', async () => {
      const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio') })
      expect((await stdio.call('environment')).json()).toMatchObject({ args: [], env: [] })
    })

    test('granted arguments and variables arrive exactly, as UTF-8', async () => {
      const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio'), wasi: { args: ['prog', 'ünïcödé', ''], env: { TZ: 'UTC', EMPTY: '', EQ: 'a=b' } } })
      expect((await stdio.call('environment')).json()).toMatchObject({ args: ['prog', 'ünïcödé', ''], env: ['TZ=UTC', 'EMPTY=', 'EQ=a=b'] })
    })
  })

  describe('proc_exit', () => {
    test.each([
      ['', 'spoken'], // no exit: the export returns
      ['0', 'spoken'], // exit 0: the output set before stands
    ])('input %j: the call succeeds with output %j', async (input, output) => {
      const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio') })
      expect((await stdio.call('speak', input)).text()).toBe(output)
    })

    test.each([
      ['1', 1],
      ['3', 3],
      ['255', 255],
      ['256', 256],
      ['-1', 4294967295], // the exit code is an unsigned 32-bit number
    ])('input %j: capsule_failed naming exit code %i; the capsule keeps working', async (input, code) => {
      const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio') })
      await expect(stdio.call('speak', input)).rejects.toMatchObject({ code: 'capsule_failed', message: `the call to "speak" ended with WASI exit code ${code} (proc_exit)` })
      expect((await stdio.call('speak')).text()).toBe('spoken')
    })
  })

  describe('reactor and command', () => {
    test('a reactor\'s _initialize runs once, before the first call', async () => {
      const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio') })
      expect((await stdio.call('initialised_count')).json()).toEqual({ initialised: 1 })
      expect((await stdio.call('initialised_count')).json()).toEqual({ initialised: 1 })
    })

    test('a command\'s _start is not run at load; called, it runs, logs and exits 0 with its output', async () => {
      const entries: CapsuleLogEntry[] = []
      const stdio = await runtimeFor(isolation, entries).load({ wasm: capsulePath('wasi-stdio'), id: `command-${isolation}` })
      expect(stdio.exports).toContain('_start')
      expect(entries).toEqual([])
      expect((await stdio.call('_start')).text()).toBe('started 1')
      expect(entries).toEqual([{ capsuleId: `command-${isolation}`, level: 'stdout', message: 'started' }])
    })

    test('after _start the next call gets a fresh instance, as in Extism; other exports keep theirs', async () => {
      const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio') })
      expect((await stdio.call('_start')).text()).toBe('started 1')
      expect((await stdio.call('_start')).text()).toBe('started 1') // a new instance: its count starts again
      expect((await stdio.call('initialised_count')).json()).toEqual({ initialised: 1 }) // initialised once, again
      expect((await stdio.call('initialised_count')).json()).toEqual({ initialised: 1 })
    })
  })

  test('a real clock and a real random source', async () => {
    const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio') })
    const before = Date.now()
    const first = (await stdio.call('environment')).json<{ realtime: number; monotonic: number; random: string }>()
    const second = (await stdio.call('environment')).json<{ realtime: number; monotonic: number; random: string }>()
    expect(first.realtime).toBeGreaterThanOrEqual(before - 1)
    expect(first.realtime).toBeLessThanOrEqual(Date.now() + 1)
    expect(second.monotonic).toBeGreaterThan(first.monotonic)
    expect(first.random).toMatch(/^[0-9a-f]{32}$/)
    expect(second.random).not.toBe(first.random)
  })

  test.each([0, 1, 50])('poll_oneoff on a %i ms clock sleeps at least that long and reports the event', async (ms) => {
    const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio') })
    const nap = (await stdio.call('nap', String(ms))).json<{ errno: number; events: number; userdata: number; elapsed_ms: number }>()
    expect(nap).toMatchObject({ errno: 0, events: 1, userdata: 42 })
    expect(nap.elapsed_ms).toBeGreaterThanOrEqual(ms)
    expect(nap.elapsed_ms).toBeLessThan(ms + 5000)
  })

  test('a poll_oneoff sleep past the call time limit ends the call at the limit (call_timeout), and the capsule is stopped', async () => {
    const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio'), limits: { callTimeoutMs: 200 } })
    const started = performance.now()
    await expect(stdio.call('nap', String(600_000))).rejects.toMatchObject({ code: 'call_timeout' })
    // A ten-minute sleep that the limit did not end would hold this test far past its own timeout.
    expect(performance.now() - started).toBeLessThan(60_000)
  })

  if (isolation === 'inline') {
    test('a poll_oneoff sleep on the host thread suspends the capsule: the event loop goes on meanwhile', async () => {
      const stdio = await runtimeFor(isolation).load({ wasm: capsulePath('wasi-stdio') })
      let settled = false
      const nap = stdio.call('nap', '200').finally(() => (settled = true))
      // A sleep that blocked the thread would end before this callback could run, and the call with it.
      await new Promise(setImmediate)
      expect(settled).toBe(false)
      expect((await nap).json<{ errno: number; events: number }>()).toMatchObject({ errno: 0, events: 1 })
    })
  }

  describe('imports', () => {
    test.each(WASI_FUNCTION_NAMES.map((name) => [name]))('a module importing WASI %s loads', async (name) => {
      await expect(runtimeFor(isolation).load({ wasm: tinyModule({ imports: [['wasi_snapshot_preview1', name]], exports: ['f'] }) })).resolves.toBeDefined()
    })

    test.each([['fd_teleport'], ['sock_open'], ['sock_connect'], ['path_open2'], ['']])('a module importing WASI %j is refused at load, naming it', async (name) => {
      await expect(runtimeFor(isolation).load({ wasm: tinyModule({ imports: [['wasi_snapshot_preview1', name]], exports: ['f'] }) })).rejects.toMatchObject({
        code: 'load_failed',
        message: expect.stringMatching(new RegExp(`^the capsule imports "wasi_snapshot_preview1" "${name}", which is not a WASI preview 1 function capsule-host provides; it provides args_get, `)),
      })
    })

    test('another host module is refused at load, naming it', async () => {
      await expect(runtimeFor(isolation).load({ wasm: tinyModule({ imports: [['wasi_unstable', 'fd_write']], exports: ['f'] }) })).rejects.toMatchObject({
        code: 'load_failed',
        message: 'the capsule imports "wasi_unstable" "fd_write", which capsule-host does not provide (it provides extism:host/user, extism:host/env and wasi_snapshot_preview1)',
      })
    })
  })
})

test('capsule-host provides all 46 functions of WASI preview 1', () => {
  expect(WASI_FUNCTION_NAMES).toHaveLength(46)
})

describe('fd_write counts (wasiFunctions, no capsule)', () => {
  const MiB = 1024 * 1024
  /** fd_write to stdout of `sizes.length` iovecs, all over the same bytes at 64; what it answered and wrote. */
  function fdWrite(sizes: number[]) {
    const memory = new WebAssembly.Memory({ initial: (4 * MiB + 64 * 1024) / 65536 })
    const view = new DataView(memory.buffer)
    const iovs = 4 * MiB + 8
    sizes.forEach((size, i) => {
      view.setUint32(iovs + i * 8, 64, true)
      view.setUint32(iovs + i * 8 + 4, size, true)
    })
    let delivered = 0
    const functions = wasiFunctions({ ref: { memory }, grants: {}, write: (_stream, bytes) => void (delivered += bytes.byteLength) })
    const errno = functions.fd_write!({} as never, 1, iovs, sizes.length, 0)
    return { errno, written: view.getUint32(0, true), delivered }
  }
  const FOUR_MIB = 4 * MiB - 64
  test.each([
    { name: 'a total of 2^32 - 1 bytes is written and counted', sizes: [...Array<number>(1024).fill(FOUR_MIB).slice(1), 0xffff_ffff - 1023 * FOUR_MIB], errno: 0, written: 0xffff_ffff },
    { name: 'a total of 2^32 bytes (overlapping buffers) is EINVAL, nothing written', sizes: [...Array<number>(1024).fill(FOUR_MIB).slice(1), 0x1_0000_0000 - 1023 * FOUR_MIB], errno: EINVAL, written: 0 },
  ])('$name', ({ sizes, errno, written }) => {
    const result = fdWrite(sizes)
    expect(result.errno).toBe(errno)
    expect(result.written).toBe(written)
    expect(result.delivered).toBe(written)
  })
})
