// report: an example capsule. It pages through a JSON API, counts the users, then streams a
// download and summarises it.
//
// Input:  {"api":"https://demo.test:PORT/api/users","download":"https://demo.test:PORT/download"}
// Output: {"users":N,"pages":N,"download":{"status":N,"bytes":N,"fnv1a32":"..."}}
//     or: {"error":{"code","message","step"}}  (a host error's code, or bad_input/bad_status/bad_json)

import {
  Fnv1a32,
  HttpError,
  HttpRequest,
  JsonWriter,
  inputString,
  output,
  parseJsonString,
  request,
  stream,
} from "../sdk";

const MAX_PAGES: i64 = 10000;

function failWith(code: string, message: string, step: string): i32 {
  const w = new JsonWriter();
  w.beginObject().key("error").beginObject()
    .key("code").string(code)
    .key("message").string(message)
    .key("step").string(step)
    .endObject().endObject();
  output(w.toBytes());
  return 0;
}

function hostError(e: HttpError, step: string): i32 {
  return failWith(e.code, e.message, step);
}

export function summarise(): i32 {
  const args = parseJsonString(inputString());
  if (args === null || !args.isObject) {
    return failWith("bad_input", 'input must be {"api":"...","download":"..."}', "input");
  }
  const api = args.getString("api");
  const download = args.getString("download");
  if (api.length == 0 || download.length == 0) {
    return failWith("bad_input", 'input must be {"api":"...","download":"..."}', "input");
  }
  const sep = api.includes("?") ? "&" : "?";

  // 1. Page through the API until "next" is null.
  let users: i64 = 0;
  let pages: i64 = 0;
  let page: i64 = 1;
  while (true) {
    const url = api + sep + "page=" + page.toString();
    const step = "GET " + url;
    const res = request(HttpRequest.get(url).header("accept", "application/json"));
    const err = res.error;
    if (err !== null) return hostError(err, step);
    if (!res.ok) return failWith("bad_status", "answered " + res.status.toString(), step);
    const doc = res.json();
    if (doc === null || !doc.isObject) return failWith("bad_json", "the page is not a JSON object", step);
    const list = doc.get("users");
    if (list === null || !list.isArray) return failWith("bad_json", 'the page has no "users" array', step);
    users += list.size;
    pages++;
    const next = doc.get("next");
    if (next === null || next.isNull) break;
    if (!next.isNumber || !next.isInteger || next.integer < 1) {
      return failWith("bad_json", '"next" must be a page number or null', step);
    }
    if (pages >= MAX_PAGES) return failWith("bad_json", "more than " + MAX_PAGES.toString() + " pages", step);
    page = next.integer;
  }

  // 2. Stream the download (fast path, one reusable buffer), hashing as it arrives.
  const step = "GET " + download;
  const s = stream(HttpRequest.get(download));
  const err = s.error;
  if (err !== null) return hostError(err, step);
  if (s.status < 200 || s.status >= 300) {
    s.close();
    return failWith("bad_status", "answered " + s.status.toString(), step);
  }
  const hash = new Fnv1a32();
  while (true) {
    const chunk = s.read();
    if (chunk === null) break;
    hash.update(chunk);
  }
  s.close();

  const w = new JsonWriter();
  w.beginObject()
    .key("users").int(users)
    .key("pages").int(pages)
    .key("download").beginObject()
      .key("status").int(s.status)
      .key("bytes").uint(s.bytesRead)
      .key("fnv1a32").string(hash.hex())
    .endObject()
    .endObject();
  output(w.toBytes());
  return 0;
}
