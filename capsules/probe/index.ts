// probe: the capsule the runtime's tests and benchmarks drive. Each export is one host-ABI
// behaviour, with inputs passed to the host untouched so malformed input reaches it as sent.

import { Config, Host, Memory } from "@extism/as-pdk";
import {
  alloc,
  free,
  http_request,
  http_stream_close,
  http_stream_read,
  http_stream_read_into,
  http_stream_start,
  input_length,
  input_offset,
  length,
  mem_to_block,
  output_set,
} from "../sdk/env";
import {
  Fnv1a32,
  JsonWriter,
  Stream,
  fail,
  input,
  inputBlock,
  jsonError,
  output,
  outputBlock,
  outputString,
  parseJson,
  streamBlock,
  takeBlock,
  toBlock,
} from "../sdk";

function streamSummary(status: i32, bytes: u64, chunks: u64, hash: Fnv1a32): Uint8Array {
  const w = new JsonWriter(96);
  w.beginObject()
    .key("status").int(status)
    .key("bytes").uint(bytes)
    .key("chunks").uint(chunks)
    .key("fnv1a32").string(hash.hex())
    .endObject();
  return w.toBytes();
}

/** Input: a wire request JSON. Output: the host's reply, verbatim (no copy at all). */
export function request(): i32 {
  outputBlock(http_request(inputBlock()));
  return 0;
}

/**
 * Input: a wire request JSON. Opens a stream, reads it to the end through the fast path
 * (http_stream_read_into into one reusable 256 KiB buffer), closes it.
 * Output: {"status","bytes","chunks","fnv1a32"}, or the start reply verbatim if it was an error.
 */
export function stream(): i32 {
  const s: Stream = streamBlock(inputBlock());
  if (s.error !== null) {
    output(s.raw);
    return 0;
  }
  const hash = new Fnv1a32();
  let chunks: u64 = 0;
  while (true) {
    const chunk = s.read();
    if (chunk === null) break;
    chunks++;
    hash.update(chunk);
  }
  s.close();
  output(streamSummary(s.status, s.bytesRead, chunks, hash));
  return 0;
}

/**
 * Same as `stream`, using only the four portable functions and @extism/as-pdk's own memory
 * helpers (Host.input, Memory.allocateBytes, Memory.toUint8Array, Host.output): what a capsule
 * written with any PDK and no fast path does.
 */
export function stream_plain(): i32 {
  const req = Memory.allocateBytes(Host.input());
  const replyOffset = http_stream_start(req.offset);
  req.free();
  const reply = new Memory(replyOffset, length(replyOffset)).toUint8Array();
  const doc = parseJson(reply);
  if (doc === null) return fail("stream start reply is not JSON: " + jsonError());
  const handle = doc.get("handle");
  if (handle === null || !handle.isString) {
    Host.output(reply); // an error reply, verbatim
    return 0;
  }
  const handleText = handle.str();
  const hash = new Fnv1a32();
  let bytes: u64 = 0;
  let chunks: u64 = 0;
  while (true) {
    const h = Memory.allocateString(handleText);
    const off = http_stream_read(h.offset);
    h.free();
    const n = length(off);
    if (n == 0) {
      free(off);
      break;
    }
    const chunk = new Memory(off, n).toUint8Array();
    free(off);
    chunks++;
    bytes += <u64>chunk.length;
    hash.update(chunk);
  }
  const h = Memory.allocateString(handleText);
  http_stream_close(h.offset);
  h.free();
  Host.output(streamSummary(<i32>doc.getInteger("status"), bytes, chunks, hash));
  return 0;
}

/**
 * Input: {"request":{...},"count":N}. Opens N streams with that request and never closes them.
 * Output: the JSON array of the N start replies, each verbatim.
 */
export function hold_streams(): i32 {
  const src = input();
  const doc = parseJson(src);
  if (doc === null) return fail("hold_streams input is not JSON: " + jsonError());
  const req = doc.get("request");
  const count = doc.get("count");
  if (req === null || count === null || !count.isNumber || !count.isInteger || count.integer < 0) {
    return fail('hold_streams input must be {"request":{...},"count":N}');
  }
  const reqBytes = req.raw();
  const w = new JsonWriter(128);
  w.beginArray();
  for (let i: i64 = 0; i < count.integer; i++) {
    const b = toBlock(reqBytes); // a fresh block per call: the host may consume its argument
    const reply = takeBlock(http_stream_start(b));
    free(b);
    w.raw(reply);
  }
  w.endArray();
  output(w.toBytes());
  return 0;
}

/** Input: raw bytes used as the handle string for http_stream_read. Output: the chunk bytes. */
export function read_handle(): i32 {
  outputBlock(http_stream_read(inputBlock()));
  return 0;
}

/** Input: raw bytes used as the handle string for http_stream_close. Output: "closed". */
export function close_handle(): i32 {
  http_stream_close(inputBlock());
  outputString("closed");
  return 0;
}

let spins: u64 = 0;

/** Loops forever without calling the host: for call time limits. */
export function spin(): i32 {
  while (true) {
    spins++;
    if (spins == 0) break; // after 2^64 iterations; keeps the loop observable to the optimiser
  }
  outputString(spins.toString());
  return 0;
}

const kept = new Array<Uint8Array>();

/** Allocates 1 MiB blocks (each touched) until memory runs out, keeping them all: for memory limits. */
export function grow(): i32 {
  while (true) {
    const block = new Uint8Array(1 << 20);
    memory.fill(block.dataStart, 1, <usize>block.length);
    kept.push(block);
  }
  return 0;
}

/** Output = input, without any host function (the input block is handed back as the output). */
export function echo(): i32 {
  const n = input_length();
  output_set(n == 0 ? alloc(0) : input_offset(), n);
  return 0;
}

/** Aborts with a message (an assertion that fails): the message must reach the host's error. */
export function crash(): i32 {
  assert(false, "probe crashed on purpose");
  return 0;
}

/** Copies a 16 MiB buffer into new Extism blocks, keeping them all, up to 1000 times: for kernel memory limits. */
export function hoard(): i32 {
  const block = new Uint8Array(16 << 20);
  let count = 0;
  for (; count < 1000; count++) mem_to_block(<u64>block.dataStart, <u64>block.length);
  outputString(count.toString());
  return 0;
}

/** Allocates 16 MiB Extism blocks with the kernel's `alloc`, keeping them all, up to 1000 times. */
export function hoard_alloc(): i32 {
  let count = 0;
  for (; count < 1000; count++) alloc(16 << 20);
  outputString(count.toString());
  return 0;
}

/** Input: a numeric handle. Calls http_stream_read_into with a capacity of 0 bytes. */
export function read_into_zero(): i32 {
  const handle = U64.parseInt(String.UTF8.decode(input().buffer));
  const buffer = new Uint8Array(16);
  outputString(http_stream_read_into(handle, <u64>buffer.dataStart, 0).toString());
  return 0;
}

/** Input: a config key. Output: its value from the host's `config`, or nothing when unset. */
export function config_get(): i32 {
  const value = Config.get(String.UTF8.decode(input().buffer));
  outputString(value === null ? "" : value);
  return 0;
}
