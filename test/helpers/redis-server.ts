// Real Redis for tests: a redis-server of the test's own on a free loopback port, or the one CAPSULE_HOST_TEST_REDIS names.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'

/** /usr/bin/redis-server, or the first `redis-server` on PATH; undefined when there is none. */
function findRedisServer(): string | undefined {
  const candidates = ['/usr/bin/redis-server', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'redis-server'))]
  return candidates.find((path) => existsSync(path))
}

/** `redis://127.0.0.1:PORT` from CAPSULE_HOST_TEST_REDIS (CI's shared server), checked to be loopback. */
function sharedRedisUrl(): string | undefined {
  const raw = process.env.CAPSULE_HOST_TEST_REDIS
  if (raw === undefined || raw === '') return undefined
  const { hostname } = new URL(raw)
  if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(hostname)) throw new Error(`CAPSULE_HOST_TEST_REDIS must be a loopback address, not ${raw}`)
  return raw
}

export const REDIS_SERVER_BINARY = findRedisServer()
export const SHARED_REDIS_URL = sharedRedisUrl()
/** A Redis the tests can use: CI's shared one, or one they start. Without it every Redis test reports skipped. */
export const hasRedis = REDIS_SERVER_BINARY !== undefined || SHARED_REDIS_URL !== undefined
/** A redis-server binary the tests can start (and kill, pause, restart) themselves. */
export const canSpawnRedis = REDIS_SERVER_BINARY !== undefined

export interface SpawnedRedis {
  readonly url: string
  readonly port: number
  /** SIGKILL (a crash, no goodbye to clients); resolves when the process has exited. */
  kill(): Promise<void>
  /** Starts it again on the same port (empty: nothing is saved); resolves when it answers PING. */
  restart(): Promise<void>
  /** SIGSTOP: connections stay open and nothing answers. */
  pause(): void
  /** SIGCONT. */
  resume(): void
  /** Stops it (if running) and waits for the exit. */
  close(): Promise<void>
}

const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** A port nothing listens on right now (the kernel's pick for port 0). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Resolves once a raw PING on the port gets +PONG. */
async function answersPing(port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1')
  try {
    await once(socket, 'connect')
    socket.write('PING\r\n')
    const [reply] = (await once(socket, 'data')) as [Buffer]
    return reply.toString('latin1').startsWith('+PONG')
  } catch {
    return false
  } finally {
    socket.destroy()
  }
}

/** Runs redis-server on the port; resolves when it logs that it accepts connections and answers PING. */
async function startOn(port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice']
  const child = spawn(REDIS_SERVER_BINARY!, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  let log = ''
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (log.includes('Ready to accept connections')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited (${code}) before it was ready:\n${log}`)))
    child.once('error', reject)
  })
  await ready
  if (!(await answersPing(port))) throw new Error(`redis-server on port ${port} does not answer PING`)
  return child
}

async function stop(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGCONT')
  child.kill(signal)
  await exited
}

/** Starts a redis-server of the caller's own on a free 127.0.0.1 port, with no persistence. */
export async function spawnRedis(): Promise<SpawnedRedis> {
  if (!REDIS_SERVER_BINARY) throw new Error('no redis-server binary: guard the test with canSpawnRedis')
  let port = 0
  let child: ChildProcess | undefined
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort()
    child = await startOn(port).catch((error: unknown) => {
      if (attempt >= 3) throw error
      return undefined
    })
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill: () => stop(child, 'SIGKILL'),
    restart: async () => {
      child = await startOn(port)
    },
    pause: () => void child!.kill('SIGSTOP'),
    resume: () => void child!.kill('SIGCONT'),
    close: () => stop(child, 'SIGTERM'),
  }
}

/** The Redis a test file shares among its tests: CI's (CAPSULE_HOST_TEST_REDIS) when set, else its own. */
export async function testRedis(): Promise<{ readonly url: string; close(): Promise<void> }> {
  if (SHARED_REDIS_URL !== undefined) return { url: SHARED_REDIS_URL, close: async () => {} }
  return spawnRedis()
}
