// Starts real HTTP and HTTPS servers on 127.0.0.1 (port 0) for tests, and closes them all afterwards.
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/tls/${name}`, import.meta.url))
export const TEST_CA = fixture('ca.pem')
const SERVER_CERT = { cert: fixture('server.pem'), key: fixture('server-key.pem') }

export type Handler = (req: IncomingMessage, res: ServerResponse) => unknown

export interface TestServer {
  readonly port: number
  /** Requests that reached the handler. */
  readonly requests: IncomingMessage[]
  /** Sockets accepted (TCP connections). */
  readonly connections: number
  readonly server: Server
  close(): Promise<void>
}

const open: TestServer[] = []

/** Listens on 127.0.0.1:0; `tls: true` serves the fixture certificate (api.test and friends). */
export async function startServer(handler: Handler, options: { tls?: boolean } = {}): Promise<TestServer> {
  const requests: IncomingMessage[] = []
  const sockets = new Set<Socket>()
  let connections = 0
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    requests.push(req)
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      res.destroy(error as Error)
    })
  }
  const server = options.tls ? createHttpsServer(SERVER_CERT, listener) : createHttpServer(listener)
  server.on(options.tls ? 'secureConnection' : 'connection', () => connections++)
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const entry: TestServer = {
    port,
    requests,
    get connections() {
      return connections
    },
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
  open.push(entry)
  return entry
}

/** Closes every server started by this file's tests; call from afterAll. */
export async function closeAllServers(): Promise<void> {
  await Promise.all(open.splice(0).map((s) => s.close()))
}

/** Reads a request body fully. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
