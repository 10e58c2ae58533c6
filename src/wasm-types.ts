// Our own WebAssembly types for declarations the public API reaches, so a consumer needs no DOM lib.

/**
 * A compiled WebAssembly module (what `WebAssembly.compile` returns). The `WebAssembly` namespace's
 * types come only with the DOM lib, and a published .d.ts must typecheck without it; TypeScript
 * declares `WebAssembly.Module` with no members, so a value of either type is accepted as the other.
 */
export type WasmModule = object
