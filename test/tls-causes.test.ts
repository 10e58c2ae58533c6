// TLS, connect and mid-exchange failures against real loopback servers: the capsule sees the code
// and a causeless message; the cause is in the error's `detail` (host-side), from transportError.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { Agent, request } from 'undici'
import { afterAll, describe, expect, test } from 'vitest'
import type { CapsuleHostError } from '../src/errors.js'
import { transportError } from '../src/net/transport/errors.js'
import { createSafeFetch, type SafeFetch } from '../src/safe-fetch.js'
import { normaliseUrl } from '../src/url/normalise.js'
import { ctx, errorOf, tableResolver } from './helpers/fetch.js'
import { makeFailureCerts, type FailureCerts, type KeyPair } from './helpers/tls-certs.js'

const generated = makeFailureCerts()

const servers: Array<HttpServer | HttpsServer | NetServer> = []
const sockets = new Set<Socket>()
const fetches: SafeFetch[] = []
const agents: Agent[] = []

afterAll(async () => {
  await Promise.all(fetches.splice(0).map((f) => f.close()))
  await Promise.all(agents.splice(0).map((a) => a.close()))
  for (const socket of sockets) socket.destroy()
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
})

/** Listens on 127.0.0.1:0, closed (its sockets first) after the file; returns the port. */
async function listen(server: HttpServer | HttpsServer | NetServer): Promise<number> {
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

/** An HTTPS server on loopback serving `pair`; `requests` counts what reached the handler. */
async function startTlsServer(pair: KeyPair): Promise<{ port: number; readonly requests: number }> {
  let requests = 0
  const server = createHttpsServer({ cert: pair.cert, key: pair.key }, (_req, res) => {
    requests++
    res.end('reached')
  })
  server.on('tlsClientError', () => {}) // the client's refusal, expected
  const port = await listen(server)
  return {
    port,
    get requests() {
      return requests
    },
  }
}

/** A safe fetch that maps api.test to 127.0.0.1, exempts exactly that address, and trusts `ca`. */
function fetchFor(port: number, ca?: string): SafeFetch {
  const f = createSafeFetch({
    rules: { host: 'api.test', port, httpsOnly: false },
    resolver: tableResolver({ 'api.test': ['127.0.0.1'] }),
    addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
    ...(ca === undefined ? {} : { tls: { ca } }),
  })
  fetches.push(f)
  return f
}

/** The reason `promise` rejects with; a promise that resolves fails the test. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${typeof value}`)
    },
    (error: unknown) => error,
  )
}

/**
 * The error object a real failure produces: undici (the transport's client) requests `/` from
 * 127.0.0.1:`port` with SNI and certificate checks on `api.test`, trusting `ca`, and reads the body.
 */
async function realFailure(port: number, scheme: 'http' | 'https', ca?: string): Promise<unknown> {
  const agent = new Agent({ connect: { servername: 'api.test', ...(ca === undefined ? {} : { ca }) } })
  agents.push(agent)
  return rejectionOf(
    (async () => {
      const response = await request(`${scheme}://127.0.0.1:${port}/`, { dispatcher: agent })
      await response.body.text()
    })(),
  )
}

interface TlsRow {
  name: string
  pair: (certs: FailureCerts) => KeyPair
  /** The code Node reports for it (the real error's `code`). */
  nodeCode: string
  detail: string
}

const tlsRows: TlsRow[] = [
  { name: 'a certificate from an unknown CA', pair: (c) => c.unknownCa, nodeCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', detail: 'unknown certificate authority (UNABLE_TO_VERIFY_LEAF_SIGNATURE)' },
  { name: 'a certificate for another name', pair: (c) => c.wrongName, nodeCode: 'ERR_TLS_CERT_ALTNAME_INVALID', detail: 'certificate name mismatch (ERR_TLS_CERT_ALTNAME_INVALID)' },
  { name: 'an expired certificate', pair: (c) => c.expired, nodeCode: 'CERT_HAS_EXPIRED', detail: 'certificate expired (CERT_HAS_EXPIRED)' },
  { name: 'a certificate not yet valid', pair: (c) => c.notYetValid, nodeCode: 'CERT_NOT_YET_VALID', detail: 'certificate not yet valid (CERT_NOT_YET_VALID)' },
  { name: 'a self-signed certificate', pair: (c) => c.selfSigned, nodeCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', detail: 'self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)' },
]

/** The message a capsule gets for a failed handshake: the same for every cause. */
const tlsMessage = (port: number) => `the TLS handshake with api.test:${port} failed`

/** A reply's error must be exactly `{ code, message }`: nothing else is sent to the capsule. */
function expectCauselessError(reply: object, code: string, message: string, detail: string): void {
  const error = errorOf(reply)
  expect(error).toEqual({ code, message })
  expect(error?.message).not.toContain(detail)
  expect(JSON.stringify(reply)).not.toContain(detail.slice(detail.lastIndexOf('(') + 1, -1))
}

describe.skipIf(generated.certs === undefined)(`TLS causes (${generated.unavailable ?? 'certificates made with openssl'})`, () => {
  const certs = generated.certs!

  test('control: the generated CA is trusted and a valid certificate for api.test is answered', async () => {
    const server = await startTlsServer(certs.valid)
    const reply = await fetchFor(server.port, certs.trustedCa).request({ url: `https://api.test:${server.port}/` }, ctx())
    expect(errorOf(reply)).toBeUndefined()
    expect(server.requests).toBe(1)
  })

  test.each(tlsRows)('$name: the capsule sees tls_failed and no cause, nothing reaches the server', async ({ pair, detail }) => {
    const server = await startTlsServer(pair(certs))
    const reply = await fetchFor(server.port, certs.trustedCa).request({ url: `https://api.test:${server.port}/` }, ctx())
    expectCauselessError(reply, 'tls_failed', tlsMessage(server.port), detail)
    expect(server.requests).toBe(0)
  })

  test.each(tlsRows)('$name: transportError keeps the cause in detail only', async ({ pair, nodeCode, detail }) => {
    const server = await startTlsServer(pair(certs))
    const failure = await realFailure(server.port, 'https', certs.trustedCa)
    expect(failure).toMatchObject({ code: nodeCode })
    const error: CapsuleHostError = transportError(failure, false, normaliseUrl(`https://api.test:${server.port}/`))
    expect({ code: error.code, message: error.message, detail: error.detail }).toEqual({
      code: 'tls_failed',
      message: tlsMessage(server.port),
      detail,
    })
    expect(error.cause).toBe(failure)
    expect(error.toWire()).toEqual({ code: 'tls_failed', message: tlsMessage(server.port) })
  })
})

describe('TLS causes without a certificate', () => {
  test('plain HTTP spoken to an https URL: TLS handshake failed with the OpenSSL code', async () => {
    const port = await listen(createHttpServer((_req, res) => res.end('plain')))
    const failure = await realFailure(port, 'https')
    expect(failure).toMatchObject({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' })
    const error = transportError(failure, false, normaliseUrl(`https://api.test:${port}/`))
    expect({ code: error.code, message: error.message, detail: error.detail }).toEqual({
      code: 'tls_failed',
      message: tlsMessage(port),
      detail: 'TLS handshake failed (ERR_SSL_WRONG_VERSION_NUMBER)',
    })
    const reply = await fetchFor(port).request({ url: `https://api.test:${port}/` }, ctx())
    expectCauselessError(reply, 'tls_failed', tlsMessage(port), error.detail!)
  })
})

/** A port on 127.0.0.1 that nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe('connect and network causes', () => {
  test('a refused connection is connect_failed, detail "connection refused (ECONNREFUSED)"', async () => {
    const port = await closedPort()
    const failure = await realFailure(port, 'http')
    expect(failure).toMatchObject({ code: 'ECONNREFUSED' })
    const error = transportError(failure, false, normaliseUrl(`http://api.test:${port}/`))
    expect({ code: error.code, message: error.message, detail: error.detail }).toEqual({
      code: 'connect_failed',
      message: `could not connect to api.test:${port}`,
      detail: 'connection refused (ECONNREFUSED)',
    })
    const reply = await fetchFor(port).request({ url: `http://api.test:${port}/` }, ctx())
    expectCauselessError(reply, 'connect_failed', `could not connect to api.test:${port}`, error.detail!)
  })

  test('a connection reset before the request is connect_failed, detail "connection reset (ECONNRESET)"', async () => {
    const port = await listen(createNetServer((socket) => socket.resetAndDestroy()))
    const failure = await realFailure(port, 'http')
    expect(failure).toMatchObject({ code: 'ECONNRESET' })
    const error = transportError(failure, false, normaliseUrl(`http://api.test:${port}/`))
    expect({ code: error.code, detail: error.detail }).toEqual({ code: 'connect_failed', detail: 'connection reset (ECONNRESET)' })
  })

  test('a reset once the request is sent is network, detail "connection reset (ECONNRESET)"', async () => {
    const port = await listen(createNetServer((socket) => socket.once('data', () => socket.resetAndDestroy())))
    const failure = await realFailure(port, 'http')
    expect(failure).toMatchObject({ code: 'ECONNRESET' })
    const error = transportError(failure, true, normaliseUrl(`http://api.test:${port}/`))
    expect({ code: error.code, message: error.message, detail: error.detail }).toEqual({
      code: 'network',
      message: `the connection to api.test:${port} failed during the exchange`,
      detail: 'connection reset (ECONNRESET)',
    })
    const reply = await fetchFor(port).request({ url: `http://api.test:${port}/` }, ctx())
    expectCauselessError(reply, 'network', `the connection to api.test:${port} failed during the exchange`, error.detail!)
  })

  test('a close in the middle of the body is network, detail "closed by the server (UND_ERR_SOCKET)"', async () => {
    const port = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-length': '100' })
        res.write('part', () => res.socket?.destroy())
      }),
    )
    const failure = await realFailure(port, 'http')
    expect(failure).toMatchObject({ code: 'UND_ERR_SOCKET' })
    const error = transportError(failure, true, normaliseUrl(`http://api.test:${port}/`))
    expect({ code: error.code, detail: error.detail }).toEqual({ code: 'network', detail: 'closed by the server (UND_ERR_SOCKET)' })
  })

  test('an error without a code names its message (escaped, capped), or says there was none', () => {
    const url = normaliseUrl('http://api.test/')
    expect(transportError(new Error('boom\nagain'), false, url).detail).toBe('connect failed (boom\\nagain)')
    expect(transportError(new Error('x'.repeat(300)), true, url).detail).toBe(`exchange failed (${'x'.repeat(200)}… (100 more characters))`)
    expect(transportError(undefined, false, url).detail).toBe('connect failed (no code or message)')
    expect(transportError({ code: 'EPROTO', message: 'bad record' }, false, url).detail).toBe('TLS handshake failed (EPROTO)')
  })
})
