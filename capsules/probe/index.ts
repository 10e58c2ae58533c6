// probe: the capsule the runtime's tests and benchmarks drive. Each export is one host-ABI
// behaviour, with inputs passed to the host untouched so malformed input reaches it as sent.

import { Config, Host, Memory } from "@extism/as-pdk";
import {
  alloc,
  block_to_mem,
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
  Header,
  HeaderSet,
  HttpError,
  HttpRequest,
  HttpResponse,
  JsonValue,
  JsonWriter,
  Stream,
  fail,
  fromBlock,
  http_stream_next,
  input,
  inputBlock,
  jsonError,
  jsonString,
  output,
  outputBlock,
  outputString,
  parseJson,
  parseResponse,
  parseStreamStart,
  requestBlock,
  streamBlock,
  streamJson,
  takeBlock,
  toBlock,
  utf8,
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

/**
 * Input: {"request":{...},"count":N}. Opens N streams with that request and reads them in turn,
 * one http_stream_read_into (each stream's 256 KiB buffer) a turn, until every one has ended, all
 * in this one call: what a capsule reading several downloads at once does. Closes each at its end.
 * Output: {"status":200,"streams":N,"bytes":B,"chunks":C}, or the first start reply that failed.
 */
export function stream_many(): i32 {
  const doc = parseJson(input());
  if (doc === null) return fail("stream_many input is not JSON: " + jsonError());
  const req = doc.get("request");
  const count = doc.get("count");
  if (req === null || count === null || !count.isNumber || !count.isInteger || count.integer < 1) {
    return fail('stream_many input must be {"request":{...},"count":N} with N >= 1');
  }
  const streams = new Array<Stream>();
  for (let i: i64 = 0; i < count.integer; i++) {
    const s = streamJson(req.raw());
    if (s.error !== null) {
      for (let j = 0; j < streams.length; j++) unchecked(streams[j]).close();
      output(s.raw);
      return 0;
    }
    streams.push(s);
  }
  let bytes: u64 = 0;
  let chunks: u64 = 0;
  let open = streams.length;
  const ended = new Array<bool>(streams.length);
  while (open > 0) {
    for (let i = 0; i < streams.length; i++) {
      if (unchecked(ended[i])) continue;
      const s = unchecked(streams[i]);
      const chunk = s.read();
      if (chunk === null) {
        ended[i] = true;
        open--;
        s.close();
        continue;
      }
      bytes += <u64>chunk.length;
      chunks++;
    }
  }
  const w = new JsonWriter(96);
  w.beginObject().key("status").int(200).key("streams").int(streams.length).key("bytes").uint(bytes).key("chunks").uint(chunks).endObject();
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

/** The host's default `maxRequestBytes`; every flood request is built to stay just under it. */
const FLOOD_MAX_BYTES: i32 = 1 << 20;
/** Room left under the limit (the request is "just under" it, whatever the URL's length). */
const FLOOD_SLACK: i32 = 16;
const ERROR_REPLY = utf8('{"error":');

/** `n` as decimal digits, zero-padded to `width`. */
function padded(n: i32, width: i32): string {
  return n.toString().padStart(width, "0");
}

/**
 * One request of a flood, built once per call. `deep`: `headers` nests arrays to fill the
 * request (about 520k levels); `headers`: about 61k `["x-000000","v"]` pairs; `keys`: about
 * 61k unknown keys `"k000000":"vvvv"`; `method`: a method of about 1 MiB; `integrity`: about
 * 116k `sha256-A` entries in `options.integrity`; `valid`: `{"url":...}`. Null for an unknown kind.
 */
function floodRequest(kind: string, url: string): Uint8Array | null {
  const limit = FLOOD_MAX_BYTES - FLOOD_SLACK;
  const w = new JsonWriter(FLOOD_MAX_BYTES);
  w.beginObject().key("url").string(url);
  if (kind == "deep") {
    const depth = (limit - w.out.length - "\"headers\":".length - 2) / 2;
    const nest = new Uint8Array(depth * 2);
    memory.fill(nest.dataStart, 0x5b, <usize>depth); // [
    memory.fill(nest.dataStart + <usize>depth, 0x5d, <usize>depth); // ]
    w.key("headers").raw(nest);
  } else if (kind == "headers") {
    w.key("headers").beginArray();
    const pair = '["x-000000","v"],'.length;
    for (let i = 0; w.out.length + pair + 2 <= limit; i++) w.beginArray().string("x-" + padded(i, 6)).string("v").endArray();
    w.endArray();
  } else if (kind == "keys") {
    const entry = ',"k000000":"vvvv"'.length;
    for (let i = 0; w.out.length + entry + 1 <= limit; i++) w.key("k" + padded(i, 6)).string("vvvv");
  } else if (kind == "method") {
    const n = limit - w.out.length - '"method":"",'.length - 1;
    const method = new Uint8Array(n);
    memory.fill(method.dataStart, 0x4d, <usize>n); // M
    w.key("method").string(String.UTF8.decode(method.buffer));
  } else if (kind == "integrity") {
    w.key("options").beginObject().key("integrity");
    const unit = "sha256-A ";
    const n = (limit - w.out.length - 5) / unit.length;
    w.string(unit.repeat(n)).endObject();
  } else if (kind != "valid") {
    return null;
  }
  w.endObject();
  return w.toBytes();
}

/**
 * Input: {"kind":"deep"|"headers"|"keys"|"method"|"integrity"|"valid","count":N,"url":"..."}. Sends N requests of
 * that kind through http_request, one after another, as fast as the host answers, and frees
 * every reply unread (only its first bytes are looked at, to count errors).
 * Output: {"kind","bytes","sent","errors","firstError"} (bytes: one request's size;
 * firstError: the code of the first error reply, or null).
 */
export function flood(): i32 {
  const doc = parseJson(input());
  if (doc === null) return fail("flood input is not JSON: " + jsonError());
  const count = doc.get("count");
  if (count === null || !count.isNumber || !count.isInteger || count.integer < 0) {
    return fail('flood input must be {"kind":"deep"|"headers"|"keys"|"method"|"integrity"|"valid","count":N,"url":"..."}');
  }
  const kind = doc.getString("kind");
  const req = floodRequest(kind, doc.getString("url"));
  if (req === null) return fail('flood kind must be "deep", "headers", "keys", "method", "integrity" or "valid", not ' + jsonString(kind));
  const head = new Uint8Array(ERROR_REPLY.length);
  let errors: i64 = 0;
  let firstError: string | null = null;
  let sent: i64 = 0;
  for (; sent < count.integer; sent++) {
    const b = toBlock(req); // a fresh block per call (the host may consume its argument), same bytes
    const reply = http_request(b);
    free(b);
    if (length(reply) >= <u64>head.length) {
      block_to_mem(reply, <u64>head.dataStart, <u64>head.length);
      if (memory.compare(head.dataStart, ERROR_REPLY.dataStart, <usize>head.length) == 0) {
        errors++;
        if (firstError === null) {
          firstError = "";
          const error = parseJson(fromBlock(reply));
          if (error !== null) {
            const detail = error.get("error");
            if (detail !== null) firstError = detail.getString("code");
          }
        }
      }
    }
    free(reply);
  }
  const w = new JsonWriter(128);
  w.beginObject()
    .key("kind").string(kind)
    .key("bytes").int(req.length)
    .key("sent").int(sent)
    .key("errors").int(errors);
  w.key("firstError");
  if (firstError === null) w.null();
  else w.string(firstError);
  w.endObject();
  output(w.toBytes());
  return 0;
}

/**
 * Input: N as decimal digits. Runs N rounds of xorshift64 without calling the host (pure CPU,
 * bounded, unlike `spin`). Output: the final state, so the loop cannot be optimised away.
 */
export function spin_count(): i32 {
  const n = U64.parseInt(String.UTF8.decode(input().buffer));
  let x: u64 = 0x9e3779b97f4a7c15;
  for (let i: u64 = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  outputString(x.toString());
  return 0;
}

/** `{"error":{...}}` for a failed request. */
function errorJson(e: HttpError): Uint8Array {
  const w = new JsonWriter(64 + e.message.length);
  w.beginObject().key("error");
  e.write(w);
  w.endObject();
  return w.toBytes();
}

/** What `parsed` reads of a response, the way a capsule would: status, content-type, the body. */
function readTypical(res: HttpResponse, w: JsonWriter): void {
  const contentType = res.header("content-type");
  w.beginObject().key("status").int(res.status).key("contentType");
  if (contentType === null) w.null();
  else w.string(contentType);
  w.key("bodyBytes").int(res.body.length).endObject();
}

/**
 * Input: a wire request JSON. Sends it through the SDK (requestBlock: the parseResponse path) and
 * reads status, the content-type header and the body. Output: {"status","contentType","bodyBytes"}
 * (contentType null when absent), or {"error":{...}} when the request failed.
 */
export function parsed(): i32 {
  const res = requestBlock(inputBlock());
  const err = res.error;
  if (err !== null) {
    output(errorJson(err));
    return 0;
  }
  const w = new JsonWriter(96);
  readTypical(res, w);
  output(w.toBytes());
  return 0;
}

/** Writes `headers` as [[name, value], ...]. */
function writeHeaders(w: JsonWriter, headers: Array<Header>): void {
  w.beginArray();
  for (let i = 0; i < headers.length; i++) {
    const h = unchecked(headers[i]);
    w.beginArray().string(h.name).string(h.value).endArray();
  }
  w.endArray();
}

/** Writes the lookups of `names` in `set`: "header" (value or null each) and "values" (arrays). */
function writeLookups(w: JsonWriter, set: HeaderSet, names: JsonValue): void {
  w.key("header").beginArray();
  for (let i = 0; i < names.size; i++) {
    const value = set.header(names.at(i)!.str());
    if (value === null) w.null();
    else w.string(value);
  }
  w.endArray().key("values").beginArray();
  for (let i = 0; i < names.size; i++) {
    const values = set.headerValues(names.at(i)!.str());
    w.beginArray();
    for (let j = 0; j < values.length; j++) w.string(unchecked(values[j]));
    w.endArray();
  }
  w.endArray();
  w.key("headers");
  writeHeaders(w, set.headers);
  w.key("rawHeaders");
  writeHeaders(w, set.rawHeaders);
}

function writeError(w: JsonWriter, e: HttpError | null): void {
  w.key("error");
  if (e === null) w.null();
  else e.write(w);
}

/** sdk_parse for a buffered reply: everything parseResponse gives. */
function describeResponse(reply: Uint8Array, names: JsonValue, w: JsonWriter): void {
  const res = parseResponse(reply);
  writeError(w, res.error);
  w.key("status").int(res.status);
  writeLookups(w, res, names);
  w.key("bodyEncoding").string(res.bodyEncoding);
  w.key("body").base64(res.body);
  w.key("finalUrl").string(res.finalUrl);
  w.key("redirects").int(res.redirects);
  w.key("elapsedMs").number(res.elapsedMs);
}

/** sdk_parse for a stream start reply: everything parseStreamStart gives (the stream is not read). */
function describeStream(reply: Uint8Array, names: JsonValue, w: JsonWriter): void {
  const s = parseStreamStart(reply);
  writeError(w, s.error);
  w.key("status").int(s.status);
  w.key("handle").string(s.handle);
  writeLookups(w, s, names);
}

/**
 * For tests of the SDK's reply parsing, without a host call. Input:
 * {"kind":"response"|"stream","reply":"<the reply's text>","names":["<header name>",...]}.
 * Output: {"error":{...}|null,"status",("handle"),"header":[value|null per name],
 * "values":[[values] per name],"headers":[[n,v]],"rawHeaders":[[n,v]],
 * and for a response "bodyEncoding","body" (base64 of the bytes),"finalUrl","redirects","elapsedMs"}.
 */
export function sdk_parse(): i32 {
  const doc = parseJson(input());
  const usage = 'sdk_parse input must be {"kind":"response"|"stream","reply":"...","names":[...]}';
  if (doc === null || !doc.isObject) return fail(usage);
  const reply = doc.get("reply");
  const names = doc.get("names");
  const kind = doc.getString("kind");
  if (reply === null || !reply.isString || names === null || !names.isArray) return fail(usage);
  const w = new JsonWriter(512);
  w.beginObject();
  if (kind == "response") describeResponse(reply.bytes(), names, w);
  else if (kind == "stream") describeStream(reply.bytes(), names, w);
  else return fail(usage);
  w.endObject();
  output(w.toBytes());
  return 0;
}

/** A sum over what a capsule reads of `res` (typical: status, content-type, body; all: also meta and both header arrays). */
function readingSum(res: HttpResponse, all: bool): i64 {
  const contentType = res.header("content-type");
  let sum: i64 = <i64>res.status + <i64>res.body.length + (contentType === null ? 0 : <i64>contentType.length);
  if (all) {
    sum += <i64>res.finalUrl.length + <i64>res.redirects + <i64>res.elapsedMs;
    sum += <i64>res.headers.length + <i64>res.rawHeaders.length;
  }
  return sum;
}

const LOOP_USAGE = 'parse_loop input must be {"reply":"...","count":N,"read":"typical"|"all"}';

/**
 * For measuring the SDK's reply parsing (bench): input {"reply":"<reply text>","count":N,
 * "read":"typical"|"all"}. Parses the reply N times with parseResponse, reading each time what
 * `parsed` reads (typical) or also meta and both header arrays (all). Output: the sum of the
 * readings (readingSum), so that nothing is optimised away.
 */
export function parse_loop(): i32 {
  const doc = parseJson(input());
  if (doc === null || !doc.isObject) return fail(LOOP_USAGE);
  const reply = doc.get("reply");
  const count = doc.getInteger("count", -1);
  if (reply === null || !reply.isString || count < 0) return fail(LOOP_USAGE);
  const all = doc.getString("read", "typical") == "all";
  const bytes = reply.bytes();
  let sum: i64 = 0;
  for (let i: i64 = 0; i < count; i++) sum += readingSum(parseResponse(bytes), all);
  outputString(sum.toString());
  return 0;
}

/** Writes `v` back as JSON through the JsonValue API (objects by keys/items, arrays by size/at). */
function rewrite(v: JsonValue, w: JsonWriter): void {
  if (v.isNull) w.null();
  else if (v.isBool) w.bool(v.boolean);
  else if (v.isNumber) {
    if (v.isInteger) w.int(v.i64());
    else w.raw(utf8(v.f64().toString()));
  } else if (v.isString) w.stringBytes(v.bytes());
  else if (v.isArray) {
    w.beginArray();
    for (let i = 0; i < v.size; i++) rewrite(v.at(i)!, w);
    w.endArray();
  } else {
    const keys = v.keys!;
    const items = v.items!;
    w.beginObject();
    for (let i = 0; i < keys.length; i++) {
      w.key(unchecked(keys[i]));
      rewrite(unchecked(items[i]), w);
    }
    w.endObject();
  }
}

/**
 * For tests of the SDK's JSON reader: input, any bytes. Output: {"value":<the document written
 * back through the JsonValue API>} or {"error":"<jsonError()>"}.
 */
export function json_rewrite(): i32 {
  const doc = parseJson(input());
  const w = new JsonWriter(256);
  w.beginObject();
  if (doc === null) w.key("error").string(jsonError());
  else {
    w.key("value");
    rewrite(doc, w);
  }
  w.endObject();
  output(w.toBytes());
  return 0;
}

/**
 * For tests of the SDK's request builder: input {"url":"...","responseHeaders":"<form>"?}.
 * Output: HttpRequest.get(url)'s wire JSON, with .responseHeaders(form) when a form is given.
 */
export function request_json(): i32 {
  const doc = parseJson(input());
  if (doc === null || !doc.isObject) return fail('request_json input must be {"url":"...","responseHeaders":"..."}');
  const req = HttpRequest.get(doc.getString("url"));
  const form = doc.get("responseHeaders");
  if (form !== null && form.isString) req.responseHeaders(form.str());
  output(req.toJson());
  return 0;
}

// ---- stream errors as values (http_stream_next) ----

/**
 * Reads one opened stream to its end or its first error with Stream.next(), and writes what
 * happened: {"status","bytes","fnv1a32","end":true}, or {"status","bytes","error":{...},"again":
 * "<code of one more next()>"} (the SDK repeats the error). Closes the stream. True when it ended.
 */
function readAttempt(s: Stream, w: JsonWriter): bool {
  const hash = new Fnv1a32();
  let failed: HttpError | null = null;
  for (let r = s.next(); !r.done; r = s.next()) {
    const error = r.error;
    if (error !== null) {
      failed = error;
      break;
    }
    hash.update(r.bytes!);
  }
  w.beginObject().key("status").int(s.status).key("bytes").uint(s.bytesRead).key("fnv1a32").string(hash.hex());
  if (failed === null) w.key("end").bool(true);
  else {
    w.key("error");
    failed.write(w);
    const again = s.next().error;
    w.key("again").string(again !== null ? again.code : "none");
  }
  w.endObject();
  s.close();
  return failed === null;
}

/**
 * Input: a JSON array of wire requests. Streams each in turn with Stream.next() (errors as
 * values), stopping after the first that reads to its end: a download retried on another route.
 * Output: {"attempts":[...]}, one entry per request tried: readAttempt's, or {"start":{...}} with
 * the start reply when the stream did not open.
 */
export function stream_attempts(): i32 {
  const doc = parseJson(input());
  if (doc === null || !doc.isArray) return fail("stream_attempts input must be a JSON array of requests");
  const w = new JsonWriter(256);
  w.beginObject().key("attempts").beginArray();
  for (let i = 0; i < doc.size; i++) {
    const s = streamJson(doc.at(i)!.raw());
    if (s.error !== null) {
      w.beginObject().key("start").raw(s.raw).endObject();
      continue;
    }
    if (readAttempt(s, w)) break;
  }
  w.endArray().endObject();
  output(w.toBytes());
  return 0;
}

/**
 * Input: {"handle":H,"capacity":C} (any i64s). Calls http_stream_next(H, C) once.
 * Output: the host's reply block verbatim (its tag byte, then the bytes or the error JSON).
 */
export function next_raw(): i32 {
  const doc = parseJson(input());
  const handle = doc !== null && doc.isObject ? doc.get("handle") : null;
  const capacity = doc !== null && doc.isObject ? doc.get("capacity") : null;
  if (handle === null || capacity === null || !handle.isInteger || !capacity.isInteger) {
    return fail('next_raw input must be {"handle":H,"capacity":C} with i64 integers');
  }
  outputBlock(http_stream_next(handle.integer, capacity.integer));
  return 0;
}
