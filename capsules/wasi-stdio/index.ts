// wasi-stdio: a WASI capsule for the runtime's WASI and log tests. It writes to stdout and stderr
// with fd_write, logs at every Extism level, ends calls with proc_exit when asked, reads the clocks
// and the random source, sleeps with poll_oneoff, and is a reactor (_initialize) and a command
// (_start) at once.

import { log_debug, log_error, log_info, log_warn } from "@extism/as-pdk/lib/env";
import { inputString, outputString, stringToBlock } from "../sdk";
import {
  args_get, args_sizes_get, clock_time_get, environ_get, environ_sizes_get, fd_write, poll_oneoff, proc_exit, random_get,
} from "../wasi-sdk/wasi";

@external("extism:host/env", "log_trace")
declare function log_trace(offs: u64): void;

let initialised: i32 = 0;
let starts: i32 = 0;

/** Writes `text` to `fd` in one fd_write; returns its errno. */
function write(fd: u32, text: string): i32 {
  const bytes = String.UTF8.encode(text);
  const iov = new StaticArray<u32>(2);
  iov[0] = <u32>changetype<usize>(bytes);
  iov[1] = <u32>bytes.byteLength;
  const written = new StaticArray<u32>(1);
  return fd_write(fd, changetype<usize>(iov), 1, changetype<usize>(written));
}

/** Reactor initialisation: the host runs it once, before the first call. */
export function _initialize(): void {
  initialised++;
}

/** Command entry: writes one line and exits with 0 (the output set before stands). */
export function _start(): void {
  starts++;
  outputString("started " + starts.toString());
  write(1, "started\n");
  proc_exit(0);
}

/** `{"initialised":N}`: how often _initialize ran. */
export function initialised_count(): i32 {
  outputString('{"initialised":' + initialised.toString() + "}");
  return 0;
}

/**
 * Writes "out one\nout two\npartial" to stdout and "err one\n" to stderr, sets the output "spoken",
 * then, when the input is a number, calls proc_exit with it.
 */
export function speak(): i32 {
  const input = inputString();
  outputString("spoken");
  write(1, "out one\nout two\npartial");
  write(2, "err one\n");
  if (input.length > 0) proc_exit(<u32>I32.parseInt(input));
  return 0;
}

/** Input "<n>": writes n lines "line <i>\n" to stdout, one fd_write each. */
export function flood(): i32 {
  const n = I32.parseInt(inputString());
  for (let i = 0; i < n; i++) write(1, "line " + i.toString() + "\n");
  outputString("flooded");
  return 0;
}

/** Input "<n>": logs n lines at info. */
export function flood_logs(): i32 {
  const n = I32.parseInt(inputString());
  for (let i = 0; i < n; i++) log_info(stringToBlock("log " + i.toString()));
  outputString("flooded");
  return 0;
}

/** One Extism log line at each level, lowest first: "at trace" ... "at error". */
export function levels(): i32 {
  log_trace(stringToBlock("at trace"));
  log_debug(stringToBlock("at debug"));
  log_info(stringToBlock("at info"));
  log_warn(stringToBlock("at warn"));
  log_error(stringToBlock("at error"));
  outputString("logged");
  return 0;
}

function strings(sizes: (count: usize, size: usize) => i32, get: (pointers: usize, buffer: usize) => i32): string {
  const counts = new StaticArray<u32>(2);
  const base = changetype<usize>(counts);
  sizes(base, base + 4);
  const count = counts[0];
  const pointers = new StaticArray<u32>(count + 1);
  const buffer = new Uint8Array(counts[1] + 1);
  get(changetype<usize>(pointers), buffer.dataStart);
  let json = "[";
  for (let i: u32 = 0; i < count; i++) {
    const start = pointers[i];
    const end = i + 1 < count ? pointers[i + 1] - 1 : <u32>buffer.dataStart + counts[1] - 1;
    json += (i > 0 ? "," : "") + '"' + String.UTF8.decodeUnsafe(start, end - start) + '"';
  }
  return json + "]";
}

/** `{"args":[...],"env":[...],"realtime":ms,"monotonic":ns,"random":"hex of 16 bytes"}`. */
export function environment(): i32 {
  const time = new StaticArray<u64>(2);
  const at = changetype<usize>(time);
  clock_time_get(0, 1, at);
  clock_time_get(1, 1, at + 8);
  const random = new Uint8Array(16);
  random_get(random.dataStart, 16);
  let hex = "";
  for (let i = 0; i < 16; i++) hex += (random[i] < 16 ? "0" : "") + random[i].toString(16);
  outputString(
    '{"args":' + strings(args_sizes_get, args_get) + ',"env":' + strings(environ_sizes_get, environ_get) +
    ',"realtime":' + (time[0] / 1000000).toString() + ',"monotonic":' + time[1].toString() + ',"random":"' + hex + '"}',
  );
  return 0;
}

/**
 * Input "<ms>": sleeps that long with one poll_oneoff clock subscription (relative, monotonic);
 * returns `{"errno":N,"events":N,"userdata":N,"elapsed_ms":N}` measured on the monotonic clock.
 */
export function nap(): i32 {
  const ms = I64.parseInt(inputString());
  const sub = new Uint8Array(48);
  store<u64>(sub.dataStart, 42); // userdata
  store<u8>(sub.dataStart, 0, 8); // EVENTTYPE_CLOCK
  store<u32>(sub.dataStart, 1, 16); // CLOCK_MONOTONIC
  store<u64>(sub.dataStart, <u64>ms * 1000000, 24);
  const event = new Uint8Array(32);
  const counts = new StaticArray<u64>(3);
  const at = changetype<usize>(counts);
  clock_time_get(1, 1, at);
  const errno = poll_oneoff(sub.dataStart, event.dataStart, 1, at + 16);
  clock_time_get(1, 1, at + 8);
  outputString(
    '{"errno":' + errno.toString() + ',"events":' + load<u32>(at + 16).toString() + ',"userdata":' + load<u64>(event.dataStart).toString() +
    ',"elapsed_ms":' + ((counts[1] - counts[0]) / 1000000).toString() + "}",
  );
  return 0;
}
