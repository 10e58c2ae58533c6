// WASI preview 1 for capsules, sandboxed: stdout/stderr become log lines, a real clock and random source, granted args and env only, and no file system or sockets.
import { randomFillSync } from 'node:crypto'
import type { CallContext } from '@extism/extism'
import type { MemoryRef } from './host-functions.js'
import { contextMethod } from './kernel-guards.js'
import type { StdStream } from './log-lines.js'
import { WASI_LIFECYCLE_EXPORTS, WASI_LIFECYCLE_PREFIX } from './module-bounds.js'
import type { WasiGrants } from './wasi-grants.js'

/** The errno values this implementation answers (WASI preview 1 numbering). */
export const ERRNO = {
  SUCCESS: 0,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOTDIR: 54,
  NOTSOCK: 57,
  NOTSUP: 58,
  SPIPE: 69,
} as const

/**
 * Ends a call: thrown by `proc_exit`. Code 0 keeps the output the module had set (Extism
 * returns it as a success); any other code fails the call with `capsule_failed` naming the code.
 */
export class WasiExit extends Error {
  override name = 'WasiExit'
  constructor(
    readonly code: number,
    /** The call's output as set before the exit (code 0 only). */
    readonly output: Uint8Array | undefined,
  ) {
    super(`the capsule called proc_exit(${code})`)
  }
}

/** The most iovecs one fd_read or fd_write may name (POSIX IOV_MAX on Linux). */
export const MAX_IOVECS = 1024

const STDIN = 0
const STDOUT = 1
const STDERR = 2
const CHARACTER_DEVICE = 2
const RIGHT_FD_READ = 1n << 1n
const RIGHT_FD_WRITE = 1n << 6n
const RIGHT_POLL_FD_READWRITE = 1n << 27n
const CLOCK_REALTIME = 0
const CLOCK_MONOTONIC = 1
const CLOCK_PROCESS_CPUTIME = 2
const CLOCK_THREAD_CPUTIME = 3

class Fault extends Error {}

/** Nanoseconds since the epoch from the monotonic clock, so realtime has its resolution too. */
const REALTIME_BASE = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint()

/** The capsule's linear memory, checked on every access: a range outside it answers EFAULT. */
class Memory {
  constructor(readonly ref: MemoryRef) {}

  bytes(ptr: number, len: number): Uint8Array {
    const buffer = this.ref.memory?.buffer
    if (!buffer || ptr < 0 || len < 0 || ptr + len > buffer.byteLength) throw new Fault()
    return new Uint8Array(buffer, ptr, len)
  }

  view(ptr: number, len: number): DataView {
    const bytes = this.bytes(ptr, len)
    return new DataView(bytes.buffer, bytes.byteOffset, len)
  }

  u32(ptr: number, value: number): void {
    this.view(ptr, 4).setUint32(0, value, true)
  }

  u64(ptr: number, value: bigint): void {
    this.view(ptr, 8).setBigUint64(0, value, true)
  }

  /** The buffers of an iovec array: EINVAL past MAX_IOVECS, EFAULT outside memory. */
  iovecs(ptr: number, count: number): Uint8Array[] | number {
    if (count > MAX_IOVECS) return ERRNO.INVAL
    const table = this.view(ptr, count * 8)
    const buffers: Uint8Array[] = []
    for (let i = 0; i < count; i++) buffers.push(this.bytes(table.getUint32(i * 8, true), table.getUint32(i * 8 + 4, true)))
    return buffers
  }
}

/** NUL-terminated UTF-8 strings (args or `KEY=value`), checked once when the capsule loads. */
function encodeStrings(what: string, strings: readonly string[]): Uint8Array[] {
  return strings.map((text) => {
    if (typeof text !== 'string' || text.includes('\0')) throw new TypeError(`WASI grants: every ${what} must be a string without NUL characters`)
    return new TextEncoder().encode(`${text}\0`)
  })
}

function grantedStrings(grants: WasiGrants): { args: Uint8Array[]; env: Uint8Array[] } {
  const env = Object.entries(grants.env ?? {}).map(([key, value]) => {
    if (key === '' || key.includes('=')) throw new TypeError(`WASI grants: environment variable name ${JSON.stringify(key)} must be non-empty and without "="`)
    return `${key}=${value}`
  })
  return { args: encodeStrings('argument', grants.args ?? []), env: encodeStrings('environment variable', env) }
}

/** `*_sizes_get` and `*_get` for a list of NUL-terminated strings. */
function stringList(memory: Memory, strings: Uint8Array[]) {
  return {
    sizes: (countPtr: number, sizePtr: number) => {
      memory.u32(countPtr, strings.length)
      memory.u32(sizePtr, strings.reduce((sum, s) => sum + s.byteLength, 0))
      return ERRNO.SUCCESS
    },
    get: (pointersPtr: number, bufferPtr: number) => {
      let at = bufferPtr
      strings.forEach((s, i) => {
        memory.u32(pointersPtr + i * 4, at)
        memory.bytes(at, s.byteLength).set(s)
        at += s.byteLength
      })
      return ERRNO.SUCCESS
    },
  }
}

function now(clock: number): bigint | undefined {
  if (clock === CLOCK_REALTIME) return REALTIME_BASE + process.hrtime.bigint()
  if (clock === CLOCK_MONOTONIC) return process.hrtime.bigint()
  return undefined
}

/** Unsupported clocks: the CPU-time ones are ENOTSUP, unknown ids EINVAL. */
const clockErrno = (clock: number) => (clock === CLOCK_PROCESS_CPUTIME || clock === CLOCK_THREAD_CPUTIME ? ERRNO.NOTSUP : ERRNO.INVAL)

function clockFunctions(memory: Memory) {
  return {
    clock_res_get: (clock: number, resPtr: number) => {
      if (now(clock) === undefined) return clockErrno(clock)
      memory.u64(resPtr, 1n)
      return ERRNO.SUCCESS
    },
    clock_time_get: (clock: number, _precision: bigint, timePtr: number) => {
      const time = now(clock)
      if (time === undefined) return clockErrno(clock)
      memory.u64(timePtr, time)
      return ERRNO.SUCCESS
    },
  }
}

/** Blocks this thread until the monotonic clock reaches `deadline` (each wait at most ~24 days). */
function sleepUntil(deadline: bigint): void {
  const cell = new Int32Array(new SharedArrayBuffer(4))
  for (let left = deadline - process.hrtime.bigint(); left > 0n; left = deadline - process.hrtime.bigint()) {
    Atomics.wait(cell, 0, 0, Math.min(Number(left) / 1e6, 2 ** 31 - 1))
  }
}

const SUBSCRIPTION_BYTES = 48
const EVENT_BYTES = 32
const EVENT_CLOCK = 0
const EVENT_FD_READ = 1
const EVENT_FD_WRITE = 2

/**
 * poll_oneoff: stdin is always readable (at its end), stdout and stderr always writable, any
 * other fd answers its event with EBADF; with no fd event ready it sleeps until the first clock.
 */
function pollOneoff(
  memory: Memory,
  open: ReadonlySet<number>,
  sleep: WasiIo['sleep'],
  [inPtr, outPtr, count, countPtr]: [number, number, number, number],
): number | Promise<number> {
  if (count === 0) return ERRNO.INVAL
  const subscriptions = memory.view(inPtr, count * SUBSCRIPTION_BYTES)
  const events = memory.view(outPtr, count * EVENT_BYTES)
  const clocks: Array<{ userdata: bigint; deadline: bigint }> = []
  let ready = 0
  const event = (userdata: bigint, type: number, errno: number) => {
    events.setBigUint64(ready * EVENT_BYTES, userdata, true)
    events.setUint16(ready * EVENT_BYTES + 8, errno, true)
    events.setUint8(ready * EVENT_BYTES + 10, type)
    events.setBigUint64(ready * EVENT_BYTES + 16, 0n, true) // fd_readwrite: nbytes, flags
    events.setUint16(ready * EVENT_BYTES + 24, 0, true)
    ready++
  }
  for (let i = 0; i < count; i++) {
    const at = i * SUBSCRIPTION_BYTES
    const userdata = subscriptions.getBigUint64(at, true)
    const type = subscriptions.getUint8(at + 8)
    if (type === EVENT_CLOCK) {
      const clock = subscriptions.getUint32(at + 16, true)
      const timeout = subscriptions.getBigUint64(at + 24, true)
      const absolute = (subscriptions.getUint16(at + 40, true) & 1) === 1
      const current = now(clock)
      if (current === undefined) event(userdata, type, clockErrno(clock))
      else clocks.push({ userdata, deadline: absolute ? timeout - current + process.hrtime.bigint() : process.hrtime.bigint() + timeout })
    } else if (type === EVENT_FD_READ || type === EVENT_FD_WRITE) {
      const fd = subscriptions.getUint32(at + 16, true)
      const usable = open.has(fd) && (type === EVENT_FD_READ ? fd === STDIN : fd !== STDIN)
      event(userdata, type, usable ? ERRNO.SUCCESS : ERRNO.BADF)
    } else event(userdata, type, ERRNO.INVAL)
  }
  const done = () => {
    memory.u32(countPtr, ready)
    return ERRNO.SUCCESS
  }
  if (ready > 0 || clocks.length === 0) return done()
  const first = clocks.reduce((a, b) => (b.deadline < a.deadline ? b : a))
  const woken = () => {
    const time = process.hrtime.bigint()
    for (const clock of clocks) if (clock.deadline <= time || clock === first) event(clock.userdata, EVENT_CLOCK, ERRNO.SUCCESS)
    return done()
  }
  if (sleep) return sleep(first.deadline).then(woken)
  sleepUntil(first.deadline)
  return woken()
}

/**
 * The calls that would reach a file, a directory or a socket, by the position of the fd argument
 * each takes (two for path_link and path_rename), and what the standard streams answer: there is
 * no other fd, so every other fd is EBADF.
 */
const REFUSED: ReadonlyArray<readonly [name: string, fdArgs: readonly number[], onStdio: number]> = [
  ['path_create_directory', [0], ERRNO.NOTDIR],
  ['path_filestat_get', [0], ERRNO.NOTDIR],
  ['path_filestat_set_times', [0], ERRNO.NOTDIR],
  ['path_link', [0, 4], ERRNO.NOTDIR],
  ['path_open', [0], ERRNO.NOTDIR],
  ['path_readlink', [0], ERRNO.NOTDIR],
  ['path_remove_directory', [0], ERRNO.NOTDIR],
  ['path_rename', [0, 3], ERRNO.NOTDIR],
  ['path_symlink', [2], ERRNO.NOTDIR],
  ['path_unlink_file', [0], ERRNO.NOTDIR],
  ['fd_readdir', [0], ERRNO.NOTDIR],
  ['sock_accept', [0], ERRNO.NOTSOCK],
  ['sock_recv', [0], ERRNO.NOTSOCK],
  ['sock_send', [0], ERRNO.NOTSOCK],
  ['sock_shutdown', [0], ERRNO.NOTSOCK],
  ['fd_seek', [0], ERRNO.SPIPE],
  ['fd_tell', [0], ERRNO.SPIPE],
  ['fd_pread', [0], ERRNO.SPIPE],
  ['fd_pwrite', [0], ERRNO.SPIPE],
  ['fd_advise', [0], ERRNO.INVAL],
  ['fd_allocate', [0], ERRNO.INVAL],
  ['fd_datasync', [0], ERRNO.INVAL],
  ['fd_sync', [0], ERRNO.INVAL],
  ['fd_filestat_set_size', [0], ERRNO.INVAL],
  ['fd_filestat_set_times', [0], ERRNO.INVAL],
  ['fd_renumber', [0, 1], ERRNO.NOTSUP],
  // No fd is a preopened directory: this ends a libc's enumeration of preopens at once.
  ['fd_prestat_get', [0], ERRNO.BADF],
  ['fd_prestat_dir_name', [0], ERRNO.BADF],
]

function refusals(open: ReadonlySet<number>): Record<string, (...args: unknown[]) => number> {
  return Object.fromEntries(
    REFUSED.map(([name, fdArgs, onStdio]) => [name, (...args: unknown[]) => (fdArgs.every((i) => open.has(args[i] as number)) ? onStdio : ERRNO.BADF)]),
  )
}

/** fd_* calls on the three standard streams (the only fds there are). */
function streamFunctions(memory: Memory, open: Set<number>, write: (stream: StdStream, bytes: Uint8Array) => void) {
  const transfer = (fd: number, iovs: number, count: number, donePtr: number, writing: boolean) => {
    if (!open.has(fd) || (fd === STDIN) === writing) return ERRNO.BADF
    const buffers = memory.iovecs(iovs, count)
    if (typeof buffers === 'number') return buffers
    let done = 0
    if (writing) {
      // The count written is a u32: more (the buffers may overlap) is EINVAL, as writev's overflow is.
      if (buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0) > 0xffff_ffff) return ERRNO.INVAL
      for (const buffer of buffers) {
        write(fd === STDOUT ? 'stdout' : 'stderr', buffer)
        done += buffer.byteLength
      }
    }
    memory.u32(donePtr, done) // stdin is empty: a read is at its end at once
    return ERRNO.SUCCESS
  }
  return {
    fd_write: (fd: number, iovs: number, count: number, writtenPtr: number) => transfer(fd, iovs, count, writtenPtr, true),
    fd_read: (fd: number, iovs: number, count: number, readPtr: number) => transfer(fd, iovs, count, readPtr, false),
    fd_close: (fd: number) => (open.delete(fd) ? ERRNO.SUCCESS : ERRNO.BADF),
    fd_fdstat_get: (fd: number, statPtr: number) => {
      if (!open.has(fd)) return ERRNO.BADF
      const stat = memory.view(statPtr, 24)
      new Uint8Array(stat.buffer, stat.byteOffset, 24).fill(0)
      stat.setUint8(0, CHARACTER_DEVICE)
      stat.setBigUint64(8, (fd === STDIN ? RIGHT_FD_READ : RIGHT_FD_WRITE) | RIGHT_POLL_FD_READWRITE, true)
      return ERRNO.SUCCESS
    },
    fd_fdstat_set_flags: (fd: number) => (open.has(fd) ? ERRNO.SUCCESS : ERRNO.BADF),
    fd_fdstat_set_rights: (fd: number) => (open.has(fd) ? ERRNO.SUCCESS : ERRNO.BADF),
    fd_filestat_get: (fd: number, statPtr: number) => {
      if (!open.has(fd)) return ERRNO.BADF
      memory.bytes(statPtr, 64).fill(0)
      memory.view(statPtr, 64).setUint8(16, CHARACTER_DEVICE)
      return ERRNO.SUCCESS
    },
  }
}

/** What the engine gives the WASI functions. */
export interface WasiIo {
  /** The capsule's memory, set once the instance exists. */
  readonly ref: MemoryRef
  readonly grants: WasiGrants
  /** Bytes the module wrote to stdout or stderr. */
  write(stream: StdStream, bytes: Uint8Array): void
  /**
   * Waits until the monotonic clock (process.hrtime) reaches `deadline` without blocking the
   * thread, for a capsule on the host's thread (JSPI suspends it meanwhile); rejects when the call
   * is stopped. Without it, poll_oneoff blocks the thread (a worker's own).
   */
  readonly sleep?: (deadline: bigint) => Promise<void>
}

// Extism's own type for host functions takes any arguments: wasm passes numbers (i32) and bigints (i64).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type WasiFunction = (context: CallContext, ...args: any[]) => number | Promise<number>

/**
 * The WASI preview 1 functions, as Extism host functions (the call context first). A pointer
 * outside the capsule's memory answers EFAULT; nothing here opens a file or a socket, or reads
 * anything of the host's but the clocks and the random source.
 */
export function wasiFunctions(io: WasiIo): Record<string, WasiFunction> {
  const memory = new Memory(io.ref)
  const open = new Set([STDIN, STDOUT, STDERR])
  const { args, env } = grantedStrings(io.grants)
  const argList = stringList(memory, args)
  const envList = stringList(memory, env)
  const plain: Record<string, (...args: never[]) => number | Promise<number>> = {
    ...refusals(open),
    ...streamFunctions(memory, open, (stream, bytes) => io.write(stream, bytes)),
    ...clockFunctions(memory),
    args_sizes_get: argList.sizes,
    args_get: argList.get,
    environ_sizes_get: envList.sizes,
    environ_get: envList.get,
    poll_oneoff: (inPtr: number, outPtr: number, count: number, countPtr: number) => pollOneoff(memory, open, io.sleep, [inPtr, outPtr, count, countPtr]),
    random_get: (ptr: number, len: number) => (randomFillSync(memory.bytes(ptr, len)), ERRNO.SUCCESS),
    sched_yield: () => ERRNO.SUCCESS,
    proc_raise: () => ERRNO.NOTSUP,
  }
  const functions: Record<string, WasiFunction> = Object.fromEntries(
    // Wasm passes i32 arguments as signed numbers; WASI's are unsigned (pointers, lengths, fds).
    Object.entries(plain).map(([name, fn]) => [name, (_context: CallContext, ...args: unknown[]) => faultsAsErrno(fn, args.map(unsigned) as never[])]),
  )
  if (io.sleep) {
    // Extism suspends the capsule (JSPI) only on an import that is an async function.
    const poll = functions.poll_oneoff!
    functions.poll_oneoff = async (context: CallContext, ...args: unknown[]) => poll(context, ...args)
  }
  functions.proc_exit = (context: CallContext, code: number) => {
    const exit = code >>> 0
    throw new WasiExit(exit, exit === 0 ? outputOf(context) : undefined)
  }
  return functions
}

const unsigned = (arg: unknown) => (typeof arg === 'number' ? arg >>> 0 : arg)

function faultsAsErrno(fn: (...args: never[]) => number | Promise<number>, args: never[]): number | Promise<number> {
  try {
    return fn(...args)
  } catch (error) {
    if (error instanceof Fault || error instanceof RangeError) return ERRNO.FAULT
    throw error
  }
}

/** The names of the WASI preview 1 functions capsule-host provides (all of preview 1). */
export const WASI_FUNCTION_NAMES: readonly string[] = Object.keys(wasiFunctions({ ref: { memory: undefined }, grants: {}, write: () => undefined })).sort()

/**
 * The output the module set before proc_exit(0). The Extism SDK discards a call's output when
 * the call throws, and keeps it only on its call context's private stack: read through the
 * context's own symbol-keyed methods (`export-state`, `get-block`), found by their description.
 */
function outputOf(context: CallContext): Uint8Array | undefined {
  const exportState = contextMethod(context, 'export-state')
  const getBlock = contextMethod(context, 'get-block')
  if (!exportState || !getBlock) return undefined
  const { stack } = exportState() as { stack: Array<[unknown, number | null, unknown]> }
  const index = stack.at(-1)?.[1]
  if (index === null || index === undefined) return undefined
  return new Uint8Array((getBlock(index) as { buffer: ArrayBuffer }).buffer)
}

type Exports = WebAssembly.Exports

const lifecycle = (exports: Exports, name: string) => {
  const fn = exports[WASI_LIFECYCLE_PREFIX + name]
  return typeof fn === 'function' ? (fn as (...args: number[]) => unknown) : undefined
}

/**
 * Initialises a WASI module as Extism does, once its memory is bound: a Haskell module's
 * `_initialize` then `hs_init(0, 0)`; else `__wasm_call_ctors` or a reactor's `_initialize`. A
 * command's `_start` is not run here: it is an export like any other (`callableName`).
 */
export function startGuest(exports: Exports): void {
  const hsInit = lifecycle(exports, 'hs_init')
  if (hsInit) {
    lifecycle(exports, '_initialize')?.()
    hsInit(0, 0)
    return
  }
  const ctors = exports.__wasm_call_ctors
  if (typeof ctors === 'function') (ctors as () => void)()
  else lifecycle(exports, '_initialize')?.()
}

/** The instance's name for an export the host calls: a WASI module's `_start` was renamed by the rewrite. */
export function callableName(exports: Exports, name: string): string {
  // Only the lifecycle exports are ever renamed: any other name is itself, with no lookup per call.
  if (!WASI_LIFECYCLE_EXPORTS.includes(name)) return name
  return typeof exports[WASI_LIFECYCLE_PREFIX + name] === 'function' ? WASI_LIFECYCLE_PREFIX + name : name
}

/** An export's name as the host sees it (the rewrite's lifecycle renames undone). */
export function publicExportName(name: string): string {
  return name.startsWith(WASI_LIFECYCLE_PREFIX) ? name.slice(WASI_LIFECYCLE_PREFIX.length) : name
}
