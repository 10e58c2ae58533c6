// A capsule's log lines: the levels, the entry the host receives, and the sink an engine writes them to.

/** Extism's log levels, lowest first (the order `logLevel` filters by). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** The level `logLevel` defaults to, as in Extism. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info'

/** Extism's levels, and a WASI module's stdout and stderr (never filtered by level). */
export type CapsuleLogLevel = LogLevel | 'stdout' | 'stderr'

/** One line a capsule logged, as `onLog` receives it. */
export interface CapsuleLogEntry {
  readonly capsuleId: string
  readonly level: CapsuleLogLevel
  /** The capsule's text, capped and made safe like all capsule text. */
  readonly message: string
}

export type LogHandler = (entry: CapsuleLogEntry) => void

/**
 * Where an engine writes one capsule's log lines. `level` is the lowest Extism level passed on
 * (lower ones are dropped where they are made, before any copy); stdout and stderr always pass.
 */
export interface EngineLogs {
  readonly level: LogLevel
  write(level: CapsuleLogLevel, message: string): void
}

/** True when a line at `level` passes a sink whose lowest level is `min`. */
export function passes(level: CapsuleLogLevel, min: LogLevel): boolean {
  return level === 'stdout' || level === 'stderr' || LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(min)
}
