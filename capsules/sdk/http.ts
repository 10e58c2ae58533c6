// Typed HTTP for capsules: request() for buffered exchanges, stream() for large bodies.
// AssemblyScript has no exceptions, so failures are values: check `.error` first.

import {
  free,
  http_request,
  http_stream_close,
  http_stream_read,
  http_stream_read_into,
  http_stream_start,
  length,
} from "./env";
import { ByteBuffer } from "./bytes";
import { decodeRange } from "./base64";
import { JSON_ARRAY, JSON_OBJECT, JSON_STRING, JsonValue, JsonWriter, jsonError, parseJson } from "./json";
import { stringToBlock, takeBlock, toBlock } from "./memory";

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
  "internal",
];

export class Header {
  constructor(public name: string, public value: string) {}
}

/**
 * A failed request. `code` is one of the host's codes (HOST_ERROR_CODES) or the SDK's own
 * `invalid_reply` (INVALID_REPLY).
 * `phase` is set for timeouts (connect, first_byte, idle, total, or host: a gate, the policy or
 * middleware on the host did not answer within its deadline).
 */
export class HttpError {
  constructor(public code: string, public message: string, public phase: string | null = null) {}

  /** `{"code":...,"message":...[,"phase":...]}` */
  toJson(): string {
    const w = new JsonWriter();
    this.write(w);
    return w.toString();
  }

  write(w: JsonWriter): void {
    w.beginObject().key("code").string(this.code).key("message").string(this.message);
    const phase = this.phase;
    if (phase !== null) w.key("phase").string(phase);
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

/** Header accessors shared by responses and streams. */
export class HeaderSet {
  /** One entry per name (lower-case), repeated values joined with ", ". */
  headers: Array<Header> = new Array<Header>();
  /** Every header as received, in order. */
  rawHeaders: Array<Header> = new Array<Header>();

  /** The value of header `name` (case-insensitive), or null. */
  header(name: string): string | null {
    const lower = name.toLowerCase();
    for (let i = 0; i < this.headers.length; i++) {
      const h = unchecked(this.headers[i]);
      if (h.name == lower || h.name.toLowerCase() == lower) return h.value;
    }
    return null;
  }

  /** Every value of header `name` (case-insensitive), in order, from rawHeaders. */
  headerValues(name: string): Array<string> {
    const lower = name.toLowerCase();
    const out = new Array<string>();
    for (let i = 0; i < this.rawHeaders.length; i++) {
      const h = unchecked(this.rawHeaders[i]);
      if (h.name == lower || h.name.toLowerCase() == lower) out.push(h.value);
    }
    return out;
  }
}

/** A buffered response. When `error` is set, the other fields are empty. */
export class HttpResponse extends HeaderSet {
  status: i32 = 0;
  /** The body bytes, decoded from the wire (text as UTF-8, base64 decoded, json as its JSON text). */
  body: Uint8Array = new Uint8Array(0);
  /** "text", "base64" or "json" (a middleware answered with a JSON value; `body` is its JSON text). */
  bodyEncoding: string = "";
  finalUrl: string = "";
  redirects: i32 = 0;
  elapsedMs: f64 = 0;
  error: HttpError | null = null;
  /** The host's reply exactly as received. */
  raw: Uint8Array = new Uint8Array(0);

  /** No error and a 2xx status. */
  get ok(): bool {
    return this.error === null && this.status >= 200 && this.status < 300;
  }

  /** The body as UTF-8 text. */
  text(): string {
    return String.UTF8.decodeUnsafe(this.body.dataStart, <usize>this.body.length);
  }

  /** The body parsed as JSON, or null (see jsonError()). */
  json(): JsonValue | null {
    return parseJson(this.body);
  }
}

/**
 * An open response stream. Read with read() until it returns null, then close().
 * When `error` is set the stream never opened; read() returns null and close() does nothing.
 */
export class Stream extends HeaderSet {
  status: i32 = 0;
  /** The host's handle string. */
  handle: string = "";
  error: HttpError | null = null;
  /** The start reply exactly as received. */
  raw: Uint8Array = new Uint8Array(0);
  /** Total body bytes read so far. */
  bytesRead: u64 = 0;
  private id: u64 = 0;
  private fast: bool = false;
  private bufferSize: i32;
  private buffer: Uint8Array | null = null;
  private pending: Uint8Array | null = null;
  private pendingAt: i32 = 0;
  private ended: bool = false;
  private closed: bool = false;

  constructor(bufferSize: i32 = DEFAULT_STREAM_BUFFER) {
    super();
    this.bufferSize = bufferSize > 0 ? bufferSize : DEFAULT_STREAM_BUFFER;
  }

  /** True once read() has returned null because the body ended. */
  get done(): bool {
    return this.ended;
  }

  /**
   * The next piece of the body, or null at the end. The bytes live in the stream's reusable
   * buffer: they are valid until the next read() (copy them with slice() to keep them).
   * A read error (timeout, reset, body cap) makes the host fail the whole call.
   */
  read(): Uint8Array | null {
    if (this.error !== null || this.ended || this.closed) return null;
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
    if (this.error !== null || this.ended || this.closed || dest.length == 0) return 0;
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
  );
}

function readHeaders(doc: JsonValue, into: HeaderSet): void {
  const h = doc.get("headers");
  if (h !== null && h.kind == JSON_OBJECT) {
    for (let i = 0; i < h.size; i++) {
      into.headers.push(new Header(h.keyAt(i)!, h.at(i)!.str()));
    }
  }
  const raw = doc.get("rawHeaders");
  if (raw !== null && raw.kind == JSON_ARRAY) {
    for (let i = 0; i < raw.size; i++) {
      const pair = raw.at(i)!;
      const name = pair.at(0);
      const value = pair.at(1);
      if (name !== null && value !== null) into.rawHeaders.push(new Header(name.str(), value.str()));
    }
  }
}

/** Reads an http_request reply. */
export function parseResponse(raw: Uint8Array): HttpResponse {
  const r = new HttpResponse();
  r.raw = raw;
  const doc = parseJson(raw);
  if (doc === null) {
    r.error = badReply(jsonError());
    return r;
  }
  if (!doc.isObject) {
    r.error = badReply("not an object");
    return r;
  }
  const err = replyError(doc);
  if (err !== null) {
    r.error = err;
    return r;
  }
  const status = doc.get("status");
  if (status === null || !status.isNumber) {
    r.error = badReply("no status");
    return r;
  }
  r.status = <i32>status.i64();
  readHeaders(doc, r);
  r.bodyEncoding = doc.getString("bodyEncoding", "text");
  const body = doc.get("body");
  if (body !== null) {
    if (r.bodyEncoding == "json") {
      r.body = body.raw().slice();
    } else if (body.kind != JSON_STRING) {
      r.body = body.raw().slice();
    } else if (r.bodyEncoding == "base64") {
      let decoded: Uint8Array | null;
      if (body.escaped) {
        const text = body.bytes();
        decoded = decodeRange(text.dataStart, text.length);
      } else {
        decoded = decodeRange(raw.dataStart + <usize>(body.start + 1), body.end - body.start - 2);
      }
      if (decoded === null) {
        r.error = badReply("body is not base64");
        return r;
      }
      r.body = decoded;
    } else {
      r.body = body.bytes();
    }
  }
  const meta = doc.get("meta");
  if (meta !== null && meta.isObject) {
    r.finalUrl = meta.getString("finalUrl");
    r.redirects = <i32>meta.getInteger("redirects");
    r.elapsedMs = meta.getNumber("elapsedMs");
  }
  return r;
}

/** Reads an http_stream_start reply. */
export function parseStreamStart(raw: Uint8Array, bufferSize: i32 = DEFAULT_STREAM_BUFFER): Stream {
  const s = new Stream(bufferSize);
  s.raw = raw;
  const doc = parseJson(raw);
  if (doc === null) {
    s.error = badReply(jsonError());
    return s;
  }
  if (!doc.isObject) {
    s.error = badReply("not an object");
    return s;
  }
  const err = replyError(doc);
  if (err !== null) {
    s.error = err;
    return s;
  }
  const handle = doc.get("handle");
  if (handle === null || !handle.isString) {
    s.error = badReply("no handle");
    return s;
  }
  s.setHandle(handle.str());
  s.status = <i32>doc.getInteger("status");
  readHeaders(doc, s);
  return s;
}
