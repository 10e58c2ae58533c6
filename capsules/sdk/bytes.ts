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

  toString(): string {
    return String.UTF8.decodeUnsafe(this.buf.dataStart, <usize>this.len);
  }

  clear(): void {
    this.len = 0;
  }
}

/** A Uint8Array holding the UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE));
}

/** Decodes UTF-8 bytes into a string. */
export function decodeUtf8(bytes: Uint8Array): string {
  return String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.length);
}
