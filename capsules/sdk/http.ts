// Typed HTTP for capsules: request() for buffered exchanges, stream() for large bodies.
// AssemblyScript has no exceptions, so failures are values: check `.error` first.

import {
  block_to_mem,
  free,
  http_request,
  http_stream_close,
  http_stream_read,
  http_stream_read_into,
  http_stream_start,
  length,
} from "./env";
import { ByteBuffer, decodeUtf8 } from "./bytes";
import { decodeRange } from "./base64";
import {
  JSON_ARRAY,
  JSON_OBJECT,
  JSON_STRING,
  JsonValue,
  JsonWriter,
  jsonError,
  pairSpans,
  parseJson,
  spanEquals,
  spanText,
} from "./json";
import { fromBlock, stringToBlock, takeBlock, toBlock } from "./memory";

/**
 * handle: the numeric stream handle; capacity: the most body bytes to take (>= 1). Returns the
 * offset of a block whose first byte says what follows: STREAM_DATA (1 to capacity bytes of the
 * body), STREAM_END (nothing) or STREAM_ERROR (`{"error":{...}}` JSON). Never traps on a stream
 * error or a bad argument.
 */
@external("extism:host/user", "http_stream_next")
export declare function http_stream_next(handle: u64, capacity: u64): u64;

/** The first byte of an http_stream_next reply: the next bytes of the body follow. */
export const STREAM_DATA: u8 = 0;
/** The first byte of an http_stream_next reply: the body ended; nothing follows. */
export const STREAM_END: u8 = 1;
/** The first byte of an http_stream_next reply: the stream failed; `{"error":{...}}` follows. */
export const STREAM_ERROR: u8 = 2;

/** Size of the buffer a Stream reads into, unless stream() is given another. */
export const DEFAULT_STREAM_BUFFER: i32 = 256 * 1024;

/** Code of the error the SDK reports when a host reply cannot be understood (not a host code). */
export const INVALID_REPLY = "invalid_reply";

/**
 * Every code the host may send in `{"error":{"code":...}}`: capsule-host's ERROR_CODES, in its
 * order (docs/errors.md). `internal` is a bug on the host side; its message tells nothing more.
 * test/sdk-error-codes.test.ts keeps this list equal to the host's.
 */
export const HOST_ERROR_CODES: StaticArray<string> = [
  "invalid_request",
  "denied",
  "blocked_address",
  "dns_failed",
  "connect_failed",
  "tls_failed",
  "timeout",
  "too_large",
  "stream_limit",
  "redirect_denied",
  "too_many_redirects",
  "integrity_mismatch",
  "network",
  "cancelled",
  "rate_limited",
  "internal",
];

/** The empty default of `raw` and `body` (zero-length, so one array serves every reply). */
const NO_BYTES = new Uint8Array(0);

export class Header {
  constructor(public name: string, public value: string) {}
}

/**
 * A failed request. `code` is one of the host's codes (HOST_ERROR_CODES) or the SDK's own
 * `invalid_reply` (INVALID_REPLY).
 * `phase` is set for timeouts (connect, first_byte, idle, total, or host: a gate, the policy or
 * middleware on the host did not answer within its deadline).
 * `retryAfterMs` is set for `rate_limited` (ms until a retry can succeed); -1 otherwise.
 */
export class HttpError {
  constructor(public code: string, public message: string, public phase: string | null = null, public retryAfterMs: i64 = -1) {}

  /** `{"code":...,"message":...[,"phase":...][,"retryAfterMs":...]}` */
  toJson(): string {
    const w = new JsonWriter();
    this.write(w);
    return w.toString();
  }

  write(w: JsonWriter): void {
    w.beginObject().key("code").string(this.code).key("message").string(this.message);
    const phase = this.phase;
    if (phase !== null) w.key("phase").string(phase);
    if (this.retryAfterMs >= 0) w.key("retryAfterMs").int(this.retryAfterMs);
    w.endObject();
  }

  toString(): string {
    return this.code + ": " + this.message;
  }
}

/**
 * A request, written to the wire JSON by toJson():
 *
 *   const req = new HttpRequest("https://api.example.com/v1/items", "POST")
 *     .header("content-type", "application/json")
 *     .body('{"name":"x"}')
 *     .timeout(5000);
 */
export class HttpRequest {
  url: string;
  method: string;
  /** Sent as [name, value] pairs, in order, repeats kept. */
  headers: Array<Header> = new Array<Header>();
  private textBody: string | null = null;
  private binaryBody: Uint8Array | null = null;
  private base64Response: bool = false;
  private timeoutMs: i64 = -1;
  private connectTimeoutMs: i64 = -1;
  private firstByteTimeoutMs: i64 = -1;
  private idleTimeoutMs: i64 = -1;
  private maxRedirectsValue: i64 = -1;
  private maxResponseBytesValue: i64 = -1;
  private redirectMode: string | null = null;
  private integrityValue: string | null = null;
  private headerForm: string | null = null;

  constructor(url: string, method: string = "GET") {
    this.url = url;
    this.method = method;
  }

  static get(url: string): HttpRequest {
    return new HttpRequest(url, "GET");
  }

  static post(url: string): HttpRequest {
    return new HttpRequest(url, "POST");
  }

  /** Adds a header (repeats are kept, in order). */
  header(name: string, value: string): HttpRequest {
    this.headers.push(new Header(name, value));
    return this;
  }

  /** A UTF-8 text body (`body` on the wire). Replaces any earlier body. */
  body(text: string): HttpRequest {
    this.textBody = text;
    this.binaryBody = null;
    return this;
  }

  /** A binary body, sent base64-encoded (`bodyBase64` on the wire). Replaces any earlier body. */
  bodyBytes(bytes: Uint8Array): HttpRequest {
    this.binaryBody = bytes;
    this.textBody = null;
    return this;
  }

  /** A JSON text body with `content-type: application/json`. */
  json(text: string): HttpRequest {
    return this.header("content-type", "application/json").body(text);
  }

  /** Ask for the response body in base64 (`responseBody: "base64"`): needed for binary bodies. */
  binaryResponse(): HttpRequest {
    this.base64Response = true;
    return this;
  }

  timeout(ms: i64): HttpRequest { this.timeoutMs = ms; return this; }
  connectTimeout(ms: i64): HttpRequest { this.connectTimeoutMs = ms; return this; }
  firstByteTimeout(ms: i64): HttpRequest { this.firstByteTimeoutMs = ms; return this; }
  idleTimeout(ms: i64): HttpRequest { this.idleTimeoutMs = ms; return this; }
  /** "manual" (default: a 3xx comes back to you), "follow" or "error". */
  redirect(mode: string): HttpRequest { this.redirectMode = mode; return this; }
  maxRedirects(n: i64): HttpRequest { this.maxRedirectsValue = n; return this; }
  maxResponseBytes(n: i64): HttpRequest { this.maxResponseBytesValue = n; return this; }
  /** A Subresource-Integrity string (e.g. "sha256-..."), checked on buffered bodies. */
  integrity(sri: string): HttpRequest { this.integrityValue = sri; return this; }
  /**
   * How the reply carries the response headers (`responseHeaders` on the wire): "list" (the
   * host's default: `rawHeaders` only), "object" (`headers` only) or "both". Not sent unless set.
   * The header accessors read any of the three.
   */
  responseHeaders(form: string): HttpRequest { this.headerForm = form; return this; }

  /** The wire request JSON. */
  toJson(): Uint8Array {
    const binary = this.binaryBody;
    const w = new JsonWriter(256 + (binary !== null ? (binary.length / 3) * 4 + 4 : 0));
    w.beginObject();
    w.key("url").string(this.url);
    w.key("method").string(this.method);
    if (this.headers.length > 0) {
      w.key("headers").beginArray();
      for (let i = 0; i < this.headers.length; i++) {
        const h = unchecked(this.headers[i]);
        w.beginArray().string(h.name).string(h.value).endArray();
      }
      w.endArray();
    }
    const text = this.textBody;
    if (text !== null) w.key("body").string(text);
    if (binary !== null) w.key("bodyBase64").base64(binary);
    if (this.base64Response) w.key("responseBody").string("base64");
    const headerForm = this.headerForm;
    if (headerForm !== null) w.key("responseHeaders").string(headerForm);
    const redirect = this.redirectMode;
    const integrity = this.integrityValue;
    if (
      this.timeoutMs >= 0 || this.connectTimeoutMs >= 0 || this.firstByteTimeoutMs >= 0 ||
      this.idleTimeoutMs >= 0 || this.maxRedirectsValue >= 0 || this.maxResponseBytesValue >= 0 ||
      redirect !== null || integrity !== null
    ) {
      w.key("options").beginObject();
      if (this.timeoutMs >= 0) w.key("timeoutMs").int(this.timeoutMs);
      if (this.connectTimeoutMs >= 0) w.key("connectTimeoutMs").int(this.connectTimeoutMs);
      if (this.firstByteTimeoutMs >= 0) w.key("firstByteTimeoutMs").int(this.firstByteTimeoutMs);
      if (this.idleTimeoutMs >= 0) w.key("idleTimeoutMs").int(this.idleTimeoutMs);
      if (redirect !== null) w.key("redirect").string(redirect);
      if (this.maxRedirectsValue >= 0) w.key("maxRedirects").int(this.maxRedirectsValue);
      if (this.maxResponseBytesValue >= 0) w.key("maxResponseBytes").int(this.maxResponseBytesValue);
      if (integrity !== null) w.key("integrity").string(integrity);
      w.endObject();
    }
    w.endObject();
    return w.toBytes();
  }
}

/**
 * Header accessors shared by responses and streams. They read the reply's header forms where they
 * lie (`rawHeaders`, a list of [name, value] pairs, and/or `headers`, an object), decoding only
 * the values asked for; `headers` and `rawHeaders` are built on first use.
 * Names compare case-insensitively in ASCII (header names are ASCII tokens).
 */
export class HeaderSet {
  /** The reply's `headers` object, when it came. */
  private headerObject: JsonValue | null = null;
  /** The reply's `rawHeaders` list, when it came. */
  private headerList: JsonValue | null = null;
  /** The spans of headerList's pairs (pairSpans), recorded on the first lookup. */
  private pairs: Array<i32> | null = null;
  private headersBuilt: Array<Header> | null = null;
  private rawHeadersBuilt: Array<Header> | null = null;

  /**
   * One entry per name (lower-case), repeated values joined with ", ": the reply's `headers`, or
   * made from `rawHeaders` when only the list came. Built on first use, then the same array.
   */
  get headers(): Array<Header> {
    const built = this.headersBuilt;
    if (built !== null) return built;
    const object = this.headerObject;
    const made = object !== null ? objectHeaders(object) : joinedHeaders(this.rawHeaders);
    this.headersBuilt = made;
    return made;
  }

  /**
   * Every header as received, in order: the reply's `rawHeaders`, or one entry per member of
   * `headers` when only the object came. Built on first use, then the same array.
   */
  get rawHeaders(): Array<Header> {
    const built = this.rawHeadersBuilt;
    if (built !== null) return built;
    const list = this.headerList;
    const object = this.headerObject;
    let made: Array<Header>;
    if (list !== null) made = this.listHeaders(list);
    else made = object !== null ? objectHeaders(object) : new Array<Header>();
    this.rawHeadersBuilt = made;
    return made;
  }

  /**
   * The value of header `name`, or null: from `headers` when the reply carried it, otherwise
   * from `rawHeaders` with repeated values joined with ", ".
   */
  header(name: string): string | null {
    const object = this.headerObject;
    if (object !== null) {
      const n = object.size;
      for (let i = 0; i < n; i++) {
        if (object.keyEquals(i, name, true)) return object.at(i)!.str();
      }
      return null;
    }
    const list = this.headerList;
    if (list === null) return null;
    const pairs = this.pairSpans(list);
    let found: string | null = null;
    for (let i = 0; i < pairs.length; i += 4) {
      if (!spanEquals(list.src, unchecked(pairs[i]), unchecked(pairs[i + 1]), name, true)) continue;
      const value = spanText(list.src, unchecked(pairs[i + 2]), unchecked(pairs[i + 3]));
      found = found === null ? value : found + ", " + value;
    }
    return found;
  }

  /**
   * Every value of header `name`, in order, from `rawHeaders`; when only `headers` came, its one
   * (joined) value.
   */
  headerValues(name: string): Array<string> {
    const out = new Array<string>();
    const list = this.headerList;
    if (list === null) {
      const one = this.header(name);
      if (one !== null) out.push(one);
      return out;
    }
    const pairs = this.pairSpans(list);
    for (let i = 0; i < pairs.length; i += 4) {
      if (spanEquals(list.src, unchecked(pairs[i]), unchecked(pairs[i + 1]), name, true)) {
        out.push(spanText(list.src, unchecked(pairs[i + 2]), unchecked(pairs[i + 3])));
      }
    }
    return out;
  }

  /** Takes the header forms of the reply `doc` (an object); called while the reply is read. */
  readHeaders(doc: JsonValue): void {
    const object = doc.get("headers");
    if (object !== null && object.kind == JSON_OBJECT) this.headerObject = object;
    const list = doc.get("rawHeaders");
    if (list !== null && list.kind == JSON_ARRAY) this.headerList = list;
  }

  private pairSpans(list: JsonValue): Array<i32> {
    const kept = this.pairs;
    if (kept !== null) return kept;
    const pairs = pairSpans(list);
    this.pairs = pairs;
    return pairs;
  }

  private listHeaders(list: JsonValue): Array<Header> {
    const pairs = this.pairSpans(list);
    const out = new Array<Header>(pairs.length >> 2);
    for (let i = 0; i < pairs.length; i += 4) {
      const name = spanText(list.src, unchecked(pairs[i]), unchecked(pairs[i + 1]));
      const value = spanText(list.src, unchecked(pairs[i + 2]), unchecked(pairs[i + 3]));
      unchecked((out[i >> 2] = new Header(name, value)));
    }
    return out;
  }
}

/** One Header per member of a `headers` object, in order (a value that is not a string is ""). */
function objectHeaders(object: JsonValue): Array<Header> {
  const n = object.size;
  const out = new Array<Header>(n);
  for (let i = 0; i < n; i++) unchecked((out[i] = new Header(object.keyAt(i)!, object.at(i)!.str())));
  return out;
}

/** One Header per name (lower-cased), in order of first appearance, repeats joined with ", ". */
function joinedHeaders(list: Array<Header>): Array<Header> {
  const out = new Array<Header>();
  for (let i = 0; i < list.length; i++) {
    const h = unchecked(list[i]);
    const name = h.name.toLowerCase();
    let j = 0;
    while (j < out.length && unchecked(out[j]).name != name) j++;
    if (j < out.length) unchecked(out[j]).value += ", " + h.value;
    else out.push(new Header(name, h.value));
  }
  return out;
}

/** A buffered response. When `error` is set, the other fields are empty. */
export class HttpResponse extends HeaderSet {
  status: i32 = 0;
  /** "text", "base64" or "json" (a middleware answered with a JSON value; `body` is its JSON text). */
  bodyEncoding: string = "";
  error: HttpError | null = null;
  /** The host's reply exactly as received. */
  raw: Uint8Array = NO_BYTES;
  /** The reply's `body` value, until `body` is first read. */
  private bodyValue: JsonValue | null = null;
  private bodyBytes: Uint8Array | null = null;
  /** The reply, whose `meta` is read on first use of finalUrl, redirects or elapsedMs. */
  private doc: JsonValue | null = null;
  private metaRead: bool = false;
  private finalUrlValue: string = "";
  private redirectsValue: i32 = 0;
  private elapsedMsValue: f64 = 0;

  /** No error and a 2xx status. */
  get ok(): bool {
    return this.error === null && this.status >= 200 && this.status < 300;
  }

  /**
   * The body bytes, decoded from the wire on first use (text as UTF-8 with escapes resolved,
   * base64 decoded, json as its JSON text). Text without escapes and json are views of `raw`.
   */
  get body(): Uint8Array {
    const bytes = this.bodyBytes;
    if (bytes !== null) return bytes;
    const value = this.bodyValue;
    const made = value === null ? NO_BYTES : textBody(value, this.bodyEncoding);
    this.bodyBytes = made;
    this.bodyValue = null;
    return made;
  }

  set body(bytes: Uint8Array) {
    this.bodyBytes = bytes;
    this.bodyValue = null;
  }

  get finalUrl(): string {
    this.readMeta();
    return this.finalUrlValue;
  }

  get redirects(): i32 {
    this.readMeta();
    return this.redirectsValue;
  }

  get elapsedMs(): f64 {
    this.readMeta();
    return this.elapsedMsValue;
  }

  /** The body as UTF-8 text. */
  text(): string {
    return decodeUtf8(this.body);
  }

  /** The body parsed as JSON, or null (see jsonError()). */
  json(): JsonValue | null {
    return parseJson(this.body);
  }

  /** Takes the body of the reply `doc` (and `doc`, for meta); false when a base64 body is not base64. */
  readBody(doc: JsonValue): bool {
    const value = doc.get("body");
    if (value !== null && value.kind == JSON_STRING && this.bodyEncoding == "base64") {
      // Decoded now, so that a body that is not base64 is an error of the reply.
      const decoded = base64Body(value);
      if (decoded === null) return false;
      this.bodyBytes = decoded;
    } else {
      this.bodyValue = value;
    }
    this.doc = doc;
    return true;
  }

  private readMeta(): void {
    if (this.metaRead) return;
    this.metaRead = true;
    const doc = this.doc;
    const meta = doc !== null ? doc.get("meta") : null;
    if (meta === null || !meta.isObject) return;
    this.finalUrlValue = meta.getString("finalUrl");
    this.redirectsValue = <i32>meta.getInteger("redirects");
    this.elapsedMsValue = meta.getNumber("elapsedMs");
  }
}

/** The bytes of a body that is not base64: a text string's value (a view when unescaped), or the value's JSON text. */
function textBody(value: JsonValue, encoding: string): Uint8Array {
  if (encoding == "json" || value.kind != JSON_STRING) return value.raw();
  if (value.escaped) return value.bytes();
  return value.src.subarray(value.start + 1, value.end - 1);
}

/** A base64 body string decoded, or null when it is not base64. */
function base64Body(value: JsonValue): Uint8Array | null {
  if (value.escaped) {
    const text = value.bytes();
    return decodeRange(text.dataStart, text.length);
  }
  return decodeRange(value.src.dataStart + <usize>(value.start + 1), value.end - value.start - 2);
}

/**
 * What Stream.next() gives. Exactly one of three: `bytes` (the next piece of the body, at least
 * one byte: a view of the stream's buffer, valid until the next read), `error` (the stream
 * failed: its code is one of HOST_ERROR_CODES, or INVALID_REPLY), or neither, and then `done` is
 * true: the body ended.
 */
export class StreamResult {
  constructor(public bytes: Uint8Array | null, public error: HttpError | null) {}

  /** True at the end of the body (no bytes, no error). */
  get done(): bool {
    return this.bytes === null && this.error === null;
  }
}

/**
 * An open response stream. Read with next() (errors as values) or read() (errors trap) until the
 * end, then close(). When `error` is set the stream never opened; next() returns that error,
 * read() returns null and close() does nothing.
 *
 *   for (let r = s.next(); !r.done; r = s.next()) {
 *     if (r.error !== null) { report(r.error!); break; }   // a reset, an idle timeout, the cap...
 *     hash.update(r.bytes!);
 *   }
 */
export class Stream extends HeaderSet {
  status: i32 = 0;
  /** The host's handle string. */
  handle: string = "";
  error: HttpError | null = null;
  /**
   * The error that failed the body, once next() has returned it (after a host error the host has
   * freed the handle; an invalid_reply is the SDK's own). Every later next() returns it again;
   * read() returns null and readInto() 0, as at the end: check readError to tell them apart.
   */
  readError: HttpError | null = null;
  /** The start reply exactly as received. */
  raw: Uint8Array = NO_BYTES;
  /** Total body bytes read so far. */
  bytesRead: u64 = 0;
  private id: u64 = 0;
  private fast: bool = false;
  private bufferSize: i32;
  private buffer: Uint8Array | null = null;
  /** next()'s buffer: one tag byte, then up to bufferSize bytes of the body. */
  private frame: Uint8Array | null = null;
  private pending: Uint8Array | null = null;
  private pendingAt: i32 = 0;
  private ended: bool = false;
  private closed: bool = false;

  constructor(bufferSize: i32 = DEFAULT_STREAM_BUFFER) {
    super();
    this.bufferSize = bufferSize > 0 ? bufferSize : DEFAULT_STREAM_BUFFER;
  }

  /** True once read(), readInto() or next() has reached the end of the body. */
  get done(): bool {
    return this.ended;
  }

  /**
   * The next piece of the body, the end, or the error that failed the stream, as a value
   * (http_stream_next): a timeout, a reset or the body cap is `result.error` (codes `timeout`
   * with phase `idle`, `network`, `too_large`, ...), and the capsule goes on. After the end, next()
   * returns the end again; after an error, the same error (`readError`). After close(), next()
   * is `invalid_request` without asking the host (the handle is no longer open). The bytes live in the
   * stream's reusable buffer until the next read (copy them with slice() to keep them).
   */
  next(): StreamResult {
    const notOpened = this.error;
    if (notOpened !== null) return new StreamResult(null, notOpened);
    const failed = this.readError;
    if (failed !== null) return new StreamResult(null, failed);
    if (this.ended) return new StreamResult(null, null);
    if (this.closed) return this.failWith(new HttpError("invalid_request", "the stream is closed"));
    if (!this.fast) return this.failWith(badReply("the handle " + this.handle + " is not a decimal number"));
    let buf = this.frame;
    if (buf === null) {
      buf = new Uint8Array(this.bufferSize + 1);
      this.frame = buf;
    }
    const off = http_stream_next(this.id, <u64>this.bufferSize);
    const n = length(off);
    if (n == 0) return this.failWith(badReply("an empty http_stream_next reply"));
    let reply: Uint8Array;
    if (n <= <u64>buf.length) {
      block_to_mem(off, <u64>buf.dataStart, n);
      reply = buf.subarray(0, <i32>n);
    } else {
      reply = fromBlock(off); // an error reply longer than the buffer
    }
    free(off);
    return this.nextOf(reply);
  }

  /** The StreamResult of one http_stream_next reply (tag byte, then what it says). */
  private nextOf(reply: Uint8Array): StreamResult {
    const tag = unchecked(reply[0]);
    if (tag == STREAM_DATA && reply.length > 1) {
      this.bytesRead += <u64>(reply.length - 1);
      return new StreamResult(reply.subarray(1), null);
    }
    if (tag == STREAM_END && reply.length == 1) {
      this.ended = true;
      return new StreamResult(null, null);
    }
    if (tag != STREAM_ERROR) return this.failWith(badReply("an http_stream_next reply with tag " + tag.toString()));
    const parsed = readReply(reply.subarray(1));
    const error = parsed.error;
    return this.failWith(error !== null ? error : badReply("an http_stream_next error reply without an error"));
  }

  private failWith(error: HttpError): StreamResult {
    this.readError = error;
    return new StreamResult(null, error);
  }

  /**
   * The next piece of the body, or null at the end. The bytes live in the stream's reusable
   * buffer: they are valid until the next read() (copy them with slice() to keep them).
   * A read error (timeout, reset, body cap) makes the host fail the whole call: use next() to
   * get it as a value instead. After next() has returned an error, read() returns null as at the
   * end (readAll() then returns what was read before it): check readError.
   */
  read(): Uint8Array | null {
    if (this.error !== null || this.readError !== null || this.ended || this.closed) return null;
    if (this.fast) {
      let buf = this.buffer;
      if (buf === null) {
        buf = new Uint8Array(this.bufferSize);
        this.buffer = buf;
      }
      const n = <i32>http_stream_read_into(this.id, <u64>buf.dataStart, <u64>buf.length);
      if (n <= 0) {
        this.ended = true;
        return null;
      }
      this.bytesRead += <u64>n;
      return buf.subarray(0, n);
    }
    const chunk = this.readChunk();
    if (chunk === null) return null;
    this.bytesRead += <u64>chunk.length;
    return chunk;
  }

  /** Reads up to dest.length bytes into `dest`; returns the count, 0 at the end. */
  readInto(dest: Uint8Array): i32 {
    if (this.error !== null || this.readError !== null || this.ended || this.closed || dest.length == 0) return 0;
    if (this.fast) {
      const n = <i32>http_stream_read_into(this.id, <u64>dest.dataStart, <u64>dest.length);
      if (n <= 0) {
        this.ended = true;
        return 0;
      }
      this.bytesRead += <u64>n;
      return n;
    }
    let pending = this.pending;
    if (pending === null) {
      pending = this.readChunk();
      if (pending === null) return 0;
      this.pending = pending;
      this.pendingAt = 0;
    }
    let n = pending.length - this.pendingAt;
    if (n > dest.length) n = dest.length;
    memory.copy(dest.dataStart, pending.dataStart + <usize>this.pendingAt, <usize>n);
    this.pendingAt += n;
    if (this.pendingAt >= pending.length) this.pending = null;
    this.bytesRead += <u64>n;
    return n;
  }

  /** Reads the rest of the body into one Uint8Array (mind the memory: prefer read() for big bodies). */
  readAll(): Uint8Array {
    const out = new ByteBuffer(this.bufferSize);
    while (true) {
      const chunk = this.read();
      if (chunk === null) break;
      out.bytes(chunk);
    }
    return out.toBytes();
  }

  /** Closes the stream (idempotent). Call it even after the end, to free the host's slot early. */
  close(): void {
    if (this.error !== null || this.closed) return;
    this.closed = true;
    this.pending = null;
    this.buffer = null;
    this.frame = null;
    const b = stringToBlock(this.handle);
    http_stream_close(b);
    free(b);
  }

  // The portable path (http_stream_read), used when the handle is not a plain decimal number.
  private readChunk(): Uint8Array | null {
    const h = stringToBlock(this.handle);
    const off = http_stream_read(h);
    free(h);
    if (length(off) == 0) {
      free(off);
      this.ended = true;
      return null;
    }
    return takeBlock(off);
  }

  /** Sets the handle and picks the fast path when the handle is a decimal number. */
  setHandle(handle: string): void {
    this.handle = handle;
    const n = handle.length;
    let id: u64 = 0;
    let ok = n > 0 && n <= 19;
    for (let i = 0; ok && i < n; i++) {
      const d = <u32>handle.charCodeAt(i) - 48;
      if (d > 9) ok = false;
      else id = id * 10 + <u64>d;
    }
    this.fast = ok;
    this.id = id;
  }
}

// ---- calls ----

/** Sends a request and buffers the response. */
export function request(req: HttpRequest): HttpResponse {
  return requestJson(req.toJson());
}

/** Sends an already-encoded wire request JSON. */
export function requestJson(json: Uint8Array): HttpResponse {
  const b = toBlock(json);
  const r = requestBlock(b);
  free(b);
  return r;
}

/** Sends the wire request JSON held in an Extism block (e.g. the call's input, unchanged). */
export function requestBlock(offset: u64): HttpResponse {
  return parseResponse(takeBlock(http_request(offset)));
}

/** Opens a response stream. Check `.error` before reading. */
export function stream(req: HttpRequest, bufferSize: i32 = DEFAULT_STREAM_BUFFER): Stream {
  return streamJson(req.toJson(), bufferSize);
}

/** Opens a response stream from an already-encoded wire request JSON. */
export function streamJson(json: Uint8Array, bufferSize: i32 = DEFAULT_STREAM_BUFFER): Stream {
  const b = toBlock(json);
  const s = streamBlock(b, bufferSize);
  free(b);
  return s;
}

/** Opens a response stream from the wire request JSON held in an Extism block. */
export function streamBlock(offset: u64, bufferSize: i32 = DEFAULT_STREAM_BUFFER): Stream {
  return parseStreamStart(takeBlock(http_stream_start(offset)), bufferSize);
}

// ---- reply parsing ----

function badReply(why: string): HttpError {
  return new HttpError(INVALID_REPLY, "the host's reply could not be read: " + why);
}

/** The error of an `{"error":{...}}` reply, or null when the reply is not one. */
export function replyError(doc: JsonValue): HttpError | null {
  const e = doc.get("error");
  if (e === null) return null;
  if (!e.isObject) return badReply("error is not an object");
  const phase = e.get("phase");
  return new HttpError(
    e.getString("code", INVALID_REPLY),
    e.getString("message"),
    phase !== null && phase.kind == JSON_STRING ? phase.str() : null,
    e.getInteger("retryAfterMs", -1),
  );
}

/** The reply parsed (validated whole; members made on demand), or the error it stands for. */
class Reply {
  doc: JsonValue | null = null;
  error: HttpError | null = null;
}

function readReply(raw: Uint8Array): Reply {
  const r = new Reply();
  const doc = parseJson(raw);
  if (doc === null) r.error = badReply(jsonError());
  else if (!doc.isObject) r.error = badReply("not an object");
  else r.error = replyError(doc);
  if (r.error === null) r.doc = doc;
  return r;
}

const TEXT = "text";
const BASE64 = "base64";
const JSON_ENCODING = "json";

/** The reply's bodyEncoding ("text" when absent or not a string); the known ones without decoding. */
function bodyEncodingOf(doc: JsonValue): string {
  const v = doc.get("bodyEncoding");
  if (v === null || !v.isString || v.equalsString(TEXT)) return TEXT;
  if (v.equalsString(BASE64)) return BASE64;
  if (v.equalsString(JSON_ENCODING)) return JSON_ENCODING;
  return v.str();
}

/**
 * Reads an http_request reply. The whole reply is checked to be JSON; then only status, the body
 * (a base64 one is decoded at once, a text one on first use) and the members the accessors
 * ask for are read.
 */
export function parseResponse(raw: Uint8Array): HttpResponse {
  const r = new HttpResponse();
  r.raw = raw;
  const reply = readReply(raw);
  const doc = reply.doc;
  if (doc === null) {
    r.error = reply.error;
    return r;
  }
  const status = statusOf(doc);
  if (status < 0) {
    r.error = badReply("no status");
    return r;
  }
  r.status = status;
  r.readHeaders(doc);
  r.bodyEncoding = bodyEncodingOf(doc);
  if (!r.readBody(doc)) {
    r.error = badReply("body is not base64");
  }
  return r;
}

/** Reads an http_stream_start reply (checked whole, as parseResponse does). */
/** A reply's `status`: an integer from 0 to 999 written as one (not 2e2 or 200.5), else -1. */
function statusOf(doc: JsonValue): i32 {
  const status = doc.get("status");
  if (status === null || !status.isNumber || !status.isInteger) return -1;
  const value = status.i64();
  return value >= 0 && value <= 999 ? <i32>value : -1;
}

export function parseStreamStart(raw: Uint8Array, bufferSize: i32 = DEFAULT_STREAM_BUFFER): Stream {
  const s = new Stream(bufferSize);
  s.raw = raw;
  const reply = readReply(raw);
  const doc = reply.doc;
  if (doc === null) {
    s.error = reply.error;
    return s;
  }
  const handle = doc.get("handle");
  if (handle === null || !handle.isString) {
    s.error = badReply("no handle");
    return s;
  }
  const status = statusOf(doc);
  if (status < 0) {
    s.error = badReply("no status");
    return s;
  }
  s.setHandle(handle.str());
  s.status = status;
  s.readHeaders(doc);
  return s;
}
