// startUpstreams: one real loopback HTTP(S) server per mock upstream, answering its scripted routes and recording what it received.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { makeTestCertificates } from './certs.js'
import { parseMocks, type MockDescription, type MockRoute, type MockUpstream } from './mocks.js'

/** The loopback address every upstream listens on (and the only one the test host exempts). */
export const UPSTREAM_ADDRESS = '127.0.0.1'

/** One request an upstream received, recorded after its body was read and before it was answered. */
export interface ReceivedRequest {
  /** The method as sent (`GET`). */
  readonly method: string
  /** The request target: path and query, as sent (`/items?page=2`). */
  readonly path: string
  /** Header names in lower case, in an object without a prototype; a repeated header's values joined with `", "`. */
  readonly headers: Readonly<Record<string, string>>
  /** Every header as sent, in order, names as written. */
  readonly rawHeaders: ReadonlyArray<readonly [string, string]>
  /** The body as text (UTF-8; invalid bytes become U+FFFD). */
  readonly body: string
  /** The body's bytes. */
  readonly bodyBytes: Uint8Array
  /** The index of the route that answered in the upstream's `routes`, or undefined when none matched (404). */
  readonly route: number | undefined
}

/** A running upstream. */
export interface Upstream {
  /** Its host name (`api.test`). */
  readonly name: string
  /** True when it serves HTTPS. */
  readonly tls: boolean
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number
  /** `http://api.test:<port>` (https when `tls`). */
  readonly origin: string
  /** `origin` + `path` (a path without a leading `/` gets one). */
  url(path?: string): string
  /** What it received, oldest first (a live list: it grows as requests arrive). */
  readonly received: readonly ReceivedRequest[]
  /**
   * Resolves once `count` requests were received in all (at once when they already were), so a
   * test can wait for a request that is held by a delay; rejects when the upstreams close first.
   */
  whenReceived(count: number): Promise<void>
  /** True while its server listens (false once the upstreams have closed). */
  readonly listening: boolean
}

/** The upstreams of one description, started. */
export interface Upstreams {
  /** The upstream names, in the description's order. */
  readonly names: readonly string[]
  /** The upstream called `name`; a TypeError naming the known ones for any other. */
  upstream(name: string): Upstream
  /** `upstream(name).url(path)`. */
  url(name: string, path?: string): string
  /** The PEM of the CA that issued the HTTPS upstreams' certificate (pass it as `tls.ca`), or undefined when none serves HTTPS. */
  readonly ca: string | undefined
  /** Stops every server, cutting open connections and pending delays; idempotent. */
  close(): Promise<void>
  /** The same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
}

/** One upstream's running state: its routes, how often each answered, what it received. */
interface UpstreamState {
  readonly name: string
  readonly routes: readonly MockRoute[]
  readonly served: number[]
  readonly received: ReceivedRequest[]
  /** Waiters of whenReceived(), each with the count it waits for. */
  readonly waiters: Set<{ readonly count: number; readonly resolve: () => void }>
  /** Aborts pending delays when the upstreams close. */
  readonly signal: AbortSignal
}

const withSlash = (path: string) => (path.startsWith('/') ? path : `/${path}`)

function pathMatches(pattern: string, target: string): boolean {
  const subject = pattern.includes('?') ? target : target.split('?')[0]!
  return pattern.endsWith('/*') ? subject.startsWith(pattern.slice(0, -1)) : subject === pattern
}

/** The first route that matches and has answers left (counting this one), or undefined. */
function pickRoute(state: UpstreamState, method: string, target: string): number | undefined {
  const index = state.routes.findIndex((route, i) => {
    const wanted = (route.method ?? 'GET').toUpperCase()
    if (wanted !== '*' && wanted !== method.toUpperCase()) return false
    if (!pathMatches(route.path, target)) return false
    return route.times === undefined || state.served[i]! < route.times
  })
  if (index < 0) return undefined
  state.served[index]!++
  return index
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function received(req: IncomingMessage, bytes: Buffer, route: number | undefined): ReceivedRequest {
  const rawHeaders: Array<readonly [string, string]> = []
  // No prototype: a header named `constructor` or `__proto__` is an own property like any other.
  const headers: Record<string, string> = Object.create(null)
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const [name, value] = [req.rawHeaders[i]!, req.rawHeaders[i + 1]!]
    rawHeaders.push([name, value])
    const key = name.toLowerCase()
    headers[key] = Object.hasOwn(headers, key) ? `${headers[key]}, ${value}` : value
  }
  return { method: req.method ?? '', path: req.url ?? '', headers, rawHeaders, body: bytes.toString('utf8'), bodyBytes: new Uint8Array(bytes), route }
}

/** The bytes of a route's whole body (empty for `chunks`, which are written one by one). */
function bodyBytes(route: MockRoute): Buffer {
  if (route.body !== undefined) return Buffer.from(route.body, 'utf8')
  if (route.bodyBase64 !== undefined) return Buffer.from(route.bodyBase64, 'base64')
  if (route.json !== undefined) return Buffer.from(JSON.stringify(route.json), 'utf8')
  return Buffer.alloc(0)
}

const chunkBytes = (chunk: NonNullable<MockRoute['chunks']>[number]) =>
  chunk.dataBase64 !== undefined ? Buffer.from(chunk.dataBase64, 'base64') : Buffer.from(chunk.data ?? '', 'utf8')

const pause = (ms: number | undefined, signal: AbortSignal) => (ms ? sleep(ms, undefined, { signal }) : Promise.resolve())

function written(res: ServerResponse, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => res.write(bytes, (error) => (error ? reject(error) : resolve())))
}

/** Ends the connection after what was written so far: the answer stays incomplete. */
function cut(socket: Socket): void {
  socket.end()
  socket.once('finish', () => socket.destroy())
}

function notFound(state: UpstreamState, req: IncomingMessage, res: ServerResponse): void {
  const request = `${req.method} ${req.url}`
  const body = JSON.stringify({ error: `no route of ${state.name} matches ${request}`, upstream: state.name, method: req.method, path: req.url })
  res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body)
}

/** Writes the route's status, headers and body (whole, cut in half, or chunk by chunk). */
async function answer(route: MockRoute, res: ServerResponse, signal: AbortSignal): Promise<void> {
  for (const [name, value] of Object.entries(route.headers ?? {})) res.setHeader(name, value as string | string[])
  if (route.json !== undefined && !res.hasHeader('content-type')) res.setHeader('content-type', 'application/json')
  res.statusCode = route.status ?? 200
  if (route.chunks) {
    res.flushHeaders()
    for (const chunk of route.chunks) {
      await pause(chunk.delayMs, signal)
      const bytes = chunkBytes(chunk)
      if (bytes.length > 0) await written(res, bytes)
    }
    return route.reset === 'mid-body' ? cut(res.socket!) : void res.end()
  }
  const bytes = bodyBytes(route)
  res.setHeader('content-length', bytes.length)
  if (route.reset !== 'mid-body') return void res.end(bytes)
  await written(res, bytes.subarray(0, Math.floor(bytes.length / 2)))
  cut(res.socket!)
}

async function serve(state: UpstreamState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const bytes = await readBody(req)
  const index = pickRoute(state, req.method ?? '', req.url ?? '')
  state.received.push(received(req, bytes, index))
  for (const waiter of state.waiters) if (state.received.length >= waiter.count) waiter.resolve()
  const route = index === undefined ? undefined : state.routes[index]!
  if (!route) return notFound(state, req, res)
  await pause(route.delayMs, state.signal)
  if (route.reset === 'before-headers') return void req.socket.destroy()
  await answer(route, res, state.signal)
}

/** A server that tracks its sockets, so closing it cuts open keep-alive connections too. */
function listening(state: UpstreamState, tls: { cert: string; key: string } | undefined): { server: Server; sockets: Set<Socket> } {
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    serve(state, req, res).catch(() => res.destroy())
  }
  const server = tls ? createHttpsServer(tls, listener) : createHttpServer(listener)
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return { server, sockets }
}

function whenReceived(state: UpstreamState, count: number): Promise<void> {
  if (state.received.length >= count) return Promise.resolve()
  if (state.signal.aborted) return Promise.reject(new Error(`upstream ${state.name} closed before it received ${count} requests`))
  return new Promise((resolve, reject) => {
    const onClose = () => {
      state.waiters.delete(waiter)
      reject(new Error(`upstream ${state.name} closed before it received ${count} requests`))
    }
    const waiter = {
      count,
      resolve: () => {
        state.waiters.delete(waiter)
        state.signal.removeEventListener('abort', onClose)
        resolve()
      },
    }
    state.waiters.add(waiter)
    state.signal.addEventListener('abort', onClose, { once: true })
  })
}

interface Running {
  readonly upstream: Upstream
  close(): Promise<void>
}

async function startOne(name: string, mock: MockUpstream, signal: AbortSignal, tls: { cert: string; key: string } | undefined): Promise<Running> {
  const state: UpstreamState = { name, routes: mock.routes, served: mock.routes.map(() => 0), received: [], waiters: new Set(), signal }
  const { server, sockets } = listening(state, mock.tls ? tls : undefined)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, UPSTREAM_ADDRESS, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const origin = `${mock.tls ? 'https' : 'http'}://${name}:${port}`
  const upstream: Upstream = {
    name,
    tls: mock.tls === true,
    port,
    origin,
    url: (path = '/') => origin + withSlash(path),
    received: state.received,
    whenReceived: (count) => whenReceived(state, count),
    get listening() {
      return server.listening
    },
  }
  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
  return { upstream, close }
}

/**
 * Validates `description` (a TypeError naming the bad field's path) and starts one server per
 * upstream on 127.0.0.1 (a free port each). HTTPS upstreams share one certificate, issued for
 * their names by a CA made now (`ca`). Close them with `close()`.
 */
export async function startUpstreams(description: MockDescription): Promise<Upstreams> {
  const mocks = parseMocks(description)
  const entries = Object.entries(mocks.upstreams)
  const tlsNames = entries.filter(([, mock]) => mock.tls).map(([name]) => name)
  const certificates = tlsNames.length > 0 ? makeTestCertificates(tlsNames) : undefined
  // The server sends its own certificate only: a client that does not trust the CA cannot verify it.
  const serverTls = certificates && { cert: certificates.cert, key: certificates.key }
  const stop = new AbortController()
  const running = new Map<string, Running>()
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      stop.abort()
      await Promise.all([...running.values()].map((entry) => entry.close()))
    })())
  try {
    for (const [name, mock] of entries) running.set(name, await startOne(name, mock, stop.signal, serverTls))
  } catch (error) {
    await close()
    throw error
  }
  const upstream = (name: string): Upstream => {
    const entry = running.get(name)
    if (entry) return entry.upstream
    throw new TypeError(`no upstream "${name}"; the upstreams are ${[...running.keys()].map((known) => `"${known}"`).join(', ') || 'none'}`)
  }
  return {
    names: [...running.keys()],
    upstream,
    url: (name, path) => upstream(name).url(path),
    ca: certificates?.ca,
    close,
    [Symbol.asyncDispose]: close,
  }
}
