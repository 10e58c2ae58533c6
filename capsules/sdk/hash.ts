// 32-bit FNV-1a, handy for checking that a streamed body arrived intact.

export class Fnv1a32 {
  hash: u32 = 0x811c9dc5;

  update(bytes: Uint8Array): Fnv1a32 {
    this.updateRange(bytes.dataStart, bytes.length);
    return this;
  }

  updateRange(p: usize, n: i32): Fnv1a32 {
    let h = this.hash;
    const end = p + <usize>n;
    while (p < end) {
      h = (h ^ <u32>load<u8>(p)) * 0x01000193;
      p++;
    }
    this.hash = h;
    return this;
  }

  /** The hash as 8 lower-case hex digits. */
  hex(): string {
    return hex32(this.hash);
  }
}

/** `v` as 8 lower-case hex digits. */
export function hex32(v: u32): string {
  const digits = "0123456789abcdef";
  let s = "";
  for (let shift: i32 = 28; shift >= 0; shift -= 4) {
    s += digits.charAt(<i32>((v >> <u32>shift) & 15));
  }
  return s;
}
