// A compact JSON reader and writer over UTF-8 bytes in linear memory.
//
// The reader parses a whole document into a tree of JsonValue. Each value remembers its span in
// the source bytes, so a sub-document can be passed on verbatim (`raw()`), and strings are only
// unescaped when asked for (`str()` / `bytes()`). Runs without escapes are bulk-copied.
// Errors are values: parseJson returns null and jsonError() says why.

import { ByteBuffer } from "./bytes";
import { encodeInto } from "./base64";

export const JSON_NULL: i32 = 0;
export const JSON_BOOL: i32 = 1;
export const JSON_NUMBER: i32 = 2;
export const JSON_STRING: i32 = 3;
export const JSON_ARRAY: i32 = 4;
export const JSON_OBJECT: i32 = 5;

const MAX_DEPTH: i32 = 512;

export class JsonValue {
  kind: i32;
  /** The whole source document. */
  src: Uint8Array;
  /** Span of this value in `src` (a string's span includes its quotes). */
  start: i32;
  end: i32;
  boolean: bool = false;
  number: f64 = 0;
  /** For numbers written as integers that fit in an i64. */
  isInteger: bool = false;
  integer: i64 = 0;
  /** For strings: whether it contains backslash escapes. */
  escaped: bool = false;
  /** For objects: the keys, in order (duplicates kept; get() returns the last, as JSON.parse does). */
  keys: Array<string> | null = null;
  /** For arrays: the elements; for objects: the values, parallel to `keys`. */
  items: Array<JsonValue> | null = null;

  constructor(kind: i32, src: Uint8Array, start: i32) {
    this.kind = kind;
    this.src = src;
    this.start = start;
    this.end = start;
  }

  get isNull(): bool { return this.kind == JSON_NULL; }
  get isBool(): bool { return this.kind == JSON_BOOL; }
  get isNumber(): bool { return this.kind == JSON_NUMBER; }
  get isString(): bool { return this.kind == JSON_STRING; }
  get isArray(): bool { return this.kind == JSON_ARRAY; }
  get isObject(): bool { return this.kind == JSON_OBJECT; }

  /** Number of elements (array) or members (object); 0 otherwise. */
  get size(): i32 {
    const items = this.items;
    return items === null ? 0 : items.length;
  }

  /** The member `key` of an object, or null. */
  get(key: string): JsonValue | null {
    const keys = this.keys;
    const items = this.items;
    if (keys === null || items === null) return null;
    for (let i = keys.length - 1; i >= 0; i--) {
      if (unchecked(keys[i]) == key) return unchecked(items[i]);
    }
    return null;
  }

  has(key: string): bool {
    return this.get(key) !== null;
  }

  /** Element `i` of an array (or value `i` of an object), or null. */
  at(i: i32): JsonValue | null {
    const items = this.items;
    if (items === null || i < 0 || i >= items.length) return null;
    return unchecked(items[i]);
  }

  /** Key `i` of an object, or null. */
  keyAt(i: i32): string | null {
    const keys = this.keys;
    if (keys === null || i < 0 || i >= keys.length) return null;
    return unchecked(keys[i]);
  }

  /** The source bytes of this value, exactly as written (a view, not a copy). */
  raw(): Uint8Array {
    return this.src.subarray(this.start, this.end);
  }

  /** The source text of this value, exactly as written. */
  rawText(): string {
    return String.UTF8.decodeUnsafe(this.src.dataStart + <usize>this.start, <usize>(this.end - this.start));
  }

  /** A string's value as UTF-8 bytes (escapes resolved); the raw text for other kinds. */
  bytes(): Uint8Array {
    if (this.kind != JSON_STRING) return this.src.slice(this.start, this.end);
    const s = this.start + 1;
    const e = this.end - 1;
    if (!this.escaped) return this.src.slice(s, e);
    return unescapeRange(this.src.dataStart, s, e).toBytes();
  }

  /** A string's value; "" for other kinds (use rawText() for their source). */
  str(): string {
    if (this.kind != JSON_STRING) return "";
    const s = this.start + 1;
    const e = this.end - 1;
    if (!this.escaped) {
      return String.UTF8.decodeUnsafe(this.src.dataStart + <usize>s, <usize>(e - s));
    }
    return unescapeRange(this.src.dataStart, s, e).toString();
  }

  /** A number's value; NaN for other kinds. */
  f64(): f64 {
    return this.kind == JSON_NUMBER ? this.number : NaN;
  }

  /** An integer's value; `otherwise` for other kinds and for numbers with a fraction. */
  i64(otherwise: i64 = 0): i64 {
    return this.kind == JSON_NUMBER && this.isInteger ? this.integer : otherwise;
  }

  // Convenience accessors for object members.

  getString(key: string, otherwise: string = ""): string {
    const v = this.get(key);
    return v !== null && v.kind == JSON_STRING ? v.str() : otherwise;
  }

  getInteger(key: string, otherwise: i64 = 0): i64 {
    const v = this.get(key);
    return v !== null ? v.i64(otherwise) : otherwise;
  }

  getNumber(key: string, otherwise: f64 = 0): f64 {
    const v = this.get(key);
    return v !== null && v.kind == JSON_NUMBER ? v.number : otherwise;
  }
}

let lastError: string = "";

/** Why the last parseJson returned null. */
export function jsonError(): string {
  return lastError;
}

/** Parses a JSON document; null (see jsonError()) when it is not valid JSON. */
export function parseJson(src: Uint8Array): JsonValue | null {
  const p = new Parser(src);
  p.ws();
  const v = p.value(0);
  if (v === null) {
    lastError = p.err;
    return null;
  }
  p.ws();
  if (p.pos != p.end) {
    lastError = "unexpected data after the JSON value at byte " + p.pos.toString();
    return null;
  }
  lastError = "";
  return v;
}

/** Parses a JSON document given as a string. */
export function parseJsonString(s: string): JsonValue | null {
  return parseJson(Uint8Array.wrap(String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE)));
}

class Parser {
  src: Uint8Array;
  base: usize;
  pos: i32 = 0;
  end: i32;
  err: string = "";

  constructor(src: Uint8Array) {
    this.src = src;
    this.base = src.dataStart;
    this.end = src.length;
  }

  @inline peek(): u32 {
    return <u32>load<u8>(this.base + <usize>this.pos);
  }

  fail(what: string): JsonValue | null {
    if (this.err.length == 0) {
      this.err = this.pos < this.end
        ? what + " at byte " + this.pos.toString()
        : what + " at the end of the input";
    }
    return null;
  }

  ws(): void {
    while (this.pos < this.end) {
      const c = this.peek();
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) this.pos++;
      else break;
    }
  }

  literal(word: string, kind: i32, b: bool): JsonValue | null {
    const n = word.length;
    if (this.end - this.pos < n) return this.fail("invalid literal");
    for (let i = 0; i < n; i++) {
      if (<u32>load<u8>(this.base + <usize>(this.pos + i)) != <u32>word.charCodeAt(i)) {
        return this.fail("invalid literal");
      }
    }
    const v = new JsonValue(kind, this.src, this.pos);
    v.boolean = b;
    this.pos += n;
    v.end = this.pos;
    return v;
  }

  value(depth: i32): JsonValue | null {
    if (this.pos >= this.end) return this.fail("expected a value");
    const c = this.peek();
    if (c == 0x22) return this.string();
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x74) return this.literal("true", JSON_BOOL, true);
    if (c == 0x66) return this.literal("false", JSON_BOOL, false);
    if (c == 0x6e) return this.literal("null", JSON_NULL, false);
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.num();
    return this.fail("unexpected character");
  }

  string(): JsonValue | null {
    const v = new JsonValue(JSON_STRING, this.src, this.pos);
    this.pos++; // opening quote
    const base = this.base;
    const end = this.end;
    let pos = this.pos;
    while (true) {
      // The common case: plain bytes.
      while (pos < end) {
        const c = <u32>load<u8>(base + <usize>pos);
        if (c == 0x22 || c == 0x5c || c < 0x20) break;
        pos++;
      }
      if (pos >= end) {
        this.pos = pos;
        return this.fail("unterminated string");
      }
      const c = <u32>load<u8>(base + <usize>pos);
      if (c == 0x22) break;
      if (c < 0x20) {
        this.pos = pos;
        return this.fail("control character in string");
      }
      // Backslash escape.
      v.escaped = true;
      if (pos + 1 >= end) {
        this.pos = pos;
        return this.fail("unterminated string");
      }
      const e = <u32>load<u8>(base + <usize>(pos + 1));
      if (e == 0x75) {
        if (pos + 6 > end || hex4(base + <usize>(pos + 2)) < 0) {
          this.pos = pos;
          return this.fail("invalid \\u escape");
        }
        pos += 6;
      } else if (e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) {
        pos += 2;
      } else {
        this.pos = pos;
        return this.fail("invalid escape");
      }
    }
    this.pos = pos + 1;
    v.end = this.pos;
    return v;
  }

  num(): JsonValue | null {
    const v = new JsonValue(JSON_NUMBER, this.src, this.pos);
    const base = this.base;
    let pos = this.pos;
    let neg = false;
    if (load<u8>(base + <usize>pos) == 0x2d) {
      neg = true;
      pos++;
    }
    const digitsStart = pos;
    let acc: u64 = 0;
    let overflow = false;
    if (pos < this.end && load<u8>(base + <usize>pos) == 0x30) {
      pos++;
    } else {
      while (pos < this.end) {
        const d = <u32>load<u8>(base + <usize>pos) - 0x30;
        if (d > 9) break;
        if (acc > 922337203685477580) overflow = true;
        acc = acc * 10 + <u64>d;
        pos++;
      }
    }
    if (pos == digitsStart) {
      this.pos = pos;
      return this.fail("invalid number");
    }
    let integral = true;
    if (pos < this.end && load<u8>(base + <usize>pos) == 0x2e) {
      integral = false;
      pos++;
      const fracStart = pos;
      while (pos < this.end && <u32>load<u8>(base + <usize>pos) - 0x30 <= 9) pos++;
      if (pos == fracStart) {
        this.pos = pos;
        return this.fail("invalid number");
      }
    }
    if (pos < this.end && (load<u8>(base + <usize>pos) | 0x20) == 0x65) {
      integral = false;
      pos++;
      if (pos < this.end && (load<u8>(base + <usize>pos) == 0x2b || load<u8>(base + <usize>pos) == 0x2d)) pos++;
      const expStart = pos;
      while (pos < this.end && <u32>load<u8>(base + <usize>pos) - 0x30 <= 9) pos++;
      if (pos == expStart) {
        this.pos = pos;
        return this.fail("invalid number");
      }
    }
    v.end = pos;
    this.pos = pos;
    if (integral && !overflow && acc <= <u64>i64.MAX_VALUE) {
      v.isInteger = true;
      v.integer = neg ? -<i64>acc : <i64>acc;
      v.number = neg && acc == 0 ? -0.0 : <f64>v.integer;
    } else {
      v.number = parseFloat(v.rawText());
    }
    return v;
  }

  array(depth: i32): JsonValue | null {
    if (depth >= MAX_DEPTH) return this.fail("nested too deeply");
    const v = new JsonValue(JSON_ARRAY, this.src, this.pos);
    const items = new Array<JsonValue>();
    v.items = items;
    this.pos++;
    this.ws();
    if (this.pos < this.end && this.peek() == 0x5d) {
      this.pos++;
      v.end = this.pos;
      return v;
    }
    while (true) {
      this.ws();
      const item = this.value(depth + 1);
      if (item === null) return null;
      items.push(item);
      this.ws();
      if (this.pos >= this.end) return this.fail("unterminated array");
      const c = this.peek();
      this.pos++;
      if (c == 0x2c) continue;
      if (c == 0x5d) break;
      this.pos--;
      return this.fail("expected , or ]");
    }
    v.end = this.pos;
    return v;
  }

  object(depth: i32): JsonValue | null {
    if (depth >= MAX_DEPTH) return this.fail("nested too deeply");
    const v = new JsonValue(JSON_OBJECT, this.src, this.pos);
    const keys = new Array<string>();
    const items = new Array<JsonValue>();
    v.keys = keys;
    v.items = items;
    this.pos++;
    this.ws();
    if (this.pos < this.end && this.peek() == 0x7d) {
      this.pos++;
      v.end = this.pos;
      return v;
    }
    while (true) {
      this.ws();
      if (this.pos >= this.end || this.peek() != 0x22) return this.fail("expected a string key");
      const k = this.string();
      if (k === null) return null;
      this.ws();
      if (this.pos >= this.end || this.peek() != 0x3a) return this.fail("expected :");
      this.pos++;
      this.ws();
      const item = this.value(depth + 1);
      if (item === null) return null;
      keys.push(k.str());
      items.push(item);
      this.ws();
      if (this.pos >= this.end) return this.fail("unterminated object");
      const c = this.peek();
      this.pos++;
      if (c == 0x2c) continue;
      if (c == 0x7d) break;
      this.pos--;
      return this.fail("expected , or }");
    }
    v.end = this.pos;
    return v;
  }
}

/** Value of four hex digits at `p`, or -1. */
function hex4(p: usize): i32 {
  let v: i32 = 0;
  for (let i = 0; i < 4; i++) {
    const c = <i32>load<u8>(p + <usize>i);
    let d: i32;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x61 + 10;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

function putUtf8(out: ByteBuffer, cp: u32): void {
  if (cp < 0x80) {
    out.byte(<u8>cp);
  } else if (cp < 0x800) {
    out.byte(<u8>(0xc0 | (cp >> 6)));
    out.byte(<u8>(0x80 | (cp & 63)));
  } else if (cp < 0x10000) {
    out.byte(<u8>(0xe0 | (cp >> 12)));
    out.byte(<u8>(0x80 | ((cp >> 6) & 63)));
    out.byte(<u8>(0x80 | (cp & 63)));
  } else {
    out.byte(<u8>(0xf0 | (cp >> 18)));
    out.byte(<u8>(0x80 | ((cp >> 12) & 63)));
    out.byte(<u8>(0x80 | ((cp >> 6) & 63)));
    out.byte(<u8>(0x80 | (cp & 63)));
  }
}

/** Resolves the escapes of an already validated string body [s, e) at base. */
function unescapeRange(base: usize, s: i32, e: i32): ByteBuffer {
  const out = new ByteBuffer(e - s);
  let i = s;
  let run = s;
  while (i < e) {
    if (load<u8>(base + <usize>i) != 0x5c) {
      i++;
      continue;
    }
    out.range(base + <usize>run, i - run);
    const c = <u32>load<u8>(base + <usize>(i + 1));
    if (c == 0x75) {
      let cp = <u32>hex4(base + <usize>(i + 2));
      i += 6;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        // A high surrogate: combine with a following low surrogate escape.
        if (i + 6 <= e && load<u8>(base + <usize>i) == 0x5c && load<u8>(base + <usize>(i + 1)) == 0x75) {
          const lo = hex4(base + <usize>(i + 2));
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (<u32>lo - 0xdc00);
            i += 6;
          } else {
            cp = 0xfffd;
          }
        } else {
          cp = 0xfffd;
        }
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        cp = 0xfffd; // a lone low surrogate
      }
      putUtf8(out, cp);
    } else {
      let b: u8 = <u8>c; // '"', '\\', '/'
      if (c == 0x62) b = 0x08;
      else if (c == 0x66) b = 0x0c;
      else if (c == 0x6e) b = 0x0a;
      else if (c == 0x72) b = 0x0d;
      else if (c == 0x74) b = 0x09;
      out.byte(b);
      i += 2;
    }
    run = i;
  }
  out.range(base + <usize>run, e - run);
  return out;
}

const HEX = "0123456789abcdef";

/**
 * Builds a JSON document as UTF-8 bytes. Separators are handled for you:
 *
 *   const w = new JsonWriter();
 *   w.beginObject().key("status").int(200).key("ok").bool(true).endObject();
 *   output(w.toBytes());
 */
export class JsonWriter {
  out: ByteBuffer;
  private counts: Array<i32> = new Array<i32>();
  private afterKey: bool = false;

  constructor(capacity: i32 = 256) {
    this.out = new ByteBuffer(capacity);
  }

  private sep(): void {
    if (this.afterKey) {
      this.afterKey = false;
      return;
    }
    const n = this.counts.length;
    if (n > 0) {
      const c = unchecked(this.counts[n - 1]);
      if (c > 0) this.out.byte(0x2c);
      unchecked((this.counts[n - 1] = c + 1));
    }
  }

  beginObject(): JsonWriter {
    this.sep();
    this.out.byte(0x7b);
    this.counts.push(0);
    return this;
  }

  endObject(): JsonWriter {
    this.counts.pop();
    this.out.byte(0x7d);
    return this;
  }

  beginArray(): JsonWriter {
    this.sep();
    this.out.byte(0x5b);
    this.counts.push(0);
    return this;
  }

  endArray(): JsonWriter {
    this.counts.pop();
    this.out.byte(0x5d);
    return this;
  }

  key(k: string): JsonWriter {
    this.sep();
    this.quoted(k);
    this.out.byte(0x3a);
    this.afterKey = true;
    return this;
  }

  string(s: string): JsonWriter {
    this.sep();
    this.quoted(s);
    return this;
  }

  /** A string value given as UTF-8 bytes (escaped as needed, bytes otherwise copied as they are). */
  stringBytes(utf8: Uint8Array): JsonWriter {
    this.sep();
    this.escaped(utf8.dataStart, utf8.length);
    return this;
  }

  /** A string value holding the base64 encoding of `bytes`. */
  base64(bytes: Uint8Array): JsonWriter {
    this.sep();
    this.out.byte(0x22);
    encodeInto(this.out, bytes.dataStart, bytes.length);
    this.out.byte(0x22);
    return this;
  }

  int(v: i64): JsonWriter {
    this.sep();
    this.out.utf8(v.toString());
    return this;
  }

  uint(v: u64): JsonWriter {
    this.sep();
    this.out.utf8(v.toString());
    return this;
  }

  /** A number; NaN and infinities (which JSON cannot hold) are written as null. */
  number(v: f64): JsonWriter {
    this.sep();
    if (!isFinite(v)) {
      this.out.utf8("null");
    } else if (v == Math.floor(v) && Math.abs(v) < 9007199254740992) {
      this.out.utf8((<i64>v).toString());
    } else {
      this.out.utf8(v.toString());
    }
    return this;
  }

  bool(v: bool): JsonWriter {
    this.sep();
    this.out.utf8(v ? "true" : "false");
    return this;
  }

  null(): JsonWriter {
    this.sep();
    this.out.utf8("null");
    return this;
  }

  /** Already-encoded JSON, inserted verbatim. */
  raw(json: Uint8Array): JsonWriter {
    this.sep();
    this.out.bytes(json);
    return this;
  }

  /** The document so far (a view). */
  toBytes(): Uint8Array {
    return this.out.toBytes();
  }

  toString(): string {
    return this.out.toString();
  }

  private quoted(s: string): void {
    const b = String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
    this.escaped(changetype<usize>(b), b.byteLength);
  }

  private escaped(p: usize, n: i32): void {
    const out = this.out;
    out.byte(0x22);
    let run: i32 = 0;
    for (let i: i32 = 0; i < n; i++) {
      const c = <u32>load<u8>(p + <usize>i);
      if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
      out.range(p + <usize>run, i - run);
      run = i + 1;
      out.byte(0x5c);
      if (c == 0x22 || c == 0x5c) out.byte(<u8>c);
      else if (c == 0x0a) out.byte(0x6e);
      else if (c == 0x0d) out.byte(0x72);
      else if (c == 0x09) out.byte(0x74);
      else if (c == 0x08) out.byte(0x62);
      else if (c == 0x0c) out.byte(0x66);
      else {
        out.byte(0x75);
        out.byte(0x30);
        out.byte(0x30);
        out.byte(<u8>HEX.charCodeAt(<i32>(c >> 4)));
        out.byte(<u8>HEX.charCodeAt(<i32>(c & 15)));
      }
    }
    out.range(p + <usize>run, n - run);
    out.byte(0x22);
  }
}

/** `s` as a JSON string literal, quotes included. */
export function jsonString(s: string): string {
  const w = new JsonWriter(s.length + 8);
  w.string(s);
  return w.toString();
}
