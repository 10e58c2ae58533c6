// sdk-selftest: exports that run the AssemblyScript SDK's functions on inputs a test passes and write back exactly what they gave (test/sdk-selftest.test.ts).
//
// Bytes travel as lower-case hex, AssemblyScript strings as their UTF-16 code units in hex (four
// digits a unit), and f64 values as the hex of their IEEE-754 bits, so nothing is lost or
// re-interpreted on the way to the test. A string argument is a JSON string or {"utf16":"<hex>"}
// (which can hold a lone surrogate, as an AssemblyScript string can).

import {
  Fnv1a32,
  JSON_ARRAY,
  Header,
  HttpError,
  HttpRequest,
  HttpResponse,
  JsonValue,
  JsonWriter,
  Stream,
  base64Decode,
  base64DecodeBytes,
  base64Encode,
  fail,
  input,
  jsonError,
  jsonString,
  output,
  parseJson,
  parseJsonString,
  request,
  stream,
  utf8,
} from "../sdk";
import { encodedLength } from "../sdk/base64";
import { ByteBuffer } from "../sdk/bytes";

const HEX = "0123456789abcdef";

/** `bytes` as lower-case hex. */
function hexOf(bytes: Uint8Array): string {
  const out = new ByteBuffer(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    const b = <i32>unchecked(bytes[i]);
    out.byte(<u8>HEX.charCodeAt(b >> 4)).byte(<u8>HEX.charCodeAt(b & 15));
  }
  return out.toString();
}

function hexDigit(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/** The bytes of lower-case hex text (an odd or bad digit ends the bytes early). */
function bytesOfHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const hi = hexDigit(hex.charCodeAt(i * 2));
    const lo = hexDigit(hex.charCodeAt(i * 2 + 1));
    if (hi < 0 || lo < 0) return out.subarray(0, i);
    out[i] = <u8>((hi << 4) | lo);
  }
  return out;
}

/** The UTF-16 code units of `s`, four hex digits each. */
function unitsOf(s: string): string {
  const out = new ByteBuffer(s.length * 4);
  for (let i = 0; i < s.length; i++) {
    const unit = <i32>s.charCodeAt(i);
    for (let shift = 12; shift >= 0; shift -= 4) out.byte(<u8>HEX.charCodeAt((unit >> shift) & 15));
  }
  return out.toString();
}

/** A string argument: a JSON string, or {"utf16":"<four hex digits a unit>"}. */
function stringArg(v: JsonValue | null): string {
  if (v === null) return "";
  if (v.isString) return v.str();
  const hex = v.getString("utf16");
  const units = new Array<i32>();
  for (let i = 0; i + 4 <= hex.length; i += 4) units.push(<i32>U32.parseInt(hex.substr(i, 4), 16));
  return String.fromCharCodes(units);
}

/** The IEEE-754 bits of `v` as 16 hex digits. */
function bitsOf(v: f64): string {
  return reinterpret<u64>(v).toString(16).padStart(16, "0");
}

// ---- JSON reading ----

/** Writes what the JsonValue API says of `v` (see json_parse). Kept small: it recurses as deep as the document. */
function describe(v: JsonValue, w: JsonWriter): void {
  if (v.kind >= JSON_ARRAY) describeContainer(v, w);
  else describeScalar(v, w);
}

/** A container: its kind, members and (for objects) keys. */
function describeContainer(v: JsonValue, w: JsonWriter): void {
  w.beginObject().key("t").string(v.isArray ? "arr" : "obj");
  describeMembers(v, w);
  if (v.isObject) describeKeys(v, w);
  w.endObject();
}

/** A value that is not a container. */
function describeScalar(v: JsonValue, w: JsonWriter): void {
  w.beginObject();
  if (v.isNull) w.key("t").string("null");
  else if (v.isBool) w.key("t").string("bool").key("v").bool(v.boolean);
  else if (v.isNumber) {
    w.key("t").string("num").key("raw").string(v.rawText()).key("bits").string(bitsOf(v.f64())).key("int");
    if (v.isInteger) w.string(v.i64().toString());
    else w.null();
    w.key("i64or").string(v.i64(-42).toString());
  } else {
    const s = v.str();
    w.key("t").string("str").key("bytes").string(hexOf(v.bytes())).key("utf16").string(unitsOf(s));
    w.key("equalsItself").bool(v.equalsString(s));
  }
  w.endObject();
}

/** A container's size, its members (by at()), and whether the accessors refuse what is out of range. */
function describeMembers(v: JsonValue, w: JsonWriter): void {
  const n = v.size;
  w.key("size").int(n).key("items").beginArray();
  for (let i = 0; i < n; i++) describe(v.at(i)!, w);
  w.endArray();
  const items = v.items!;
  let same = items.length == n;
  for (let i = 0; same && i < n; i++) same = unchecked(items[i]) == v.at(i);
  w.key("itemsSame").bool(same);
  w.key("outOfRangeNull").bool(v.at(-1) === null && v.at(n) === null && v.keyAt(n) === null && v.keyAt(-1) === null);
}

/** An object's keys (keyAt, as UTF-16 units), and for each, the index of the value get(key) returns. */
function describeKeys(v: JsonValue, w: JsonWriter): void {
  const n = v.size;
  w.key("keys").beginArray();
  for (let i = 0; i < n; i++) w.string(unitsOf(v.keyAt(i)!));
  w.endArray().key("get").beginArray();
  for (let i = 0; i < n; i++) {
    const key = v.keyAt(i)!;
    const got = v.get(key);
    let at = -1;
    for (let j = 0; j < n; j++) if (v.at(j) == got) at = j;
    w.int(v.has(key) && v.keyEquals(i, key) ? at : -2);
  }
  w.endArray();
}

function describeDocument(doc: JsonValue | null, w: JsonWriter): void {
  w.beginObject();
  if (doc === null) w.key("ok").bool(false).key("error").string(jsonError());
  else {
    w.key("ok").bool(true).key("raw").string(hexOf(doc.raw())).key("tree");
    if (doc.kind >= JSON_ARRAY) describeContainer(doc, w);
    else describeScalar(doc, w); // a second call site, so that the optimiser keeps it out of describe()
  }
  w.endObject();
}

/**
 * Input: any bytes, parsed with parseJson. Output {"ok":false,"error":"<jsonError()>"} or
 * {"ok":true,"raw":"<hex of root.raw()>","tree":T}. T is {"t":"null"}, {"t":"bool","v"},
 * {"t":"num","raw","bits","int":"<i64>"|null,"i64or":"<i64(-42)>"},
 * {"t":"str","bytes":"<hex of bytes()>","utf16":"<str()>","equalsItself"}, or for containers
 * {"t":"arr"|"obj","size","items":[T],"itemsSame","outOfRangeNull"} and for objects also
 * "keys":["<keyAt(i)>"] and "get":[index of the value get(keyAt(i)) returns].
 */
export function json_parse(): i32 {
  const w = new JsonWriter(256);
  describeDocument(parseJson(input()), w);
  output(w.toBytes());
  return 0;
}

/** Input: a string argument (see the top); parsed with parseJsonString. Output: as json_parse. */
export function json_parse_string(): i32 {
  const arg = parseJson(input());
  if (arg === null) return fail("json_parse_string input must be a string argument");
  const w = new JsonWriter(256);
  describeDocument(parseJsonString(stringArg(arg)), w);
  output(w.toBytes());
  return 0;
}

/** Writes a value that may be absent: null, or what describe() says of it. */
function describeOrNull(v: JsonValue | null, w: JsonWriter): void {
  if (v === null) w.null();
  else describe(v, w);
}

/** What the accessors of `v` give for `key` and `index`, on any kind of value (see json_access). */
function describeAccess(v: JsonValue, key: string, index: i32, w: JsonWriter): void {
  w.beginObject().key("get");
  describeOrNull(v.get(key), w);
  w.key("has").bool(v.has(key)).key("at");
  describeOrNull(v.at(index), w);
  const keyAt = v.keyAt(index);
  w.key("keyAt");
  if (keyAt === null) w.null();
  else w.string(unitsOf(keyAt));
  w.key("keyEquals").bool(v.keyEquals(index, key)).key("keyEqualsFolded").bool(v.keyEquals(index, key, true));
  w.key("getString").string(unitsOf(v.getString(key, "otherwise")));
  w.key("getInteger").string(v.getInteger(key, -7).toString());
  w.key("getNumber").string(bitsOf(v.getNumber(key, -7.5)));
  w.key("size").int(v.size).key("keysNull").bool(v.keys === null).key("itemsNull").bool(v.items === null);
  w.key("str").string(unitsOf(v.str())).key("f64").string(bitsOf(v.f64())).key("i64").string(v.i64(-9).toString());
  w.key("equalsString").bool(v.equalsString(key)).key("rawText").string(unitsOf(v.rawText()));
  w.endObject();
}

/**
 * Input: {"doc":"<JSON text>","key":"<string argument>","index":N}. Output: {"error":"..."} when
 * the text is not JSON, else what every accessor of the root gives for that key and index:
 * get, has, at (as json_parse's trees, or null), keyAt, keyEquals (exact and ASCII-folded),
 * getString("otherwise"), getInteger(-7), getNumber(-7.5) (bits), size, keys/items null,
 * str(), f64() (bits), i64(-9), equalsString(key) and rawText().
 */
export function json_access(): i32 {
  const req = parseJson(input());
  if (req === null || !req.isObject) return fail('json_access input must be {"doc":"...","key":"...","index":N}');
  const doc = parseJson(req.get("doc")!.bytes());
  const w = new JsonWriter(256);
  if (doc === null) w.beginObject().key("error").string(jsonError()).endObject();
  else describeAccess(doc, stringArg(req.get("key")), <i32>req.getInteger("index"), w);
  output(w.toBytes());
  return 0;
}

// ---- JSON writing ----

/** Applies one writer operation [name, arg]; false for an unknown one. */
function writeOp(w: JsonWriter, name: string, a: JsonValue | null): bool {
  if (name == "beginObject") w.beginObject();
  else if (name == "endObject") w.endObject();
  else if (name == "beginArray") w.beginArray();
  else if (name == "endArray") w.endArray();
  else if (name == "key") w.key(stringArg(a));
  else if (name == "string") w.string(stringArg(a));
  else if (name == "jsonString") w.raw(utf8(jsonString(stringArg(a))));
  else if (name == "stringBytes") w.stringBytes(bytesOfHex(stringArg(a)));
  else if (name == "base64") w.base64(bytesOfHex(stringArg(a)));
  else if (name == "int") w.int(I64.parseInt(stringArg(a)));
  else if (name == "uint") w.uint(U64.parseInt(stringArg(a)));
  else if (name == "number") w.number(reinterpret<f64>(U64.parseInt(stringArg(a), 16)));
  else if (name == "bool") w.bool(a !== null && a.boolean);
  else if (name == "null") w.null();
  else if (name == "raw") w.raw(utf8(stringArg(a)));
  else return false;
  return true;
}

/**
 * Input: [[op, arg?], ...], JsonWriter calls in order (ops: beginObject, endObject, beginArray,
 * endArray, key, string, jsonString, stringBytes and base64 (hex), int and uint (decimal text),
 * number (hex of the f64 bits), bool, null, raw). Output: the bytes the writer made.
 */
export function json_write(): i32 {
  const ops = parseJson(input());
  if (ops === null || !ops.isArray) return fail("json_write input must be [[op, arg?], ...]");
  const w = new JsonWriter(1); // the smallest buffer, so that every write may have to grow it
  for (let i = 0; i < ops.size; i++) {
    const op = ops.at(i)!;
    const name = op.at(0);
    if (name === null || !writeOp(w, name.str(), op.at(1))) return fail("json_write: unknown op " + op.rawText());
  }
  output(w.toBytes());
  return 0;
}

// ---- base64 ----

/**
 * Input: {"encode":["<hex>",...],"decode":[string argument,...]}. Output: {"encode":[encode(bytes)],
 * "encodedLength":[encodedLength(n)], "decode":["<hex>"|null] (decode(string)),
 * "decodeBytes":["<hex>"|null] (decodeBytes of the string's UTF-8 bytes)}.
 */
export function base64(): i32 {
  const doc = parseJson(input());
  if (doc === null || !doc.isObject) return fail('base64 input must be {"encode":[...],"decode":[...]}');
  const encodeList = doc.get("encode");
  const decodeList = doc.get("decode");
  const w = new JsonWriter(1024);
  w.beginObject().key("encode").beginArray();
  const n = encodeList !== null ? encodeList.size : 0;
  for (let i = 0; i < n; i++) w.string(base64Encode(bytesOfHex(encodeList!.at(i)!.str())));
  w.endArray().key("encodedLength").beginArray();
  for (let i = 0; i < n; i++) w.int(encodedLength(bytesOfHex(encodeList!.at(i)!.str()).length));
  w.endArray();
  const m = decodeList !== null ? decodeList.size : 0;
  w.key("decode").beginArray();
  for (let i = 0; i < m; i++) writeMaybeHex(w, base64Decode(stringArg(decodeList!.at(i))));
  w.endArray().key("decodeBytes").beginArray();
  for (let i = 0; i < m; i++) writeMaybeHex(w, base64DecodeBytes(utf8(stringArg(decodeList!.at(i)))));
  w.endArray().endObject();
  output(w.toBytes());
  return 0;
}

function writeMaybeHex(w: JsonWriter, bytes: Uint8Array | null): void {
  if (bytes === null) w.null();
  else w.string(hexOf(bytes));
}

// ---- requests ----

/** One builder call [name, arg]; false for an unknown one. */
function buildOp(req: HttpRequest, name: string, op: JsonValue): bool {
  const a = op.at(1);
  const n: i64 = a !== null ? a.i64(-1) : -1;
  if (name == "header") req.header(stringArg(a), stringArg(op.at(2)));
  else if (name == "body") req.body(stringArg(a));
  else if (name == "bodyBytes") req.bodyBytes(bytesOfHex(stringArg(a)));
  else if (name == "json") req.json(stringArg(a));
  else if (name == "binaryResponse") req.binaryResponse();
  else if (name == "timeout") req.timeout(n);
  else if (name == "connectTimeout") req.connectTimeout(n);
  else if (name == "firstByteTimeout") req.firstByteTimeout(n);
  else if (name == "idleTimeout") req.idleTimeout(n);
  else if (name == "redirect") req.redirect(stringArg(a));
  else if (name == "maxRedirects") req.maxRedirects(n);
  else if (name == "maxResponseBytes") req.maxResponseBytes(n);
  else if (name == "integrity") req.integrity(stringArg(a));
  else if (name == "responseHeaders") req.responseHeaders(stringArg(a));
  else return false;
  return true;
}

/**
 * A request built from {"make":"new"|"get"|"post","url","method"?,"ops":[[name, args...]]}: "new"
 * calls new HttpRequest(url) or new HttpRequest(url, method), then each builder call in order.
 * Null (after fail()) when the description is bad.
 */
function buildRequest(doc: JsonValue | null): HttpRequest | null {
  if (doc === null || !doc.isObject) {
    fail('the request must be {"make":"new"|"get"|"post","url":"...","method"?:"...","ops":[...]}');
    return null;
  }
  const url = stringArg(doc.get("url"));
  const make = doc.getString("make", "new");
  const method = doc.get("method");
  let req: HttpRequest;
  if (make == "get") req = HttpRequest.get(url);
  else if (make == "post") req = HttpRequest.post(url);
  else req = method !== null ? new HttpRequest(url, stringArg(method)) : new HttpRequest(url);
  const ops = doc.get("ops");
  for (let i = 0; ops !== null && i < ops.size; i++) {
    const op = ops.at(i)!;
    const name = op.at(0);
    if (name === null || !buildOp(req, name.str(), op)) {
      fail("unknown builder call " + op.rawText());
      return null;
    }
  }
  return req;
}

/** Input: a request description (see buildRequest). Output: the wire JSON of toJson(). */
export function build_request(): i32 {
  const req = buildRequest(parseJson(input()));
  if (req === null) return 1;
  output(req.toJson());
  return 0;
}

function writeHeaders(w: JsonWriter, headers: Array<Header>): void {
  w.beginArray();
  for (let i = 0; i < headers.length; i++) w.beginArray().string(unchecked(headers[i]).name).string(unchecked(headers[i]).value).endArray();
  w.endArray();
}

function writeError(w: JsonWriter, e: HttpError | null): void {
  w.key("error");
  if (e === null) w.null();
  else e.write(w);
}

/** Everything a capsule can read of a buffered response. */
function describeResponse(res: HttpResponse, w: JsonWriter): void {
  w.beginObject();
  writeError(w, res.error);
  w.key("ok").bool(res.ok).key("status").int(res.status).key("bodyEncoding").string(res.bodyEncoding);
  w.key("body").string(hexOf(res.body)).key("text").string(res.text()).key("headers");
  writeHeaders(w, res.headers);
  w.key("rawHeaders");
  writeHeaders(w, res.rawHeaders);
  w.key("finalUrl").string(res.finalUrl).key("redirects").int(res.redirects);
  const parsed = res.error === null ? res.json() : null;
  w.key("json");
  if (parsed === null) w.null();
  else w.raw(parsed.raw());
  w.endObject();
}

/** Input: a request description (see buildRequest), sent with request(). Output: the response as describeResponse writes it. */
export function send(): i32 {
  const req = buildRequest(parseJson(input()));
  if (req === null) return 1;
  const w = new JsonWriter(512);
  describeResponse(request(req), w);
  output(w.toBytes());
  return 0;
}

// ---- streams ----

/** Reads `s` to its end the way `mode` says; records each piece's length and hashes the bytes. */
function readStream(s: Stream, mode: string, size: i32, lengths: Array<i32>, hash: Fnv1a32): void {
  if (mode == "readAll") {
    const all = s.readAll();
    lengths.push(all.length);
    hash.update(all);
    return;
  }
  const dest = new Uint8Array(size > 0 ? size : 1);
  while (true) {
    let piece: Uint8Array | null;
    if (mode == "readInto") {
      const n = s.readInto(dest);
      piece = n > 0 ? dest.subarray(0, n) : null;
    } else {
      piece = s.read();
    }
    if (piece === null) break;
    lengths.push(piece.length);
    hash.update(piece);
  }
}

/**
 * Input: {"request":<request description>,"mode":"read"|"readInto"|"readAll","size":N (readInto's
 * destination),"bufferSize":N (stream()'s)}. Opens the stream, reads it to its end, reads once
 * more, closes it twice and reads again. Output: {"error","status","handle","contentType",
 * "pieces":[lengths],"bytes","bytesRead","fnv1a32","done","afterEnd","afterClose"} (afterEnd and
 * afterClose: whether read() and readInto() gave nothing there).
 */
export function stream_read(): i32 {
  const doc = parseJson(input());
  if (doc === null || !doc.isObject) return fail('stream_read input must be {"request":{...},"mode":"...","size":N,"bufferSize":N}');
  const req = buildRequest(doc.get("request"));
  if (req === null) return 1;
  const s = stream(req, <i32>doc.getInteger("bufferSize", 0));
  const w = new JsonWriter(512);
  w.beginObject();
  writeError(w, s.error);
  w.key("status").int(s.status).key("handle").string(s.handle);
  const contentType = s.header("content-type");
  w.key("contentType");
  if (contentType === null) w.null();
  else w.string(contentType);
  const lengths = new Array<i32>();
  const hash = new Fnv1a32();
  readStream(s, doc.getString("mode", "read"), <i32>doc.getInteger("size", 0), lengths, hash);
  let bytes: i64 = 0;
  w.key("pieces").beginArray();
  for (let i = 0; i < lengths.length; i++) {
    w.int(unchecked(lengths[i]));
    bytes += unchecked(lengths[i]);
  }
  w.endArray().key("bytes").int(bytes).key("bytesRead").uint(s.bytesRead).key("fnv1a32").string(hash.hex());
  w.key("done").bool(s.done);
  const probe = new Uint8Array(8);
  w.key("afterEnd").bool(s.read() === null && s.readInto(probe) == 0);
  s.close();
  s.close();
  w.key("afterClose").bool(s.read() === null && s.readInto(probe) == 0).endObject();
  output(w.toBytes());
  return 0;
}
