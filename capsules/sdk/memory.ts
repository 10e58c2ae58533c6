// Moving bytes between this module's linear memory and Extism blocks with one host call each
// (mem_to_block / block_to_mem), instead of the PDK's one call per 8 bytes.

import {
  block_to_mem,
  error_set,
  free,
  input_length,
  input_offset,
  length,
  mem_to_block,
  output_set,
} from "./env";
import { decodeUtf8 } from "./bytes";

/** Copies `bytes` into a new Extism block and returns its offset. */
export function toBlock(bytes: Uint8Array): u64 {
  return mem_to_block(<u64>bytes.dataStart, <u64>bytes.length);
}

/** Copies a string, UTF-8 encoded, into a new Extism block and returns its offset. */
export function stringToBlock(s: string): u64 {
  const buf = String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
  return mem_to_block(<u64>changetype<usize>(buf), <u64>buf.byteLength);
}

/** Copies a whole Extism block into a new Uint8Array. */
export function fromBlock(offset: u64): Uint8Array {
  const n = length(offset);
  if (n > <u64>i32.MAX_VALUE) {
    abort("Extism block larger than 2 GiB");
  }
  const out = new Uint8Array(<i32>n);
  if (n > 0) block_to_mem(offset, <u64>out.dataStart, n);
  return out;
}

/** Copies a whole Extism block into a new Uint8Array and frees the block. */
export function takeBlock(offset: u64): Uint8Array {
  const out = fromBlock(offset);
  free(offset);
  return out;
}

/**
 * The offset of a block holding the call's input, exactly as the caller sent it. An empty input
 * gets a fresh empty block, so the offset always names a real block.
 */
export function inputBlock(): u64 {
  if (input_length() == 0) return mem_to_block(0, 0);
  return input_offset();
}

/** The call's input bytes (one bulk copy). */
export function input(): Uint8Array {
  const n = input_length();
  if (n > <u64>i32.MAX_VALUE) {
    abort("input larger than 2 GiB");
  }
  const out = new Uint8Array(<i32>n);
  if (n > 0) block_to_mem(input_offset(), <u64>out.dataStart, n);
  return out;
}

/** The call's input decoded as UTF-8 (ill-formed UTF-8 as U+FFFD, as TextDecoder does). */
export function inputString(): string {
  return decodeUtf8(input());
}

/** Sets the call's output to `bytes` (one bulk copy). */
export function output(bytes: Uint8Array): void {
  const off = toBlock(bytes);
  output_set(off, <u64>bytes.length);
}

/** Sets the call's output to `s`, UTF-8 encoded. */
export function outputString(s: string): void {
  const buf = String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
  const off = mem_to_block(<u64>changetype<usize>(buf), <u64>buf.byteLength);
  output_set(off, <u64>buf.byteLength);
}

/** Sets the call's output to an existing block (no copy), e.g. a host reply passed on verbatim. */
export function outputBlock(offset: u64): void {
  output_set(offset, length(offset));
}

/**
 * Makes the call fail with `message` (the host sees "Plugin-originated error: <message>").
 * Return the result from the export: `return fail("...")`.
 */
export function fail(message: string): i32 {
  error_set(stringToBlock(message));
  return 1;
}
