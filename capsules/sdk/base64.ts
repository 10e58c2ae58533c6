// Standard base64 (RFC 4648 §4, with padding), as the wire protocol uses for binary bodies.

import { ByteBuffer } from "./bytes";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ENC = memory.data(64);
const DEC = memory.data(256);
let ready = false;

function init(): void {
  if (ready) return;
  ready = true;
  memory.fill(DEC, 0xff, 256);
  for (let i = 0; i < 64; i++) {
    const c = <u8>ALPHABET.charCodeAt(i);
    store<u8>(ENC + <usize>i, c);
    store<u8>(DEC + <usize>c, <u8>i);
  }
  // Also accept the URL-safe alphabet when decoding.
  store<u8>(DEC + 45, 62); // '-'
  store<u8>(DEC + 95, 63); // '_'
}

/** Number of base64 characters for `n` bytes. */
export function encodedLength(n: i32): i32 {
  return ((n + 2) / 3) * 4;
}

/** Appends the base64 encoding of `n` bytes at `src` to `out`. */
export function encodeInto(out: ByteBuffer, src: usize, n: i32): void {
  init();
  const total = encodedLength(n);
  let d = out.reserve(total);
  const end = src + <usize>n;
  let s = src;
  while (end - s >= 3) {
    const v = (<u32>load<u8>(s) << 16) | (<u32>load<u8>(s, 1) << 8) | <u32>load<u8>(s, 2);
    store<u8>(d, load<u8>(ENC + <usize>(v >> 18)));
    store<u8>(d, load<u8>(ENC + <usize>((v >> 12) & 63)), 1);
    store<u8>(d, load<u8>(ENC + <usize>((v >> 6) & 63)), 2);
    store<u8>(d, load<u8>(ENC + <usize>(v & 63)), 3);
    s += 3;
    d += 4;
  }
  const rest = <i32>(end - s);
  if (rest > 0) {
    let v = <u32>load<u8>(s) << 16;
    if (rest == 2) v |= <u32>load<u8>(s, 1) << 8;
    store<u8>(d, load<u8>(ENC + <usize>(v >> 18)));
    store<u8>(d, load<u8>(ENC + <usize>((v >> 12) & 63)), 1);
    store<u8>(d, rest == 2 ? load<u8>(ENC + <usize>((v >> 6) & 63)) : 61, 2);
    store<u8>(d, 61, 3);
  }
  out.commit(total);
}

/** The base64 encoding of `bytes` as a string. */
export function encode(bytes: Uint8Array): string {
  const out = new ByteBuffer(encodedLength(bytes.length));
  encodeInto(out, bytes.dataStart, bytes.length);
  return out.toString();
}

/**
 * Decodes `n` base64 characters at `src` (standard or URL-safe alphabet, padding optional).
 * Returns null when the input is not base64.
 */
export function decodeRange(src: usize, n: i32): Uint8Array | null {
  init();
  // Drop up to two '=' of padding.
  let len = n;
  if (len > 0 && load<u8>(src + <usize>(len - 1)) == 61) len--;
  if (len > 0 && load<u8>(src + <usize>(len - 1)) == 61) len--;
  if (n != len && (n & 3) != 0) return null; // padded input must be whole quads
  if ((len & 3) == 1) return null;
  const outLen = (len >> 2) * 3 + ((len & 3) == 0 ? 0 : (len & 3) - 1);
  const out = new Uint8Array(outLen);
  let d = out.dataStart;
  let s = src;
  const quadsEnd = src + <usize>(len & ~3);
  while (s < quadsEnd) {
    const a = <u32>load<u8>(DEC + <usize>load<u8>(s));
    const b = <u32>load<u8>(DEC + <usize>load<u8>(s, 1));
    const c = <u32>load<u8>(DEC + <usize>load<u8>(s, 2));
    const e = <u32>load<u8>(DEC + <usize>load<u8>(s, 3));
    if ((a | b | c | e) & 0x80) return null;
    const v = (a << 18) | (b << 12) | (c << 6) | e;
    store<u8>(d, <u8>(v >> 16));
    store<u8>(d, <u8>(v >> 8), 1);
    store<u8>(d, <u8>v, 2);
    s += 4;
    d += 3;
  }
  const rest = len & 3;
  if (rest >= 2) {
    const a = <u32>load<u8>(DEC + <usize>load<u8>(s));
    const b = <u32>load<u8>(DEC + <usize>load<u8>(s, 1));
    let c: u32 = 0;
    if (rest == 3) c = <u32>load<u8>(DEC + <usize>load<u8>(s, 2));
    if ((a | b | c) & 0x80) return null;
    const v = (a << 18) | (b << 12) | (c << 6);
    store<u8>(d, <u8>(v >> 16));
    if (rest == 3) store<u8>(d, <u8>(v >> 8), 1);
  }
  return out;
}

/** Decodes base64 bytes; null when they are not base64. */
export function decodeBytes(b64: Uint8Array): Uint8Array | null {
  return decodeRange(b64.dataStart, b64.length);
}

/** Decodes a base64 string; null when it is not base64. */
export function decode(b64: string): Uint8Array | null {
  const bytes = String.UTF8.encode(b64);
  return decodeRange(changetype<usize>(bytes), bytes.byteLength);
}
