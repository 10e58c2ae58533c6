// What a host grants a WASI (preview 1) capsule beyond the sandbox's defaults: nothing, unless named here.

/**
 * The WASI grants of one capsule. By default a WASI module sees no arguments, no environment
 * variables, no file system (no preopened directory) and no sockets; it always gets a real clock
 * and random source, and its stdout and stderr become log lines. Sockets are never granted.
 */
export interface WasiGrants {
  /** `argv` as the module sees it (`args_get`); default none. */
  readonly args?: readonly string[]
  /** Environment variables (`environ_get`); default none. */
  readonly env?: Readonly<Record<string, string>>
}

export const NO_WASI_GRANTS: WasiGrants = Object.freeze({})
