// utf8Bytes: UTF-8 in bytes that own their whole buffer (what Extism may adopt as a block), for small and large texts.
import { describe, expect, test } from 'vitest'
import { utf8Bytes } from '../src/utf8-bytes.js'

describe('utf8Bytes', () => {
  test.each([
    ['empty', ''],
    ['ASCII, pooled size', '{"status":200}'],
    ['multi-byte and a surrogate pair', 'é ✓ 𝄞'],
    ['just under the pool half (4 KiB)', 'x'.repeat(4095)],
    ['over it', 'y'.repeat(70_000)],
  ])('%s: the same bytes as TextEncoder, in a buffer of their own', (_name, text) => {
    const bytes = utf8Bytes(text)
    expect(Buffer.from(bytes).equals(Buffer.from(new TextEncoder().encode(text)))).toBe(true)
    expect(bytes.byteOffset).toBe(0)
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength)
  })

  test('two results never share a buffer', () => {
    const a = utf8Bytes('first')
    const b = utf8Bytes('second')
    expect(a.buffer).not.toBe(b.buffer)
  })
})
