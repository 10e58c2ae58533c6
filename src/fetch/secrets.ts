// Secrets of one request: collects the values middleware injected and replaces every occurrence in what the capsule receives with a fixed marker.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { BodyReader } from '../net/transport/types.js'

/**
 * The fixed marker that stands in for each occurrence of a secret. It is the same for every
 * secret and every length, so the capsule learns neither which secret matched nor how long it was.
 */
export const REDACTED = '[redacted]'

const REDACTED_BYTES = Buffer.from(REDACTED, 'utf8')

/** Credential parts (a Bearer token, a cookie's value) shorter than this are not secrets on their own. */
export const MIN_PART_LENGTH = 8

/** `next` entries: not looked up yet, and no occurrence left. */
const UNKNOWN = -2
const NONE = -1

/** Which matches a scan decides: all (`final`), all but a tail the next chunk may complete, or those starting before a position. */
type Hold = 'final' | 'tail' | number

/** Patterns of one representation (strings or bytes), shortest first, compiled for the scan. */
interface Table<P extends string | Buffer> {
  readonly patterns: readonly P[]
  readonly lengths: readonly number[]
  /** For pattern i, a shorter pattern it contains and where: no occurrence of that one, none of i. */
  readonly inside: ReadonlyArray<{ readonly of: number; readonly at: number } | undefined>
  readonly maxLength: number
  /** Byte patterns: where the anchor starts in pattern i, and the anchor (see `anchorOf`). */
  readonly anchorAt: readonly number[]
  readonly anchors: ReadonlyArray<Buffer | undefined>
}

/** How common a byte is in text bodies (JSON, HTML, prose): a rough rank, higher is more common. */
function commonness(byte: number): number {
  if (byte >= 0x61 && byte <= 0x7a) return 60 + 'zqxjkvbpygfwmucldrhsnioate'.indexOf(String.fromCharCode(byte)) // a-z, rarest first
  if (byte >= 0x41 && byte <= 0x5a) return 20 + 'ZQXJKVBPYGFWMUCLDRHSNIOATE'.indexOf(String.fromCharCode(byte)) / 2 // A-Z, rarest first
  if (byte >= 0x30 && byte <= 0x39) return 40
  if (' "\',:{}[]\n<>/='.includes(String.fromCharCode(byte))) return 100
  return byte >= 0x80 ? 5 : 50 // other ASCII punctuation (_ - . ;) is common in URLs, JSON and code
}

/** False anchor hits in one search before it falls back to the whole pattern. */
const ANCHOR_MISSES = 8

/** Bytes of an anchor: short enough for the memchr-driven search (no Boyer-Moore set-up per call). */
const ANCHOR_BYTES = 6

/**
 * The anchor of a byte pattern: the part starting at its least common byte. Every occurrence of
 * the pattern holds it, and searching for it skips with memchr past the common bytes of a body,
 * which a search for the whole pattern from its first byte (often a common letter) cannot.
 */
function anchorOf(pattern: Buffer): { at: number; anchor: Buffer } {
  let at = 0
  for (let i = 1; i < pattern.length; i++) if (commonness(pattern[i]!) < commonness(pattern[at]!)) at = i
  return { at, anchor: pattern.subarray(at, Math.min(pattern.length, at + ANCHOR_BYTES)) }
}

/** The first occurrence of pattern i at or after `from` in `data`, found through its anchor; -1 when none. */
function anchoredIndexOf(table: Table<Buffer>, i: number, data: Buffer, from: number): number {
  const pattern = table.patterns[i]!
  const at = table.anchorAt[i]!
  const anchor = table.anchors[i]!
  let search = from + at
  // A body full of the anchor would cost a call per byte: after a few false hits the whole pattern is searched instead.
  for (let misses = 0; misses < ANCHOR_MISSES; misses++) {
    const hit = data.indexOf(anchor, search)
    if (hit < 0) return NONE
    const start = hit - at
    if (start + pattern.length > data.length) return NONE
    if (data.compare(pattern, 0, pattern.length, start, start + pattern.length) === 0) return start
    search = hit + 1
  }
  return data.indexOf(pattern, search - at)
}

/** Where the matches are: start and end pairs in order, and how far the scan decided (the rest is held back). */
interface Matches {
  readonly spans: number[]
  readonly cut: number
}

/** Sorts, finds containment and records first bytes, once per change of the pattern set. */
function compile<P extends string | Buffer>(set: Iterable<P>): Table<P> {
  const patterns = [...set].sort((a, b) => a.length - b.length)
  const inside = patterns.map((pattern, i) => {
    for (let j = i - 1; j >= 0; j--) {
      // String and Buffer indexOf both take a needle of their own kind.
      const at = (pattern as string).indexOf(patterns[j] as string)
      if (at >= 0) return { of: j, at }
    }
    return undefined
  })
  const lengths = patterns.map((p) => p.length)
  const anchored = patterns.map((p) => (typeof p === 'string' ? undefined : anchorOf(p)))
  return {
    patterns,
    lengths,
    inside,
    maxLength: lengths[lengths.length - 1] ?? 0,
    anchorAt: anchored.map((a) => a?.at ?? 0),
    anchors: anchored.map((a) => a?.anchor),
  }
}

/**
 * The pattern whose next occurrence at or after `pos` starts first (the longest on ties), or -1.
 * `next` caches each pattern's next occurrence in this haystack; `pos` never decreases.
 */
function nextMatch(table: Table<string | Buffer>, next: number[], pos: number, find: (i: number, from: number) => number): number {
  let best = -1
  let bestAt = Number.POSITIVE_INFINITY
  for (let i = 0; i < next.length; i++) {
    let at = next[i]!
    if (at !== NONE && at < pos) {
      const inside = table.inside[i]
      if (inside === undefined) {
        at = find(i, pos)
      } else {
        // Every occurrence of i holds one of `inside.of` (looked up first: it is shorter), `at` bytes in.
        const other = next[inside.of]!
        at = other === NONE ? NONE : find(i, Math.max(pos, other - inside.at))
      }
      next[i] = at
    }
    // Ascending lengths: a later pattern starting at the same place is the longer one.
    if (at !== NONE && at <= bestAt) {
      best = i
      bestAt = at
    }
  }
  return best
}

/**
 * The non-overlapping matches, earliest first, whose start is before the hold; `holdFrom(pos)` is
 * the first position at or after `pos` where a match may still be incomplete (the length when none).
 */
function matchesIn(table: Table<string | Buffer>, find: (i: number, from: number) => number, holdFrom: (pos: number) => number): Matches {
  const next = new Array<number>(table.lengths.length).fill(UNKNOWN)
  const spans: number[] = []
  let pos = 0
  let hold = holdFrom(0)
  for (;;) {
    const i = nextMatch(table, next, pos, find)
    if (i < 0 || next[i]! >= hold) break
    spans.push(next[i]!, (pos = next[i]! + table.lengths[i]!))
    if (pos > hold) hold = holdFrom(pos)
  }
  return { spans, cut: Math.max(pos, hold) }
}

/** `text` with each span replaced by the marker. */
function replacedText(text: string, spans: readonly number[]): string {
  let out = ''
  let pos = 0
  for (let k = 0; k < spans.length; k += 2) {
    out += text.slice(pos, spans[k]) + REDACTED
    pos = spans[k + 1]!
  }
  return out + text.slice(pos)
}

/** `data[0, cut)` with each span replaced by the marker; a view (no copy) when there is no span. */
function replacedBytes(data: Buffer, spans: readonly number[], cut: number): Buffer {
  if (spans.length === 0) return cut === data.length ? data : data.subarray(0, cut)
  const parts: Buffer[] = []
  let pos = 0
  for (let k = 0; k < spans.length; k += 2) {
    parts.push(data.subarray(pos, spans[k]), REDACTED_BYTES)
    pos = spans[k + 1]!
  }
  parts.push(data.subarray(pos, cut))
  return Buffer.concat(parts)
}

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** A non-ASCII character as a JSON `\u` escape (Python's and PHP's default). */
const jsonUnicodeEscape = (c: string): string => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')

/**
 * The spellings of `value` an echo may carry: as is, JSON-escaped as JavaScript writes it, as
 * Python writes it (`\u00e4`) and as PHP writes it (`\u00e4` and `\/`), and percent-encoded.
 */
function textForms(value: string): Set<string> {
  const json = JSON.stringify(value).slice(1, -1)
  const ascii = json.replace(/[\u0080-\uffff]/g, jsonUnicodeEscape)
  const forms = new Set([value, json, ascii, ascii.replaceAll('/', '\\/')])
  try {
    forms.add(encodeURIComponent(value))
  } catch {
    // A lone surrogate has no percent-encoding; its other forms still stand.
  }
  return forms
}

/** HTTP sends a header value's characters up to U+00FF as single bytes: that form too, when it differs from UTF-8. */
function latin1Form(value: string): Buffer | undefined {
  return /[\u0080-\u00ff]/.test(value) && !/[^\u0000-\u00ff]/.test(value) ? Buffer.from(value, 'latin1') : undefined
}

/** `<scheme> <credential>` (RFC 9110 §11.4): the credential, or undefined for a value without a scheme. */
function credentialOf(value: string): string | undefined {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]+(\S[\s\S]*)$/.exec(value.trim())?.[1]?.trim()
}

/** Each cookie's value in a `cookie` header (RFC 6265 §5.4), and its unquoted form when quoted. */
function cookieValues(value: string): string[] {
  const values: string[] = []
  for (const pair of value.split(';')) {
    const eq = pair.indexOf('=')
    const cookie = pair.slice(eq + 1).trim()
    values.push(cookie)
    if (cookie.length >= 2 && cookie.startsWith('"') && cookie.endsWith('"')) values.push(cookie.slice(1, -1))
  }
  return values
}

/** What a request without secrets holds: never added to (the first `add` replaces both). */
const EMPTY_TEXT: ReadonlySet<string> = new Set<string>()
const EMPTY_BYTES: ReadonlyMap<string, Buffer> = new Map<string, Buffer>()

/** The secrets of one request (all its hops) and the count of replacements made. */
export class RequestSecrets {
  // Made with the first secret: most requests have none and allocate nothing for them.
  #text = EMPTY_TEXT as Set<string>
  /** Byte patterns by their latin1 spelling (one character a byte), so equal bytes are one entry. */
  #bytes = EMPTY_BYTES as Map<string, Buffer>
  #textTable: Table<string> | undefined
  #bytesTable: Table<Buffer> | undefined
  #replacements = 0

  /**
   * Adds a value (and its JSON-escaped and percent-encoded forms when they differ). Empty values
   * are ignored. Also added: the JSON forms Python and PHP write (`\u` escapes, `\/`), and for a
   * value of characters up to U+00FF with one above U+007F, its latin1 bytes (how HTTP sends it).
   */
  add(value: string): void {
    if (typeof value !== 'string') throw new TypeError(`a secret is a string, not ${typeof value}`)
    if (value === '') return
    if (this.#text === EMPTY_TEXT) {
      this.#text = new Set()
      this.#bytes = new Map()
    }
    for (const form of textForms(value)) {
      this.#text.add(form)
      this.#addBytes(Buffer.from(form, 'utf8'))
    }
    const latin1 = latin1Form(value)
    if (latin1 !== undefined) this.#addBytes(latin1)
    this.#textTable = undefined
  }

  /**
   * For a header a middleware set: `authorization`/`proxy-authorization`: the whole value and, for
   * `Bearer`, `Basic`, `token` (and other `<scheme> <credential>` forms), the credential alone;
   * `cookie`: the whole value and each cookie's value; other names: nothing (returns false).
   * Credential parts shorter than 8 characters (code points) are not added alone (the whole value
   * always is, and so is its trimmed form). Returns true when the header counts as a secret.
   */
  addInjectedHeader(name: string, value: string, own?: string): boolean {
    const header = name.toLowerCase()
    let parts: string[]
    if (header === 'authorization' || header === 'proxy-authorization') {
      const credential = credentialOf(value)
      parts = credential === undefined ? [] : [credential]
    } else if (header === 'cookie') {
      // Only the cookies the middleware added: the capsule's own are no secret, and each would be a pattern.
      const mine = new Set(own === undefined ? [] : cookieValues(own))
      parts = cookieValues(value).filter((part) => !mine.has(part))
    } else {
      return false
    }
    this.add(value)
    this.add(value.trim())
    for (const part of parts) if ([...part].length >= MIN_PART_LENGTH) this.add(part)
    return true
  }

  /** Distinct byte patterns (each value's forms after deduplication). */
  get size(): number {
    return this.#bytes.size
  }

  /** Total replacements made by every scrub* call so far. */
  get replacements(): number {
    return this.#replacements
  }

  /** `text` with every occurrence of a secret replaced by the marker; the same string when nothing matched. */
  scrubText(text: string): string {
    if (this.size === 0) return text
    const table = (this.#textTable ??= compile(this.#text))
    const { spans } = matchesIn(table, (i, from) => text.indexOf(table.patterns[i]!, from), () => text.length)
    if (spans.length === 0) return text
    this.#replacements += spans.length / 2
    return replacedText(text, spans)
  }

  /** The same for bytes (matched byte for byte); returns the same object when nothing matched. */
  scrubBytes(bytes: Uint8Array): Uint8Array {
    if (this.size === 0) return bytes
    const data = asBuffer(bytes)
    const { spans } = this.#matches(data, 'final')
    if (spans.length === 0) return bytes
    this.#replacements += spans.length / 2
    return replacedBytes(data, spans, data.length)
  }

  /** A JSON value: strings and object keys scrubbed, structure kept; the same object when nothing matched. */
  scrubValue(value: unknown): unknown {
    if (this.size === 0) return value
    if (typeof value === 'string') return this.scrubText(value)
    if (typeof value !== 'object' || value === null) return value
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined
      value.forEach((item: unknown, i) => {
        const scrubbed = this.scrubValue(item)
        if (scrubbed !== item) (copy ??= [...value])[i] = scrubbed
      })
      return copy ?? value
    }
    let changed = false
    const entries = Object.entries(value).map(([key, item]) => {
      const entry = [this.scrubText(key), this.scrubValue(item)] as const
      changed ||= entry[0] !== key || entry[1] !== item
      return entry
    })
    // fromEntries defines own properties, so a `__proto__` key stays a key.
    return changed ? Object.fromEntries(entries) : value
  }

  /** Names and values; the same list when nothing matched (treat it as read-only then). */
  scrubHeaders(list: ReadonlyArray<readonly [string, string]>): Array<[string, string]> {
    let copy: Array<[string, string]> | undefined
    if (this.size > 0) {
      list.forEach(([name, value], i) => {
        const entry: [string, string] = [this.scrubText(name), this.scrubText(value)]
        if (entry[0] !== name || entry[1] !== value) (copy ??= list.map(([n, v]) => [n, v]))[i] = entry
      })
    }
    return copy ?? (list as Array<[string, string]>)
  }

  /**
   * Wraps a body reader so every byte it yields is scrubbed, also when a secret is split across
   * chunks. With no secrets it returns `reader` itself, so wrap it after every hop's middleware
   * ran; a secret added while the body streams applies to the bytes not yet handed out.
   */
  scrubReader(reader: BodyReader): BodyReader {
    if (this.size === 0) return reader
    return new ScrubbedReader(reader, this.#bytesTableNow().maxLength, (data, hold) => {
      const matches = this.#matches(data, hold)
      this.#replacements += matches.spans.length / 2
      return matches
    })
  }

  #bytesTableNow(): Table<Buffer> {
    return (this.#bytesTable ??= compile(this.#bytes.values()))
  }

  /**
   * The matches in `data`: all of them (`final`), those that cannot be cut by the end (`tail`), or
   * only those starting before a position (a held-back tail joined to the next chunk's head).
   */
  #matches(data: Buffer, hold: Hold): Matches {
    const table = this.#bytesTableNow()
    const find = (i: number, from: number) => anchoredIndexOf(table, i, data, from)
    // The tail held back is always the last (longest - 1) bytes, whatever they hold: a hold that
    // depended on the content would tell the capsule whether its echoed guess starts a secret.
    const tail = Math.max(0, data.length - (table.maxLength - 1))
    const holdFrom =
      hold === 'final' ? () => data.length : hold === 'tail' ? (pos: number) => Math.max(pos, tail) : (pos: number) => Math.max(pos, hold)
    return matchesIn(table, find, holdFrom)
  }

  #addBytes(bytes: Buffer): void {
    const key = bytes.toString('latin1')
    if (this.#bytes.has(key)) return
    this.#bytes.set(key, bytes)
    this.#bytesTable = undefined
  }
}

/**
 * A received chunk on its way out: `data[0, cut)` is decided (the matches in it are `spans`),
 * `data[cut, end)` waits for the next chunk or the end (a match may start there).
 */
interface Pending {
  readonly data: Buffer
  readonly spans: readonly number[]
  readonly cut: number
}

/**
 * A body reader that scrubs what it passes on. It holds back a tail that may be the start of a
 * secret (always the last longest pattern - 1 bytes) until the next chunk or the end decides it,
 * and queues what is ready, so `read(maxBytes)` can hand out exactly that many bytes.
 *
 * When the next chunk is buffered, or comes within one turn of the event loop, a chunk is handed
 * out whole once that chunk's head has decided its tail: one piece per received chunk, as without
 * secrets, with no copy. Otherwise its decided part goes out at once and only the tail waits (a
 * copy, so it outlives the chunk), to go out before the next chunk in a piece of its own.
 */
class ScrubbedReader implements BodyReader {
  readonly #inner: BodyReader
  /** Finds the matches in received bytes that are decided (see Hold), counting them. */
  readonly #scrub: (data: Buffer, hold: Hold) => Matches
  /** The longest pattern: a held tail is decided by this many bytes of the next chunk at most. */
  readonly #longest: number
  /** Scrubbed bytes ready to hand out, each piece non-empty. */
  readonly #ready: Buffer[] = []
  /** Received bytes not queued yet. */
  #pending: Pending | undefined
  #ended = false

  constructor(inner: BodyReader, longest: number, scrub: (data: Buffer, hold: Hold) => Matches) {
    this.#inner = inner
    this.#longest = longest
    this.#scrub = scrub
  }

  get bytesRead(): number {
    return this.#inner.bytesRead
  }

  get buffered(): number {
    let bytes = this.#inner.buffered + (this.#pending?.data.length ?? 0)
    for (const piece of this.#ready) bytes += piece.length
    return bytes
  }

  cancel(): void {
    this.#inner.cancel()
  }

  async read(maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array | null> {
    if (!(maxBytes >= 1)) throw new RangeError(`maxBytes must be at least 1, not ${maxBytes}`)
    while (this.#ready.length === 0) {
      if (this.#ended) return null
      if (await this.#nothingBuffered() && this.#queueDecided()) break
      const chunk = await this.#inner.read(maxBytes)
      if (chunk === null) this.#end()
      else this.#received(asBuffer(chunk))
    }
    return this.#take(maxBytes)
  }

  /**
   * True when the next chunk has not come, even after one turn of the event loop: a pending whole
   * chunk then goes out without its tail now, not after that chunk (which may be seconds away).
   * The one turn lets a chunk already on the socket arrive, so a fast body goes out a whole chunk
   * a read, with neither a copy nor an extra read for the held tail.
   */
  async #nothingBuffered(): Promise<boolean> {
    if (this.#inner.buffered > 0) return false
    if (this.#pending === undefined || this.#pending.cut === 0) return true
    await new Promise(setImmediate)
    return this.#inner.buffered === 0
  }

  /** Scrubs `data` as far as it decides; the rest stays pending. */
  #scan(data: Buffer): void {
    const { spans, cut } = this.#scrub(data, 'tail')
    this.#pending = { data, spans, cut }
  }

  /** Queues the decided part of the pending chunk (see #decided); false when nothing was decided. */
  #queueDecided(): boolean {
    if (this.#pending === undefined || this.#pending.cut === 0) return false
    this.#queue(this.#decided())
    return true
  }

  /** The decided part of the pending chunk, scrubbed; what stays pending is a copy of its tail. */
  #decided(): Buffer {
    const pending = this.#pending!
    const tail = pending.data.subarray(pending.cut)
    this.#pending = tail.length > 0 ? { data: Buffer.from(tail), spans: [], cut: 0 } : undefined
    return replacedBytes(pending.data, pending.spans, pending.cut)
  }

  /**
   * The next chunk: its first (longest - 1) bytes joined to the pending tail decide every match
   * that starts in the tail. With a match there, the pieces split at it; without, the pending
   * chunk (or held tail) goes out whole.
   */
  #received(chunk: Buffer): void {
    const pending = this.#pending
    if (pending === undefined) return this.#scan(chunk)
    const tail = pending.data.subarray(pending.cut)
    const head = this.#longest - 1
    if (chunk.length < head) {
      this.#queue(replacedBytes(pending.data, pending.spans, pending.cut))
      return this.#scan(Buffer.concat([tail, chunk]))
    }
    const joined = Buffer.concat([tail, chunk.subarray(0, head)])
    const { spans, cut } = this.#scrub(joined, tail.length)
    if (spans.length > 0 || cut > tail.length) {
      this.#queue(replacedBytes(pending.data, pending.spans, pending.cut))
      this.#queue(replacedBytes(joined, spans, cut))
      return this.#scan(chunk.subarray(cut - tail.length))
    }
    this.#queue(replacedBytes(pending.data, pending.spans, pending.data.length))
    this.#scan(chunk)
  }

  /** The body ended: the pending tail is decided as it is. */
  #end(): void {
    this.#ended = true
    const pending = this.#pending
    this.#pending = undefined
    if (pending === undefined) return
    this.#queue(replacedBytes(pending.data, pending.spans, pending.cut))
    const tail = pending.data.subarray(pending.cut)
    this.#queue(replacedBytes(tail, this.#scrub(tail, 'final').spans, tail.length))
  }

  #queue(piece: Buffer): void {
    if (piece.length > 0) this.#ready.push(piece)
  }

  /** One ready piece; with a finite `maxBytes`, all ready bytes up to it in one piece. */
  #take(maxBytes: number): Buffer {
    const ready = this.#ready
    const first = ready[0]!
    if (first.length >= maxBytes) {
      if (first.length > maxBytes) ready[0] = first.subarray(maxBytes)
      else ready.shift()
      return first.subarray(0, maxBytes)
    }
    if (!Number.isFinite(maxBytes)) return ready.shift()!
    const parts: Buffer[] = []
    let size = 0
    while (ready.length > 0 && size + ready[0]!.length <= maxBytes) {
      size += ready[0]!.length
      parts.push(ready.shift()!)
    }
    if (ready.length > 0 && size < maxBytes) {
      parts.push(ready[0]!.subarray(0, maxBytes - size))
      ready[0] = ready[0]!.subarray(maxBytes - size)
      size = maxBytes
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)
  }
}

const scope = new AsyncLocalStorage<RequestSecrets>()

/**
 * Marks `value` as a secret of the hop whose middleware is running, and returns it unchanged (a
 * string). Outside a middleware (no scope) it throws a TypeError saying so.
 */
export function secret(value: string): string {
  const secrets = scope.getStore()
  if (secrets === undefined) {
    throw new TypeError('secret() was called outside a middleware: it marks a value as a secret of the request whose middleware is running')
  }
  secrets.add(value)
  return value
}

/** Runs `fn` with `secrets` as the scope that `secret()` adds to (AsyncLocalStorage, so it follows awaits). */
export function withSecrets<T>(secrets: RequestSecrets, fn: () => T): T {
  return scope.run(secrets, fn)
}
