// An echoing loopback upstream (like httpbin): it repeats the request's headers, URL and body in its answers, for secret-leak tests.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gzipSync } from 'node:zlib'
import { readBody, startServer, type TestServer } from './servers.js'

/** Request headers the echo also repeats in response headers (`x-echo-<name>`) and in a redirect's Location. */
export const ECHOED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'] as const

/** What every answer says about the request, as JSON (httpbin's `/anything`, `/bearer` and `/cookies` in one). */
export interface Echo {
  method: string
  /** The absolute URL, from the Host header and the request target. */
  url: string
  /** The request target as received (path and query). */
  path: string
  headers: Record<string, string>
  /** Names and values in the order received. */
  rawHeaders: Array<[string, string]>
  /** For `authorization` and `proxy-authorization`: the credential after the scheme (httpbin's `/bearer` `token`). */
  credentials: Record<string, string>
  /** Each cookie of the `cookie` header by name (httpbin's `/cookies`). */
  cookies: Record<string, string>
  body: string
}

export interface EchoServer extends TestServer {
  /** The bytes of the last body written, and where its chunks ended (for `mode=stream`). */
  readonly last: { body: Buffer; chunkEnds: number[] }
}

function credentialOf(value: string): string {
  return value.trim().replace(/^\S+\s+/, '')
}

function cookiesOf(value: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {}
  for (const pair of (value ?? '').split(';')) {
    const eq = pair.indexOf('=')
    if (eq > 0) cookies[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim()
  }
  return cookies
}

/** The echo of a request whose body was read. */
export function echoOf(req: IncomingMessage, body: Buffer): Echo {
  const rawHeaders: Array<[string, string]> = []
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) rawHeaders.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!])
  const credentials: Record<string, string> = {}
  for (const name of ['authorization', 'proxy-authorization'] as const) {
    const value = req.headers[name]
    if (value !== undefined) credentials[name] = credentialOf(value)
  }
  return {
    method: req.method!,
    url: `http://${req.headers.host}${req.url}`,
    path: req.url!,
    headers: req.headers as Record<string, string>,
    rawHeaders,
    credentials,
    cookies: cookiesOf(req.headers.cookie),
    body: body.toString('utf8'),
  }
}

/** Response headers that repeat the request: `x-echo-<name>`, the URL, the credential, each cookie as a set-cookie. */
function echoHeaders(req: IncomingMessage, echo: Echo): Array<[string, string]> {
  const headers: Array<[string, string]> = [['x-echo-url', req.url!]]
  for (const name of ECHOED_HEADERS) {
    const value = req.headers[name]
    if (typeof value === 'string') headers.push([`x-echo-${name}`, value])
  }
  for (const [name, credential] of Object.entries(echo.credentials)) headers.push([`x-echo-${name}-credential`, credential])
  for (const [name, value] of Object.entries(echo.cookies)) headers.push(['set-cookie', `${name}=${value}; Path=/`])
  if (echo.body !== '' && echo.body.length <= 512 && !/[^\x20-\x7e]/.test(echo.body)) headers.push(['x-echo-body', echo.body])
  return headers
}

/** A Location that carries every echoed header, the request target and the body: percent-encoded in the path, form-encoded in the query. */
function echoLocation(req: IncomingMessage, echo: Echo): string {
  const query = new URLSearchParams({ url: req.url!, body: echo.body })
  for (const name of ECHOED_HEADERS) {
    const value = req.headers[name]
    if (typeof value === 'string') query.set(name, value)
  }
  const auth = req.headers.authorization ?? req.headers['x-api-key'] ?? ''
  return `/landing/${encodeURIComponent(String(auth))}?${query}`
}

/**
 * Where a body is cut for `split=k`: `k` bytes into every occurrence of every needle at least `k`
 * long, so a needle is split at offset k (0: just before it, its length: just after it).
 */
export function splitPoints(body: Buffer, needles: readonly string[], k: number): number[] {
  const points = new Set<number>()
  for (const needle of needles) {
    const bytes = Buffer.from(needle, 'utf8')
    if (k > bytes.length) continue
    for (let at = body.indexOf(bytes); at >= 0; at = body.indexOf(bytes, at + 1)) points.add(at + k)
  }
  return [...points].filter((p) => p > 0 && p < body.length).sort((a, b) => a - b)
}

const asciiEscape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`

/** Writes `chunk` and waits until it was flushed to the socket. */
function written(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => res.write(chunk, (error) => (error ? reject(error) : resolve())))
}

/**
 * Starts the echo upstream on 127.0.0.1. The query's `mode` picks the answer:
 * - `echo` (default): 200, the Echo as JSON;
 * - `redirect`: `status` (302) with `location` when given (even empty), else a Location made of the
 *   echoed headers, URL and body; only while the request's `x-hop` header is absent or `0`, else
 *   `loop=1` keeps redirecting, otherwise the echo;
 * - `error`: 500, an HTML page quoting the URL, the echoed headers and the body;
 * - `stream`: the echo, chunked, cut at offset `split` of every needle in `splitOn`; each chunk is
 *   written, flushed and awaited before the next (`x-chunk-ends` in the head says where they end);
 * - `gzip`: the echo gzip-encoded (content-encoding: gzip) whatever the request's accept-encoding,
 *   as httpbin's `/gzip` does; `gzip-repeated`: after a first `content-encoding: identity`;
 *   `gzip-transfer`: as `transfer-encoding: gzip, chunked`.
 * With `json=ascii`, JSON bodies escape non-ASCII characters (`\u00e4`). Every answer also
 * carries the echo headers (`x-echo-*`, a set-cookie per cookie).
 */
export async function startEchoServer(options: { splitOn?: readonly string[] } = {}): Promise<EchoServer> {
  const last = { body: Buffer.alloc(0), chunkEnds: [] as number[] }
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req)
    const url = new URL(req.url!, 'http://echo')
    const echo = echoOf(req, body)
    for (const [name, value] of echoHeaders(req, echo)) res.appendHeader(name, value)
    const mode = url.searchParams.get('mode') ?? 'echo'
    // json=ascii: non-ASCII characters as \u escapes, as Python's json.dumps writes them.
    const text = JSON.stringify(echo)
    const json = Buffer.from(url.searchParams.get('json') === 'ascii' ? text.replace(/[\u0080-\uffff]/g, asciiEscape) : text, 'utf8')
    const firstHop = (req.headers['x-hop'] ?? '0') === '0'
    if (mode === 'redirect' && (firstHop || url.searchParams.get('loop') === '1')) {
      const location = url.searchParams.get('location')
      res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: location ?? echoLocation(req, echo) })
      return void res.end()
    }
    if (mode === 'error') {
      const quoted = ECHOED_HEADERS.filter((name) => req.headers[name] !== undefined).map((name) => `<li>${name}: ${req.headers[name]}</li>`)
      const page = `<html><body><h1>500 Internal Server Error</h1><p>${req.method} ${echo.url} failed</p><ul>${quoted.join('')}</ul><pre>${echo.body}</pre></body></html>`
      last.body = Buffer.from(page, 'utf8')
      res.writeHead(500, { 'content-type': 'text/html; charset=utf-8' })
      return void res.end(last.body)
    }
    if (mode === 'gzip' || mode === 'gzip-repeated' || mode === 'gzip-transfer') {
      last.body = json
      // As httpbin /gzip; or hidden behind a first identity header; or as a transfer coding.
      const codings: Array<[string, string]> =
        mode === 'gzip' ? [['content-encoding', 'gzip']] : mode === 'gzip-repeated' ? [['content-encoding', 'identity'], ['content-encoding', 'gzip']] : [['transfer-encoding', 'gzip, chunked']]
      res.writeHead(200, [['content-type', 'application/json'], ...codings].flat())
      return void res.end(gzipSync(json))
    }
    if (mode === 'stream') {
      const points = splitPoints(json, options.splitOn ?? [], Number(url.searchParams.get('split') ?? 0))
      const ends = [...points, json.length]
      last.body = json
      last.chunkEnds = ends
      res.writeHead(200, { 'content-type': 'application/json', 'x-chunk-ends': ends.join(',') })
      let from = 0
      for (const end of ends) {
        await written(res, json.subarray(from, end))
        from = end
      }
      return void res.end()
    }
    last.body = json
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(json)
  }
  const server = await startServer(handler)
  return Object.assign(server, { last })
}
