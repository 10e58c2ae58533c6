// extism-http: a plugin written as an Extism author would, calling the kernel's own HTTP
// (`extism:host/env` http_request / http_status_code / http_headers) through a small `Http.request`
// like the other PDKs' (as-pdk 1.0 imports http_request but wraps none of the three).

import { Host, Memory } from "@extism/as-pdk";
import { http_request as kernel_http_request, length, store_u8 } from "@extism/as-pdk/lib/env";
// The abort handler capsules/asconfig.json names: an abort becomes an Extism error, not a bare trap.
import "../sdk/abort";
import { http_stream_close, http_stream_read, http_stream_start } from "../sdk/env";
import { JsonWriter, parseJson } from "../sdk/json";


@external("extism:host/env", "http_status_code")
declare function http_status_code(): i32;

@external("extism:host/env", "http_headers")
declare function http_headers(): u64;

/** Extism's request: `{ "url", "method", "headers" }`, the body beside it. */
class HttpRequest {
  url: string = "";
  method: string = "GET";
  /** The headers object's JSON text, or null for none. */
  headers: Uint8Array | null = null;

  toJson(): Uint8Array {
    const w = new JsonWriter(64 + this.url.length);
    w.beginObject().key("url").string(this.url).key("method").string(this.method);
    const headers = this.headers;
    if (headers !== null) w.key("headers").raw(headers);
    return w.endObject().toBytes();
  }
}

class HttpResponse {
  constructor(public status: i32, public body: Uint8Array, public headers: Uint8Array) {}
}

function blockBytes(offset: u64): Uint8Array {
  if (offset == 0) return new Uint8Array(0);
  return new Memory(offset, length(offset)).toUint8Array();
}

class Http {
  /** Sends the request; a refused or failed request ends the call with the host's error. */
  static request(req: HttpRequest, body: Uint8Array | null): HttpResponse {
    const meta = Memory.allocateBytes(req.toJson());
    let bodyOffset: u64 = 0;
    if (body !== null) bodyOffset = Memory.allocateBytes(body).offset;
    const offset = kernel_http_request(meta.offset, bodyOffset);
    meta.free();
    const bytes = blockBytes(offset);
    return new HttpResponse(http_status_code(), bytes, blockBytes(http_headers()));
  }
}

/** Input as the Extism test plugins take it: `{ "url", "method"?, "headers"?, "data"? }`. */
function send(): HttpResponse {
  const input = parseJson(Host.input());
  if (input === null || !input.isObject) {
    Host.outputString('{"error":"the input must be a JSON object with a url"}');
    return new HttpResponse(0, new Uint8Array(0), new Uint8Array(0));
  }
  const req = new HttpRequest();
  req.url = input.getString("url");
  const method = input.get("method");
  if (method !== null && method.isString) req.method = method.str();
  const headers = input.get("headers");
  if (headers !== null && headers.isObject) req.headers = headers.raw();
  const data = input.get("data");
  return Http.request(req, data !== null && data.isString ? Uint8Array.wrap(String.UTF8.encode(data.str())) : null);
}

/** Returns the response body (like http.wasm). */
export function http_request(): i32 {
  Host.output(send().body);
  return 0;
}

/** Returns the response headers object (like http_headers.wasm). */
export function http_get(): i32 {
  Host.output(send().headers);
  return 0;
}

/** Returns `{ "status", "headers", "body" }` in one answer. */
export function http_response(): i32 {
  const res = send();
  const w = new JsonWriter(64 + res.body.length + res.headers.length);
  w.beginObject().key("status").int(res.status).key("headers").raw(res.headers).key("body").stringBytes(res.body).endObject();
  Host.output(w.toBytes());
  return 0;
}

/** Reads http_status_code and http_headers without any request (what a fresh instance sees). */
export function before_any(): i32 {
  const w = new JsonWriter(64);
  w.beginObject().key("status").int(http_status_code()).key("headers").raw(blockBytes(http_headers())).endObject();
  Host.output(w.toBytes());
  return 0;
}

/**
 * Writes "X" over every byte of the response's body block, then sends the same request again and
 * returns the second body: a host that handed over a buffer it still holds would show the X's.
 */
export function scribble_twice(): i32 {
  const input = parseJson(Host.input());
  if (input === null || !input.isObject) return 1;
  const req = new HttpRequest();
  req.url = input.getString("url");
  const meta = Memory.allocateBytes(req.toJson());
  const offset = kernel_http_request(meta.offset, 0);
  const size = length(offset);
  for (let i: u64 = 0; i < size; i++) store_u8(offset + i, 0x58);
  Host.output(Http.request(req, null).body);
  return 0;
}

/** Opens a capsule-host stream, keeps a copy of its first chunk, writes "X" over the chunk's block, closes it. */
function scribbledChunk(url: string): Uint8Array {
  const w = new JsonWriter(32 + url.length);
  const meta = Memory.allocateBytes(w.beginObject().key("url").string(url).endObject().toBytes());
  const head = parseJson(blockBytes(http_stream_start(meta.offset)));
  if (head === null || !head.isObject) return new Uint8Array(0);
  const handle = Memory.allocateString(head.getString("handle"));
  const chunk = http_stream_read(handle.offset);
  const bytes = blockBytes(chunk);
  const size = length(chunk);
  for (let i: u64 = 0; i < size; i++) store_u8(chunk + i, 0x58);
  http_stream_close(handle.offset);
  return bytes;
}

/** The same through capsule-host's stream functions: returns the second stream's first chunk. */
export function stream_scribble_twice(): i32 {
  const input = parseJson(Host.input());
  if (input === null || !input.isObject) return 1;
  const url = input.getString("url");
  scribbledChunk(url);
  Host.output(scribbledChunk(url));
  return 0;
}
