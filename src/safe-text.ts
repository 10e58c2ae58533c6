// Makes text a capsule controls safe to show on the host: control characters escaped, length capped.

/** The most characters of capsule text (an error, a log line) a host-side message carries. */
export const MAX_CAPSULE_TEXT_CHARS = 4096
/** The most bytes of a capsule's own error text kept raw, for hosts that want them (`CapsuleError.rawText`). */
export const MAX_RAW_TEXT_BYTES = 64 * 1024

// C0 and C1 controls, DEL, and the invisible format characters that reorder or hide text
// (bidi embeddings, overrides and isolates, zero-width characters, line and paragraph separators).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function escapeChar(char: string): string {
  return NAMED[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`
}

/** `text` with every control or format character escaped (`\n`, `\u001b`), cut to `maxChars`. */
export function safeText(text: string, maxChars = MAX_CAPSULE_TEXT_CHARS): string {
  const cut = text.length > maxChars
  const escaped = (cut ? text.slice(0, maxChars) : text).replace(UNSAFE, escapeChar)
  return cut ? `${escaped}… (${text.length - maxChars} more characters)` : escaped
}

const lenient = new TextDecoder('utf-8')

/**
 * Decodes at most `maxBytes` of capsule bytes as UTF-8 (invalid sequences become U+FFFD), so no
 * capsule can make the host build a string larger than that.
 */
export function decodePrefix(bytes: Uint8Array, maxBytes: number): { text: string; cut: number } {
  const shown = bytes.byteLength > maxBytes ? bytes.subarray(0, maxBytes) : bytes
  return { text: lenient.decode(shown), cut: bytes.byteLength - shown.byteLength }
}

/** Capsule bytes as a safe host-side line: a decoded, escaped prefix that says how much was left out. */
export function safeTextOf(bytes: Uint8Array, maxChars = MAX_CAPSULE_TEXT_CHARS): string {
  // A character takes at most 4 bytes, so this prefix holds maxChars characters whenever there are that many.
  const { text, cut } = decodePrefix(bytes, maxChars * 4)
  if (cut === 0) return safeText(text, maxChars)
  return `${safeText(text.slice(0, maxChars), maxChars)}… (${bytes.byteLength} bytes in all)`
}
