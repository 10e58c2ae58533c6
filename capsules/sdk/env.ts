// Raw imports of a capsule: the capsule-host functions (namespace `extism:host/user`) and the few
// Extism kernel functions (namespace `extism:host/env`) the SDK uses. Every Extism "offset" is an
// i64 handle into Extism kernel memory (a block), not a pointer into this module's memory.
// Imports that a capsule never calls are left out of its .wasm by the compiler.

export {
  alloc,
  error_set,
  free,
  input_length,
  length,
  log_error,
  output_set,
  store_u8,
} from "@extism/as-pdk/lib/env";

/** Offset of the block that holds the call's input (Extism kernel; not wrapped by as-pdk 1.0). */
@external("extism:host/env", "input_offset")
export declare function input_offset(): u64;

// ---- the four wire-protocol functions (every Extism PDK can call these) ----

/** req: offset of the request JSON. Returns the offset of the JSON reply (response or `{"error":...}`). */
@external("extism:host/user", "http_request")
export declare function http_request(req: u64): u64;

/** req: offset of the request JSON. Returns the offset of `{"handle","status","headers","rawHeaders"}` or `{"error":...}`. */
@external("extism:host/user", "http_stream_start")
export declare function http_stream_start(req: u64): u64;

/** handle: offset of a block holding the handle string. Returns the offset of the next chunk; length 0 = end. Errors trap. */
@external("extism:host/user", "http_stream_read")
export declare function http_stream_read(handle: u64): u64;

/** handle: offset of a block holding the handle string. Idempotent. */
@external("extism:host/user", "http_stream_close")
export declare function http_stream_close(handle: u64): void;

// ---- fast path: the host copies straight into / out of this module's exported `memory` ----

/** Writes up to `capacity` bytes of the stream's next chunk at `dest`; returns the count, 0 = end. Errors trap. */
@external("extism:host/user", "http_stream_read_into")
export declare function http_stream_read_into(handle: u64, dest: u64, capacity: u64): u64;

/** Copies `len` bytes of linear memory at `ptr` into a new Extism block; returns its offset. */
@external("extism:host/user", "mem_to_block")
export declare function mem_to_block(ptr: u64, len: u64): u64;

/** Copies `len` bytes of the Extism block at `offset` into linear memory at `ptr`. */
@external("extism:host/user", "block_to_mem")
export declare function block_to_mem(offset: u64, ptr: u64, len: u64): void;
