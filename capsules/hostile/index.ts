// hostile: a capsule that misuses Extism's kernel functions the way an attacker would, for the
// runtime's resource-safety tests. Every export takes "<n>:<text>" (a count and a text) as input.

import { config_get, error_set, http_request, log_error, log_info, output_set, var_set } from "@extism/as-pdk/lib/env";
import { mem_to_block } from "../sdk/env";
import { input, outputString } from "../sdk";

/** The count before the first ':' of the input, and the text after it. */
function args(): string[] {
  const text = String.UTF8.decode(input().buffer);
  const colon = text.indexOf(":");
  return colon < 0 ? [text, ""] : [text.substring(0, colon), text.substring(colon + 1)];
}

function count(): i32 {
  return I32.parseInt(args()[0]);
}

/** A block of `size` bytes: the UTF-8 of `text` repeated (built in linear memory, moved in one host call). */
function repeated(size: i32, text: string): u64 {
  const unit = Uint8Array.wrap(String.UTF8.encode(text));
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += unit.length) {
    const n = min(unit.length, size - i);
    memory.copy(bytes.dataStart + <usize>i, unit.dataStart, <usize>n);
  }
  return mem_to_block(<u64>bytes.dataStart, <u64>size);
}

/** Sets an error of <n> bytes of <text> and returns 1: Extism reports it as the call's error. */
export function error_text(): i32 {
  error_set(repeated(count(), args()[1]));
  return 1;
}

/** Logs an error of <n> bytes of <text>, then traps: the log explains the trap. */
export function log_then_trap(): i32 {
  log_error(repeated(count(), args()[1]));
  unreachable();
  return 0;
}

/** Returns an output of <n> bytes of <text>. */
export function big_output(): i32 {
  const size = count();
  output_set(repeated(size, args()[1]), <u64>size);
  return 0;
}

/** Logs <n> info lines of <text>, each a new block: the kernel must free each one once logged. */
export function log_flood(): i32 {
  const n = count();
  const text = args()[1];
  for (let i = 0; i < n; i++) log_info(repeated(text.length, text));
  outputString(n.toString());
  return 0;
}

/** Sets <n> vars named "k<i>", each holding <text>: vars are bounded, keys and values together. */
export function var_flood(): i32 {
  const n = count();
  const text = args()[1];
  for (let i = 0; i < n; i++) {
    const key = "k" + i.toString();
    var_set(repeated(String.UTF8.byteLength(key), key), repeated(String.UTF8.byteLength(text), text));
  }
  outputString(n.toString());
  return 0;
}

/** Asks for a config key of <n> bytes of <text>. Output: "absent" or the value's length. */
export function long_key(): i32 {
  const value = config_get(repeated(count(), args()[1]));
  outputString(value == 0 ? "absent" : "present");
  return 0;
}

/**
 * Calls Extism's own http_request with a request block of <n> bytes of <text>. capsule-host does
 * not serve Extism's HTTP yet: the answer is offset 0. Output: that offset.
 */
export function extism_http(): i32 {
  outputString(http_request(repeated(count(), args()[1]), 0).toString());
  return 0;
}

/** Recurses, allocating a string at every level, until the stack overflows (a RangeError, mid-allocation). */
function dive(depth: i32, text: string): string {
  return dive(depth + 1, text + depth.toString()) + text;
}

/** Overflows the stack while allocating: the allocator's state may be left half-updated. */
export function stack_overflow(): i32 {
  outputString(dive(0, args()[1]));
  return 0;
}
