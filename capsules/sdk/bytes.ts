// A growable byte buffer in linear memory; every append is a bulk copy.

export class ByteBuffer {
  private buf: Uint8Array;
  private len: i32 = 0;

  constructor(capacity: i32 = 256) {
    this.buf = new Uint8Array(capacity > 16 ? capacity : 16);
  }

  get length(): i32 {
    return this.len;
  }

  /** Makes room for `extra` more bytes and returns the address where they go. */
  reserve(extra: i32): usize {
    const need = this.len + extra;
    if (need > this.buf.length) {
      let cap = this.buf.length << 1;
      if (cap < need) cap = need;
      const next = new Uint8Array(cap);
      memory.copy(next.dataStart, this.buf.dataStart, <usize>this.len);
      this.buf = next;
    }
    return this.buf.dataStart + <usize>this.len;
  }

  /** Marks `n` bytes written at the address `reserve` returned. */
  commit(n: i32): void {
    this.len += n;
  }

  byte(b: u8): ByteBuffer {
    store<u8>(this.reserve(1), b);
    this.len += 1;
    return this;
  }

  bytes(src: Uint8Array): ByteBuffer {
    return this.range(src.dataStart, src.length);
  }

  range(ptr: usize, n: i32): ByteBuffer {
    if (n > 0) {
      memory.copy(this.reserve(n), ptr, <usize>n);
      this.len += n;
    }
    return this;
  }

  /** Appends `s` as UTF-8 (an unpaired surrogate becomes U+FFFD, so the result is always valid UTF-8). */
  utf8(s: string): ByteBuffer {
    const max = s.length * 3;
    const dst = this.reserve(max);
    const n = String.UTF8.encodeUnsafe(
      changetype<usize>(s), s.length, dst, false, String.UTF8.ErrorMode.REPLACE,
    );
    this.len += <i32>n;
    return this;
  }

  /** The bytes written so far (a view, not a copy). */
  toBytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** The bytes written so far as text (ill-formed UTF-8 as U+FFFD, see decodeUtf8Range). */
  toString(): string {
    return decodeUtf8Range(this.buf.dataStart, this.len);
  }

  clear(): void {
    this.len = 0;
  }
}

/** A Uint8Array holding the UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE));
}

/** Decodes UTF-8 bytes into a string (ill-formed UTF-8 as U+FFFD, see decodeUtf8Range). */
export function decodeUtf8(bytes: Uint8Array): string {
  return decodeUtf8Range(bytes.dataStart, bytes.length);
}

/**
 * Decodes `n` UTF-8 bytes at `p` into a string. Each ill-formed sequence becomes one U+FFFD per
 * maximal subpart, as TextDecoder does, so an overlong or surrogate encoding never becomes the
 * character it imitates, and a stray byte never swallows the bytes after it (AssemblyScript's own
 * decoder does both). Well-formed input is decoded in one bulk step after one check.
 */
export function decodeUtf8Range(p: usize, n: i32): string {
  const bad = firstIllFormed(p, n);
  if (bad < 0) return String.UTF8.decodeUnsafe(p, <usize>n);
  const out = new ByteBuffer(n + 16);
  out.range(p, bad);
  let i = bad;
  while (i < n) {
    const len = sequenceAt(p, i, n);
    if (len > 0) {
      out.range(p + <usize>i, len);
      i += len;
    } else {
      out.byte(0xef).byte(0xbf).byte(0xbd); // U+FFFD
      i -= len;
    }
  }
  const fixed = out.toBytes();
  return String.UTF8.decodeUnsafe(fixed.dataStart, <usize>fixed.length);
}

/** Where the first ill-formed UTF-8 sequence of the `n` bytes at `p` starts, or -1. */
function firstIllFormed(p: usize, n: i32): i32 {
  let i = 0;
  while (i < n) {
    if (i + 8 <= n && (load<u64>(p + <usize>i) & 0x8080808080808080) == 0) {
      i += 8; // eight ASCII bytes
      continue;
    }
    const len = sequenceAt(p, i, n);
    if (len < 0) return i;
    i += len;
  }
  return -1;
}

/**
 * The length of the well-formed UTF-8 sequence at byte `i` of the `n` at `p` (Unicode's table
 * 3-7: no overlongs, no surrogates, nothing past U+10FFFF), or minus the length of its maximal
 * subpart (the bytes that one U+FFFD replaces) when it is ill-formed.
 */
function sequenceAt(p: usize, i: i32, n: i32): i32 {
  const lead = <u32>load<u8>(p + <usize>i);
  if (lead < 0x80) return 1;
  let need = 0;
  let lo: u32 = 0x80;
  let hi: u32 = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) need = 1;
  else if (lead >= 0xe0 && lead <= 0xef) {
    need = 2;
    if (lead == 0xe0) lo = 0xa0; // else overlong
    else if (lead == 0xed) hi = 0x9f; // else a surrogate
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    need = 3;
    if (lead == 0xf0) lo = 0x90; // else overlong
    else if (lead == 0xf4) hi = 0x8f; // else past U+10FFFF
  } else {
    return -1; // a continuation byte, C0, C1 or F5..FF
  }
  for (let k = 1; k <= need; k++) {
    if (i + k >= n) return -k;
    const b = <u32>load<u8>(p + <usize>(i + k));
    if (b < lo || b > hi) return -k;
    lo = 0x80;
    hi = 0xbf;
  }
  return need + 1;
}
