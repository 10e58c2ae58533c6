// A compact JSON reader and writer over UTF-8 bytes in linear memory.
//
// parseJson validates the whole document in one pass that allocates nothing, then hands back the
// root value only. Nested values are materialised as they are asked for: a container records the
// spans of its direct members on its first get/at/keyAt/size (the root does so during the
// validating pass), and a member becomes a JsonValue only when it is read. Each value remembers its
// span in the source bytes, so a sub-document can be passed on verbatim (`raw()`), and strings are
// only unescaped when asked for (`str()` / `bytes()`). Keys are compared with the source bytes,
// without decoding, unless they hold escapes or non-ASCII bytes.
// Errors are values: parseJson returns null and jsonError() says why.

import { ByteBuffer, decodeUtf8Range } from "./bytes";
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
  /**
   * For containers: the spans in `src` of the direct members, recorded on first use (members()).
   * An object has four i32 per member (key start, key end, value start, value end; a key's span
   * includes its quotes), an array two per element (start, end).
   */
  spans: Array<i32> | null = null;
  /** For containers: the members made into values so far, by index. */
  private children: Array<JsonValue | null> | null = null;
  private keyList: Array<string> | null = null;

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

  /** The member spans of a container (see `spans`), recorded on the first call; empty otherwise. */
  members(): Array<i32> {
    const kept = this.spans;
    if (kept !== null) return kept;
    const spans = spanArray(16);
    if (this.kind >= JSON_ARRAY) recordMembers(this.src.dataStart, this.start, this.end, this.kind, spans);
    this.spans = spans;
    return spans;
  }

  /** Number of elements (array) or members (object); 0 otherwise. */
  get size(): i32 {
    if (this.kind < JSON_ARRAY) return 0;
    return this.members().length / this.stride();
  }

  /** The member `key` of an object (the last one, as JSON.parse does, when a key repeats), or null. */
  get(key: string): JsonValue | null {
    if (this.kind != JSON_OBJECT) return null;
    const spans = this.members();
    for (let i = spans.length - 4; i >= 0; i -= 4) {
      if (spanEquals(this.src, unchecked(spans[i]), unchecked(spans[i + 1]), key, false)) return this.at(i >> 2);
    }
    return null;
  }

  has(key: string): bool {
    return this.get(key) !== null;
  }

  /** Element `i` of an array (or value `i` of an object), or null. Made on first access, then kept. */
  at(i: i32): JsonValue | null {
    if (this.kind < JSON_ARRAY) return null;
    const spans = this.members();
    const stride = this.stride();
    const n = spans.length / stride;
    if (i < 0 || i >= n) return null;
    let children = this.children;
    if (children === null) {
      children = new Array<JsonValue | null>(n);
      this.children = children;
    }
    let v = unchecked(children[i]);
    if (v === null) {
      const at = i * stride + stride - 2;
      v = valueAt(this.src, unchecked(spans[at]), unchecked(spans[at + 1]));
      unchecked((children[i] = v));
    }
    return v;
  }

  /** Key `i` of an object, or null. */
  keyAt(i: i32): string | null {
    if (this.kind != JSON_OBJECT || i < 0 || i >= this.size) return null;
    const keys = this.keyList;
    if (keys !== null) return unchecked(keys[i]);
    const spans = this.members();
    return spanText(this.src, unchecked(spans[i << 2]), unchecked(spans[(i << 2) + 1]));
  }

  /** Whether key `i` of an object is `key` (ASCII letters compared case-insensitively when `foldCase`). */
  keyEquals(i: i32, key: string, foldCase: bool = false): bool {
    if (this.kind != JSON_OBJECT || i < 0 || i >= this.size) return false;
    const spans = this.members();
    return spanEquals(this.src, unchecked(spans[i << 2]), unchecked(spans[(i << 2) + 1]), key, foldCase);
  }

  /** For objects: the keys, in order (duplicates kept; get() returns the last). Null otherwise. */
  get keys(): Array<string> | null {
    if (this.kind != JSON_OBJECT) return null;
    const kept = this.keyList;
    if (kept !== null) return kept;
    const n = this.size;
    const keys = new Array<string>(n);
    for (let i = 0; i < n; i++) unchecked((keys[i] = this.keyAt(i)!));
    this.keyList = keys;
    return keys;
  }

  /** For arrays: the elements; for objects: the values, parallel to `keys`. Null otherwise. */
  get items(): Array<JsonValue> | null {
    if (this.kind < JSON_ARRAY) return null;
    const n = this.size;
    const items = new Array<JsonValue>(n);
    for (let i = 0; i < n; i++) unchecked((items[i] = this.at(i)!));
    return items;
  }

  /** Whether this is a string whose value is `s` (compared without decoding when it can be). */
  equalsString(s: string): bool {
    return this.kind == JSON_STRING && spanEquals(this.src, this.start, this.end, s, false);
  }

  /** The source bytes of this value, exactly as written (a view, not a copy). */
  raw(): Uint8Array {
    return this.src.subarray(this.start, this.end);
  }

  /** The source text of this value, exactly as written (ill-formed UTF-8 as U+FFFD). */
  rawText(): string {
    return decodeUtf8Range(this.src.dataStart + <usize>this.start, this.end - this.start);
  }

  /** A string's value as UTF-8 bytes (escapes resolved); the raw text for other kinds. */
  bytes(): Uint8Array {
    if (this.kind != JSON_STRING) return this.src.slice(this.start, this.end);
    const s = this.start + 1;
    const e = this.end - 1;
    if (!this.escaped) return this.src.slice(s, e);
    return unescapeRange(this.src.dataStart, s, e).toBytes();
  }

  /**
   * A string's value; "" for other kinds (use rawText() for their source). Ill-formed UTF-8 reads
   * as U+FFFD (one per maximal subpart, as TextDecoder), a lone surrogate escape as U+FFFD too;
   * bytes() keeps ill-formed bytes as they are.
   */
  str(): string {
    if (this.kind != JSON_STRING) return "";
    return decodeString(this.src.dataStart, this.start, this.end, this.escaped);
  }

  /** A number's value; NaN for other kinds. */
  f64(): f64 {
    return this.kind == JSON_NUMBER ? this.number : NaN;
  }

  /**
   * An integer's value; `otherwise` for other kinds and for numbers not written as an integer
   * that fits an i64 (with a fraction or an exponent, so 1e2 too; see isInteger).
   */
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

  /** i32 per member in `spans`. */
  private stride(): i32 {
    return this.kind == JSON_OBJECT ? 4 : 2;
  }
}

let lastError: string = "";

/** Why the last parseJson returned null. */
export function jsonError(): string {
  return lastError;
}

/** Parses a JSON document; null (see jsonError()) when it is not valid JSON. Validates all of it. */
export function parseJson(src: Uint8Array): JsonValue | null {
  const p = validator;
  p.reset(src);
  p.ws();
  const start = p.pos;
  // The root container records its members while it is validated; deeper ones wait until asked.
  const c = start < p.end ? p.peek() : 0;
  const record = c == 0x7b || c == 0x5b ? spanArray(32) : null;
  if (!p.value(0, record)) {
    lastError = p.err;
    return null;
  }
  const end = p.pos;
  p.ws();
  if (p.pos != p.end) {
    lastError = "unexpected data after the JSON value at byte " + p.pos.toString();
    return null;
  }
  lastError = "";
  const root = valueAt(src, start, end);
  root.spans = record;
  return root;
}

/** Parses a JSON document given as a string. */
export function parseJsonString(s: string): JsonValue | null {
  return parseJson(Uint8Array.wrap(String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE)));
}

/**
 * For an array of arrays (such as `[["name","value"],...]`): the spans of the first two elements
 * of each element that is an array of at least two, four i32 per pair (first start, first end,
 * second start, second end). Other elements are passed over. No value is made.
 */
export function pairSpans(list: JsonValue): Array<i32> {
  const out = spanArray(32);
  if (list.kind != JSON_ARRAY) return out;
  const base = list.src.dataStart;
  const end = list.end;
  let pos = skipWs(base, list.start + 1, end);
  while (pos < end - 1) {
    pos = load<u8>(base + <usize>pos) == 0x5b ? recordPair(base, pos, end, out) : skipValue(base, pos, end);
    pos = skipWs(base, pos, end);
    if (pos >= end || load<u8>(base + <usize>pos) != 0x2c) break;
    pos = skipWs(base, pos + 1, end);
  }
  return out;
}

/**
 * Records the spans of the first two elements of the validated array at `start` when it has two
 * or more; returns the array's end.
 */
function recordPair(base: usize, start: i32, end: i32, out: Array<i32>): i32 {
  const first = skipWs(base, start + 1, end);
  if (first >= end || load<u8>(base + <usize>first) == 0x5d) return first + 1; // []
  const firstEnd = skipValue(base, first, end);
  let pos = skipWs(base, firstEnd, end);
  if (pos >= end || load<u8>(base + <usize>pos) != 0x2c) return pos + 1; // one element
  const second = skipWs(base, pos + 1, end);
  const secondEnd = skipValue(base, second, end);
  out.push(first);
  out.push(firstEnd);
  out.push(second);
  out.push(secondEnd);
  pos = skipWs(base, secondEnd, end);
  if (pos < end && load<u8>(base + <usize>pos) == 0x5d) return pos + 1;
  return skipNested(base, pos, end, 1); // more elements
}

/** An empty Array<i32> with room for `capacity` elements (push does not reallocate until then). */
function spanArray(capacity: i32): Array<i32> {
  const a = new Array<i32>(capacity);
  a.length = 0; // keeps the buffer
  return a;
}

/**
 * Whether the JSON string at [start, end) of `src` (quotes included) has the value `s`; false for
 * a span that is not a string. ASCII letters match either case when `foldCase`. Plain ASCII is
 * compared in place; a string with escapes or other bytes is decoded first.
 */
export function spanEquals(src: Uint8Array, start: i32, end: i32, s: string, foldCase: bool): bool {
  const base = src.dataStart;
  if (end - start < 2 || load<u8>(base + <usize>start) != 0x22) return false;
  const p = base + <usize>(start + 1);
  const n = end - start - 2;
  const len = s.length;
  for (let i = 0; i < n; i++) {
    let b = <u32>load<u8>(p + <usize>i);
    if (b == 0x5c || b >= 0x80) return textEquals(spanText(src, start, end), s, foldCase);
    if (i >= len) return false;
    let c = <u32>load<u16>(changetype<usize>(s) + (<usize>i << 1));
    if (foldCase) {
      b = foldAscii(b);
      c = foldAscii(c);
    }
    if (b != c) return false;
  }
  return n == len;
}

/** The value of the JSON string at [start, end) of `src` (quotes included); "" for other kinds. */
export function spanText(src: Uint8Array, start: i32, end: i32): string {
  const base = src.dataStart;
  if (end - start < 2 || load<u8>(base + <usize>start) != 0x22) return "";
  return decodeString(base, start, end, hasBackslash(base, start + 1, end - 1));
}

@inline function foldAscii(c: u32): u32 {
  return c - 0x41 < 26 ? c | 0x20 : c;
}

function textEquals(a: string, b: string, foldCase: bool): bool {
  if (!foldCase) return a == b;
  const n = a.length;
  if (n != b.length) return false;
  for (let i = 0; i < n; i++) {
    if (foldAscii(<u32>a.charCodeAt(i)) != foldAscii(<u32>b.charCodeAt(i))) return false;
  }
  return true;
}

function hasBackslash(base: usize, s: i32, e: i32): bool {
  for (let i = s; i < e; i++) {
    if (load<u8>(base + <usize>i) == 0x5c) return true;
  }
  return false;
}

/** The value of the validated string at [start, end) (quotes included). */
function decodeString(base: usize, start: i32, end: i32, escaped: bool): string {
  const s = start + 1;
  const e = end - 1;
  if (!escaped) return decodeUtf8Range(base + <usize>s, e - s);
  return unescapeRange(base, s, e).toString();
}

/** The value written at [start, end) of a validated document; a container's members wait until asked. */
function valueAt(src: Uint8Array, start: i32, end: i32): JsonValue {
  const base = src.dataStart;
  const c = <u32>load<u8>(base + <usize>start);
  let kind = JSON_NUMBER;
  if (c == 0x22) kind = JSON_STRING;
  else if (c == 0x7b) kind = JSON_OBJECT;
  else if (c == 0x5b) kind = JSON_ARRAY;
  else if (c == 0x74 || c == 0x66) kind = JSON_BOOL;
  else if (c == 0x6e) kind = JSON_NULL;
  const v = new JsonValue(kind, src, start);
  v.end = end;
  if (kind == JSON_STRING) v.escaped = hasBackslash(base, start + 1, end - 1);
  else if (kind == JSON_BOOL) v.boolean = c == 0x74;
  else if (kind == JSON_NUMBER) scanNumber(base, start, end, v);
  return v;
}

@inline function isWs(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function skipWs(base: usize, pos: i32, end: i32): i32 {
  while (pos < end && isWs(<u32>load<u8>(base + <usize>pos))) pos++;
  return pos;
}

/** The end of the validated string starting at `pos` (after its closing quote). */
function skipString(base: usize, pos: i32, end: i32): i32 {
  pos++;
  while (pos < end) {
    const c = <u32>load<u8>(base + <usize>pos);
    if (c == 0x22) return pos + 1;
    pos += c == 0x5c ? 2 : 1;
  }
  return end;
}

/** The end of the validated value starting at `pos`. */
function skipValue(base: usize, pos: i32, end: i32): i32 {
  if (pos >= end) return end;
  const first = <u32>load<u8>(base + <usize>pos);
  if (first == 0x22) return skipString(base, pos, end);
  if (first != 0x7b && first != 0x5b) {
    // A number or a literal: up to the next delimiter.
    while (pos < end) {
      const c = <u32>load<u8>(base + <usize>pos);
      if (c == 0x2c || c == 0x7d || c == 0x5d || c == 0x3a || isWs(c)) break;
      pos++;
    }
    return pos;
  }
  return skipNested(base, pos, end, 0);
}

/** The end of the container that is `depth` levels open at `pos` (0: the container starts at `pos`). */
function skipNested(base: usize, pos: i32, end: i32, depth: i32): i32 {
  while (pos < end) {
    const c = <u32>load<u8>(base + <usize>pos);
    if (c == 0x22) {
      pos = skipString(base, pos, end);
      continue;
    }
    pos++;
    if (c == 0x7b || c == 0x5b) depth++;
    else if ((c == 0x7d || c == 0x5d) && --depth == 0) return pos;
  }
  return end;
}

/**
 * Records into `out` the member spans (see JsonValue.spans) of the validated container at
 * [start, end). Every read stays inside the span, so a hand-made JsonValue cannot read past it.
 */
function recordMembers(base: usize, start: i32, end: i32, kind: i32, out: Array<i32>): void {
  const isObject = kind == JSON_OBJECT;
  let pos = skipWs(base, start + 1, end);
  if (pos >= end - 1) return; // empty (or not a container)
  while (pos < end) {
    if (isObject) {
      const keyEnd = skipString(base, pos, end);
      out.push(pos);
      out.push(keyEnd);
      pos = skipWs(base, skipWs(base, keyEnd, end) + 1, end); // past the ':'
    }
    const valueEnd = skipValue(base, pos, end);
    out.push(pos);
    out.push(valueEnd);
    pos = skipWs(base, valueEnd, end);
    if (pos >= end || load<u8>(base + <usize>pos) != 0x2c) return;
    pos = skipWs(base, pos + 1, end);
  }
}

/**
 * Scans the number at `pos` (before `end`); returns the position after it, or -(p + 1) when it is
 * not a number, p being where it went wrong. Fills in `v`'s number fields when `v` is given.
 */
function scanNumber(base: usize, pos: i32, end: i32, v: JsonValue | null): i32 {
  const start = pos;
  let neg = false;
  if (load<u8>(base + <usize>pos) == 0x2d) {
    neg = true;
    pos++;
  }
  const digitsStart = pos;
  let acc: u64 = 0;
  let overflow = false;
  if (pos < end && load<u8>(base + <usize>pos) == 0x30) {
    pos++;
  } else {
    while (pos < end) {
      const d = <u32>load<u8>(base + <usize>pos) - 0x30;
      if (d > 9) break;
      if (acc > 922337203685477580) overflow = true;
      acc = acc * 10 + <u64>d;
      pos++;
    }
  }
  if (pos == digitsStart) return -(pos + 1);
  let integral = true;
  if (pos < end && load<u8>(base + <usize>pos) == 0x2e) {
    integral = false;
    pos++;
    const fracStart = pos;
    while (pos < end && <u32>load<u8>(base + <usize>pos) - 0x30 <= 9) pos++;
    if (pos == fracStart) return -(pos + 1);
  }
  if (pos < end && (load<u8>(base + <usize>pos) | 0x20) == 0x65) {
    integral = false;
    pos++;
    if (pos < end && (load<u8>(base + <usize>pos) == 0x2b || load<u8>(base + <usize>pos) == 0x2d)) pos++;
    const expStart = pos;
    while (pos < end && <u32>load<u8>(base + <usize>pos) - 0x30 <= 9) pos++;
    if (pos == expStart) return -(pos + 1);
  }
  if (v !== null) {
    // -9223372036854775808 (i64's minimum) is an i64 too, though its magnitude is not.
    if (integral && !overflow && acc <= (neg ? <u64>i64.MIN_VALUE : <u64>i64.MAX_VALUE)) {
      v.isInteger = true;
      v.integer = neg ? -<i64>acc : <i64>acc;
      v.number = neg && acc == 0 ? -0.0 : <f64>v.integer;
    } else {
      v.number = decimalToF64(base, start, pos);
    }
  }
  return pos;
}

// ---- number text to f64, correctly rounded ----
//
// AssemblyScript's parseFloat is not correctly rounded (some 17-digit numbers come out orders of
// magnitude off), so number text is converted here. At most 15 significant digits with a power of
// ten up to 22 take one f64 multiplication or division of two exact values, whose one rounding is
// the right one. Other numbers are worked out exactly on their decimal digits: the digits are
// halved or doubled (a binary shift done in decimal) until the value lies in [0.5, 1), then
// shifted up by 53 bits and rounded half to even. DECIMAL_DIGITS significant digits are kept; a
// nonzero digit dropped past them only breaks ties (`truncated`), which is all it can change (a
// binary64 halfway point has at most 767 significant digits).

const DECIMAL_DIGITS: i32 = 800;
/** The digits (0-9, one a byte), and room for a left shift's new digits in front of them. */
const DIGIT_ROOM: i32 = DECIMAL_DIGITS + 32;
const DIGITS = memory.data(DIGIT_ROOM);
const SHIFTED = memory.data(DIGIT_ROOM);
/** The largest shift one step makes (a digit times 2^60 plus a carry still fits a u64). */
const MAX_SHIFT: u32 = 60;
/** Bits a shift by 10^i may move without overshooting: floor(log2(10^i)). */
const SHIFT_FOR_POWER: StaticArray<u32> = [1, 3, 6, 9, 13, 16, 19, 23, 26];
const EXACT_POWERS: StaticArray<f64> = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/** A decimal number 0.d[0]d[1]...d[nd-1] x 10^dp, without trailing zeros. */
class Decimal {
  nd: i32 = 0;
  dp: i32 = 0;
  /** A nonzero digit was dropped past DECIMAL_DIGITS. */
  truncated: bool = false;

  @inline digit(i: i32): u32 {
    return <u32>load<u8>(DIGITS + <usize>i);
  }

  /** Reads the digits and exponent of validated number text [pos, end) without its sign. */
  read(base: usize, pos: i32, end: i32): void {
    this.nd = 0;
    this.dp = 0;
    this.truncated = false;
    let fraction = false;
    for (; pos < end; pos++) {
      const c = <u32>load<u8>(base + <usize>pos);
      if (c == 0x2e) {
        fraction = true;
        continue;
      }
      const d = c - 0x30;
      if (d > 9) break;
      if (d == 0 && this.nd == 0) {
        if (fraction) this.dp--; // a leading zero of the fraction
        continue;
      }
      if (!fraction) this.dp++;
      if (this.nd < DECIMAL_DIGITS) store<u8>(DIGITS + <usize>(this.nd++), <u8>d);
      else if (d != 0) this.truncated = true;
    }
    if (pos < end) {
      // The digits' own place (up to the text's length) plus the exponent, clamped: past ±100000 the
      // value is 0 or Infinity whatever the digits (binary64 gives up below -330 and above 310).
      const dp = <i64>this.dp + <i64>readExponent(base, pos + 1, end); // past the 'e'
      this.dp = <i32>(dp < -100000 ? -100000 : dp > 100000 ? 100000 : dp);
    }
    this.trim();
  }

  trim(): void {
    while (this.nd > 0 && this.digit(this.nd - 1) == 0) this.nd--;
  }

  /** Divides by 2^k (k <= MAX_SHIFT), digit by digit. */
  shiftRight(k: u32): void {
    const nd = this.nd;
    let r: u64 = 0;
    let read = 0;
    while (r >> k == 0) {
      if (read >= nd) {
        if (r == 0) return; // zero stays zero
        while (r >> k == 0) {
          r *= 10;
          read++;
        }
        break;
      }
      r = r * 10 + <u64>this.digit(read++);
    }
    this.dp -= read - 1;
    const mask: u64 = (<u64>1 << k) - 1;
    let written = 0;
    while (read < nd) {
      store<u8>(DIGITS + <usize>(written++), <u8>(r >> k));
      r = (r & mask) * 10 + <u64>this.digit(read++);
    }
    while (r > 0) {
      const d = r >> k;
      if (written < DECIMAL_DIGITS) store<u8>(DIGITS + <usize>(written++), <u8>d);
      else if (d > 0) this.truncated = true;
      r = (r & mask) * 10;
    }
    this.nd = written;
    this.trim();
  }

  /** Multiplies by 2^k (k <= MAX_SHIFT), from the last digit to the first. */
  shiftLeft(k: u32): void {
    let at = DIGIT_ROOM;
    let carry: u64 = 0;
    for (let i = this.nd - 1; i >= 0; i--) {
      const n = (<u64>this.digit(i) << k) + carry;
      carry = n / 10;
      store<u8>(SHIFTED + <usize>(--at), <u8>(n - carry * 10));
    }
    while (carry > 0) {
      const q = carry / 10;
      store<u8>(SHIFTED + <usize>(--at), <u8>(carry - q * 10));
      carry = q;
    }
    const count = DIGIT_ROOM - at;
    const keep = count < DECIMAL_DIGITS ? count : DECIMAL_DIGITS;
    for (let i = keep; i < count; i++) {
      if (load<u8>(SHIFTED + <usize>(at + i)) != 0) this.truncated = true;
    }
    memory.copy(DIGITS, SHIFTED + <usize>at, <usize>keep);
    this.dp += count - this.nd;
    this.nd = keep;
    this.trim();
  }

  shiftRightBy(bits: i32): void {
    while (bits > 0) {
      const k = bits < <i32>MAX_SHIFT ? <u32>bits : MAX_SHIFT;
      this.shiftRight(k);
      bits -= <i32>k;
    }
  }

  /** The integer part, rounded half to even by the digits after it (dp <= 19). */
  roundedInteger(): u64 {
    let n: u64 = 0;
    let i = 0;
    for (; i < this.dp && i < this.nd; i++) n = n * 10 + <u64>this.digit(i);
    for (; i < this.dp; i++) n *= 10;
    return this.roundsUp(this.dp) ? n + 1 : n;
  }

  private roundsUp(at: i32): bool {
    if (at < 0 || at >= this.nd) return false;
    const d = this.digit(at);
    if (d != 5) return d > 5;
    if (at + 1 < this.nd || this.truncated) return true; // more than half
    return at > 0 && (this.digit(at - 1) & 1) == 1; // exactly half: to even
  }

  /** The value as an f64 when one exact multiplication or division gives it; NaN otherwise. */
  exactly(): f64 {
    const exp10 = this.dp - this.nd;
    if (this.truncated || this.nd > 15 || exp10 < -22 || exp10 > 22) return NaN;
    let m: u64 = 0;
    for (let i = 0; i < this.nd; i++) m = m * 10 + <u64>this.digit(i);
    const power = unchecked(EXACT_POWERS[exp10 < 0 ? -exp10 : exp10]);
    return exp10 < 0 ? <f64>m / power : <f64>m * power;
  }

  /** The bits of the nearest binary64 (sign left out). */
  binary64(): u64 {
    if (this.nd == 0 || this.dp < -330) return 0;
    if (this.dp > 310) return INFINITY_BITS;
    let exp = 0; // value = this x 2^exp
    while (this.dp > 0) {
      const n = this.dp < SHIFT_FOR_POWER.length ? unchecked(SHIFT_FOR_POWER[this.dp]) : 27;
      this.shiftRight(n);
      exp += <i32>n;
    }
    while (this.dp < 0 || (this.dp == 0 && this.digit(0) < 5)) {
      const n = -this.dp < SHIFT_FOR_POWER.length ? unchecked(SHIFT_FOR_POWER[-this.dp]) : 27;
      this.shiftLeft(n);
      exp -= <i32>n;
    }
    exp--; // from [0.5, 1) to [1, 2)
    if (exp < -1022) {
      this.shiftRightBy(-1022 - exp); // subnormal: fewer mantissa bits
      exp = -1022;
    }
    if (exp > 1023) return INFINITY_BITS;
    this.shiftLeft(53);
    let mant = this.roundedInteger();
    if (mant == <u64>1 << 53) {
      mant >>= 1; // rounding carried into a new bit
      exp++;
      if (exp > 1023) return INFINITY_BITS;
    }
    const biased: u64 = (mant & (<u64>1 << 52)) == 0 ? 0 : <u64>(exp + 1023);
    return (biased << 52) | (mant & ((<u64>1 << 52) - 1));
  }
}

const INFINITY_BITS: u64 = 0x7ff0000000000000;
const decimal = new Decimal();

/**
 * The exponent of validated number text at [pos, end) (after the 'e'), held below 10^9 in size
 * (more than any number text's length, which a long run of zeros may cancel out; an i32 still).
 */
function readExponent(base: usize, pos: i32, end: i32): i32 {
  let negative = false;
  const sign = <u32>load<u8>(base + <usize>pos);
  if (sign == 0x2b || sign == 0x2d) {
    negative = sign == 0x2d;
    pos++;
  }
  let e = 0;
  for (; pos < end; pos++) {
    const d = <u32>load<u8>(base + <usize>pos) - 0x30;
    if (d > 9) break;
    if (e < 100000000) e = e * 10 + <i32>d;
  }
  return negative ? -e : e;
}

/** The f64 nearest the validated number text [start, end), ties to even. */
function decimalToF64(base: usize, start: i32, end: i32): f64 {
  const negative = load<u8>(base + <usize>start) == 0x2d;
  const d = decimal;
  d.read(base, negative ? start + 1 : start, end);
  let v = d.exactly();
  if (isNaN(v)) v = reinterpret<f64>(d.binary64());
  return negative ? -v : v;
}

/**
 * Checks that a document is JSON, allocating nothing (but the root's member spans, when asked).
 * Its failures name what went wrong and the byte where it did.
 */
class Validator {
  base: usize = 0;
  pos: i32 = 0;
  end: i32 = 0;
  err: string = "";

  /** Starts on a new document. */
  reset(src: Uint8Array): void {
    this.base = src.dataStart;
    this.pos = 0;
    this.end = src.length;
    this.err = "";
  }

  @inline peek(): u32 {
    return <u32>load<u8>(this.base + <usize>this.pos);
  }

  fail(what: string): bool {
    if (this.err.length == 0) {
      this.err = this.pos < this.end
        ? what + " at byte " + this.pos.toString()
        : what + " at the end of the input";
    }
    return false;
  }

  /** Fails at `pos`. */
  failAt(pos: i32, what: string): bool {
    this.pos = pos;
    return this.fail(what);
  }

  ws(): void {
    this.pos = skipWs(this.base, this.pos, this.end);
  }

  literal(word: string): bool {
    const n = word.length;
    if (this.end - this.pos < n) return this.fail("invalid literal");
    for (let i = 0; i < n; i++) {
      if (<u32>load<u8>(this.base + <usize>(this.pos + i)) != <u32>word.charCodeAt(i)) {
        return this.fail("invalid literal");
      }
    }
    this.pos += n;
    return true;
  }

  /** A value; a container records its member spans into `record` when one is given. */
  value(depth: i32, record: Array<i32> | null = null): bool {
    if (this.pos >= this.end) return this.fail("expected a value");
    const c = this.peek();
    if (c == 0x22) return this.string();
    if (c == 0x7b) return this.object(depth, record);
    if (c == 0x5b) return this.array(depth, record);
    if (c == 0x74) return this.literal("true");
    if (c == 0x66) return this.literal("false");
    if (c == 0x6e) return this.literal("null");
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.num();
    return this.fail("unexpected character");
  }

  string(): bool {
    const base = this.base;
    const end = this.end;
    let pos = this.pos + 1; // past the opening quote
    while (true) {
      // The common case: plain bytes.
      while (pos < end) {
        const c = <u32>load<u8>(base + <usize>pos);
        if (c == 0x22 || c == 0x5c || c < 0x20) break;
        pos++;
      }
      if (pos >= end) return this.failAt(pos, "unterminated string");
      const c = <u32>load<u8>(base + <usize>pos);
      if (c == 0x22) break;
      if (c < 0x20) return this.failAt(pos, "control character in string");
      // Backslash escape.
      if (pos + 1 >= end) return this.failAt(pos, "unterminated string");
      const e = <u32>load<u8>(base + <usize>(pos + 1));
      if (e == 0x75) {
        if (pos + 6 > end || hex4(base + <usize>(pos + 2)) < 0) return this.failAt(pos, "invalid \\u escape");
        pos += 6;
      } else if (e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) {
        pos += 2;
      } else {
        return this.failAt(pos, "invalid escape");
      }
    }
    this.pos = pos + 1;
    return true;
  }

  num(): bool {
    const pos = scanNumber(this.base, this.pos, this.end, null);
    if (pos < 0) return this.failAt(-pos - 1, "invalid number");
    this.pos = pos;
    return true;
  }

  array(depth: i32, record: Array<i32> | null): bool {
    if (depth >= MAX_DEPTH) return this.fail("nested too deeply");
    this.pos++;
    this.ws();
    if (this.pos < this.end && this.peek() == 0x5d) {
      this.pos++;
      return true;
    }
    while (true) {
      this.ws();
      const start = this.pos;
      if (!this.value(depth + 1)) return false;
      if (record !== null) {
        record.push(start);
        record.push(this.pos);
      }
      const after = this.afterMember(0x5d, "unterminated array", "expected , or ]");
      if (after != MORE) return after == CLOSED;
    }
  }

  object(depth: i32, record: Array<i32> | null): bool {
    if (depth >= MAX_DEPTH) return this.fail("nested too deeply");
    this.pos++;
    this.ws();
    if (this.pos < this.end && this.peek() == 0x7d) {
      this.pos++;
      return true;
    }
    while (true) {
      this.ws();
      if (this.pos >= this.end || this.peek() != 0x22) return this.fail("expected a string key");
      const keyStart = this.pos;
      if (!this.string()) return false;
      const keyEnd = this.pos;
      this.ws();
      if (this.pos >= this.end || this.peek() != 0x3a) return this.fail("expected :");
      this.pos++;
      this.ws();
      const start = this.pos;
      if (!this.value(depth + 1)) return false;
      if (record !== null) {
        record.push(keyStart);
        record.push(keyEnd);
        record.push(start);
        record.push(this.pos);
      }
      const after = this.afterMember(0x7d, "unterminated object", "expected , or }");
      if (after != MORE) return after == CLOSED;
    }
  }

  /** After a member: consumes "," (MORE) or `close` (CLOSED), or fails (FAILED). */
  private afterMember(close: u32, unterminated: string, expected: string): i32 {
    this.ws();
    const c = this.pos < this.end ? this.peek() : 0;
    if (c != 0x2c && c != close) {
      this.fail(this.pos < this.end ? expected : unterminated);
      return FAILED;
    }
    this.pos++;
    return c == close ? CLOSED : MORE;
  }
}

/** The one validator parseJson uses (it never calls out while checking, so it is never re-entered). */
const validator = new Validator();

const FAILED: i32 = 0;
const MORE: i32 = 1;
const CLOSED: i32 = 2;

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
