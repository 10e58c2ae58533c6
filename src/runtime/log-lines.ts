// Turns a capsule's Extism log calls and WASI stdout/stderr into capped, safe lines, at most a bounded volume per call.
import { MAX_CAPSULE_TEXT_CHARS, safeTextOf } from '../safe-text.js'
import { passes, type CapsuleLogLevel, type LogLevel } from './logs.js'

/** The most lines one call (or the load, which counts as one) delivers; then one notice, then nothing. */
export const MAX_LOG_LINES_PER_CALL = 1000
/** The most bytes of capsule text one call delivers (counted before escaping); then one notice, then nothing. */
export const MAX_LOG_BYTES_PER_CALL = 1024 * 1024
/** A WASI stdout/stderr line longer than this many bytes is delivered in pieces of this size. */
export const MAX_LOG_LINE_BYTES = MAX_CAPSULE_TEXT_CHARS * 4

export type StdStream = 'stdout' | 'stderr'

/** Where finished lines go: the engine's sink (inline), or a message to the main thread (worker). */
export type LineSink = (level: CapsuleLogLevel, message: string) => void

const NEWLINE = 0x0a

/** One stream's unfinished line: at most MAX_LOG_LINE_BYTES, kept between writes. */
class PendingLine {
  readonly #bytes = new Uint8Array(MAX_LOG_LINE_BYTES)
  length = 0
  /** The line so far went out as a full piece: a newline right after it ends that line, not an empty one. */
  split = false

  /** Appends what fits; returns how many bytes of `bytes` it took. */
  take(bytes: Uint8Array): number {
    const n = Math.min(bytes.byteLength, MAX_LOG_LINE_BYTES - this.length)
    this.#bytes.set(bytes.subarray(0, n), this.length)
    this.length += n
    if (n > 0) this.split = false
    return n
  }

  get full(): boolean {
    return this.length === MAX_LOG_LINE_BYTES
  }

  /** The line so far, and empties it. */
  drain(): Uint8Array {
    const line = this.#bytes.slice(0, this.length)
    this.length = 0
    return line
  }
}

/**
 * One capsule's log lines. Extism levels below `level` are dropped before any byte is read
 * (`wants`); stdout and stderr always pass. WASI output is split into lines at `\n` (a line
 * still open when the call ends is delivered then). Every line is decoded, escaped and capped by
 * safeTextOf. Per call at most MAX_LOG_LINES_PER_CALL lines and MAX_LOG_BYTES_PER_CALL bytes
 * pass; the first line over either gets one notice in its place and the rest of the call is dropped.
 */
export class LogLines {
  readonly #sink: LineSink | undefined
  readonly #level: LogLevel
  readonly #pending: Record<StdStream, PendingLine> = { stdout: new PendingLine(), stderr: new PendingLine() }
  #lines = 0
  #bytes = 0
  #dropping = false

  /** No sink: every line is dropped (and none is ever read). */
  constructor(sink: LineSink | undefined, level: LogLevel) {
    this.#sink = sink
    this.#level = level
  }

  /** True when a line at `level` would be delivered now: read the capsule's bytes only then. */
  wants(level: CapsuleLogLevel): boolean {
    return this.#sink !== undefined && !this.#dropping && passes(level, this.#level)
  }

  /** One whole line (an Extism log call). */
  line(level: CapsuleLogLevel, bytes: Uint8Array): void {
    if (!this.wants(level)) return
    if (this.#lines + 1 > MAX_LOG_LINES_PER_CALL || this.#bytes + bytes.byteLength > MAX_LOG_BYTES_PER_CALL) {
      this.#dropping = true
      this.#sink!(level, `capsule-host: this call reached its log limit (${MAX_LOG_LINES_PER_CALL} lines or ${MAX_LOG_BYTES_PER_CALL} bytes); the rest of its log lines are dropped`)
      return
    }
    this.#lines++
    this.#bytes += bytes.byteLength
    this.#sink!(level, safeTextOf(bytes))
  }

  /** Bytes a WASI module wrote to stdout or stderr: each finished line is delivered. */
  write(stream: StdStream, bytes: Uint8Array): void {
    const pending = this.#pending[stream]
    let at = 0
    while (at < bytes.byteLength && this.wants(stream)) {
      // Only as far as the line has room: a search of the whole rest for every piece is quadratic.
      const limit = Math.min(bytes.byteLength, at + MAX_LOG_LINE_BYTES - pending.length)
      const found = bytes.subarray(at, limit).indexOf(NEWLINE)
      const end = found === -1 ? -1 : at + found
      const stop = end === -1 ? limit : end
      at += pending.take(bytes.subarray(at, stop))
      if (at === end) {
        at++
        if (pending.split && pending.length === 0) pending.split = false
        else this.line(stream, pending.drain())
      } else if (pending.full) {
        this.line(stream, pending.drain())
        pending.split = true
      }
    }
  }

  /** Ends a call: delivers open lines, and the next call starts with the whole volume again. */
  endCall(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#pending[stream].length > 0) this.line(stream, this.#pending[stream].drain())
      this.#pending[stream].split = false
    }
    this.#lines = 0
    this.#bytes = 0
    this.#dropping = false
  }
}
