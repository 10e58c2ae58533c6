// Encodes text as UTF-8 into bytes that own their whole buffer: Buffer.from, then a copy out of Node's shared pool when it used one.

/**
 * `text` as UTF-8, in a buffer of its own (Extism adopts such bytes as a block without a copy;
 * a view of Node's shared 8 KiB pool would have to be copied anyway). Measured on this VM for a
 * 450-byte reply: 0.4-0.6 µs, against 1.1 µs (Node 20) and 3.3 µs (Node 26) for TextEncoder.
 */
export function utf8Bytes(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'utf8')
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
}
