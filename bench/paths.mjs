// @ts-check
// bench/paths.mjs: the upstream and every way of fetching from it that the benchmark compares: raw undici, global fetch, the safe fetch, capsule-host's isolations, and Extism's own HTTP.

import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import createPlugin from '@extism/extism'
import { Agent, request as undiciRequest } from 'undici'
import { createRuntime, createSafeFetch, hasJspi } from '../dist/index.js'
import { listen } from './common.mjs'

const MiB = 1024 * 1024
export const PROBE = fileURLToPath(new URL('../capsules/dist/probe.wasm', import.meta.url))
const EXTISM_HTTP = fileURLToPath(new URL('../../shared/fixtures/extism-plugins/http.wasm', import.meta.url))

/** The small JSON body of the sequential test (111 bytes). */
export const JSON_BODY = Buffer.from(
  JSON.stringify({ id: 42, name: 'capsule-bench', ok: true, tags: ['alpha', 'beta', 'gamma'], score: 0.875, note: 'a small reply' }),
)
const JSON_TEXT = JSON_BODY.toString()

/** One 1 MiB block of a fixed pattern; streamed bodies repeat it. */
export const BLOCK = Buffer.alloc(MiB)
for (let i = 0; i < BLOCK.length; i++) BLOCK[i] = (i * 31 + (i >> 8)) & 0xff

/** The upstream: `/json` (the small body) and `/big?bytes=N` (N bytes of BLOCK, as fast as the socket takes them). @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
export function upstream(req, res) {
  const url = new URL(req.url ?? '/', 'http://upstream')
  if (url.pathname === '/json') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_BODY.length })
    return void res.end(JSON_BODY)
  }
  if (url.pathname !== '/big') return void res.writeHead(404).end('not found')
  const total = Number(url.searchParams.get('bytes'))
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
  let sent = 0
  const pump = () => {
    while (sent < total) {
      const piece = BLOCK.subarray(0, Math.min(BLOCK.length, total - sent))
      sent += piece.length
      if (!res.write(piece)) return void res.once('drain', pump)
    }
    res.end()
  }
  pump()
}

/** @param {string} what @param {number} status @param {string} body */
function expectJson(what, status, body) {
  if (status !== 200 || body !== JSON_TEXT) throw new Error(`${what}: unexpected reply ${status} ${body.slice(0, 200)}`)
}

/**
 * The isolation modes this Node can run: worker always; inline and pool need JSPI (Node 25+).
 * @returns {Array<'worker' | 'inline' | 'pool'>}
 */
export function isolationModes() {
  return hasJspi() ? ['inline', 'worker', 'pool'] : ['worker']
}

/**
 * Everything the sections share: the server, one undici agent, safe fetches with the stub and
 * the system resolver, and a runtime per isolation.
 * @param {Array<() => Promise<unknown> | unknown>} cleanup
 */
export async function createBench(cleanup) {
  const server = await listen(upstream)
  cleanup.push(() => server.close())
  const { port } = server
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 })
  cleanup.push(() => agent.close())
  /** A safe fetch as the tests configure one: `host` allowed on the server's port, loopback exempted. @param {string} host @param {boolean} stub */
  const safeFetch = (host, stub, limits = {}) => {
    const fetch = createSafeFetch({
      rules: { host, httpsOnly: false, port },
      ...(stub ? { resolver: async () => ['127.0.0.1'] } : {}),
      addressPolicy: { allow: ['127.0.0.1/32', '::1/128'] },
      limits,
      telemetry: false,
    })
    cleanup.push(() => fetch.close())
    return fetch
  }
  const capsuleFetch = safeFetch('bench.test', true, { maxOpenStreams: 8 })
  /** @type {Map<string, import('../dist/index.js').Runtime>} */
  const runtimes = new Map()
  for (const mode of isolationModes()) {
    const runtime = createRuntime({ fetch: capsuleFetch, isolation: mode })
    cleanup.push(() => runtime.close())
    runtimes.set(mode, runtime)
  }
  return {
    port,
    agent,
    rawUrl: (/** @type {string} */ path) => `http://127.0.0.1:${port}${path}`,
    safeUrl: (/** @type {string} */ path) => `http://bench.test:${port}${path}`,
    stubFetch: safeFetch('bench.test', true),
    systemFetch: safeFetch('localhost', false),
    runtimes,
    probe: readFileSync(PROBE),
  }
}

/** @typedef {Awaited<ReturnType<typeof createBench>>} Bench */
/** @typedef {{ name: string, mode: string, once: () => Promise<void>, iterations?: number }} SequentialPath */

/** The sequential paths that need no capsule: raw undici, global fetch, the safe fetch with both resolvers. @param {Bench} bench @returns {SequentialPath[]} */
function directPaths(bench) {
  const signal = new AbortController().signal
  const stubInput = JSON.stringify({ url: bench.safeUrl('/json') })
  const systemInput = JSON.stringify({ url: `http://localhost:${bench.port}/json` })
  /** @param {import('../dist/index.js').SafeFetch} fetch @param {string} input @param {string} what */
  const safe = (fetch, input, what) => async () => {
    const reply = await fetch.request(input, { capsuleId: what, signal })
    if ('error' in reply) throw new Error(`${what}: ${JSON.stringify(reply.error)}`)
    expectJson(what, reply.status, /** @type {string} */ (reply.body))
  }
  return [
    {
      name: 'raw undici request()',
      mode: '-',
      once: async () => {
        const { statusCode, body } = await undiciRequest(bench.rawUrl('/json'), { dispatcher: bench.agent })
        expectJson('raw undici', statusCode, await body.text())
      },
    },
    {
      name: "Node's global fetch()",
      mode: '-',
      once: async () => {
        const response = await fetch(bench.rawUrl('/json'))
        expectJson('global fetch', response.status, await response.text())
      },
    },
    { name: 'safe fetch request(), stub resolver', mode: '-', once: safe(bench.stubFetch, stubInput, 'bench-stub') },
    { name: 'safe fetch request(), system resolver (localhost)', mode: '-', once: safe(bench.systemFetch, systemInput, 'bench-system') },
  ]
}

/** The capsule paths of one isolation: the call alone, the host-function request, and the SDK parsing the reply. @param {Bench} bench @param {'worker' | 'inline' | 'pool'} mode @returns {Promise<SequentialPath[]>} */
async function capsulePaths(bench, mode) {
  const probe = await bench.runtimes.get(mode).load({ wasm: bench.probe, id: `bench-seq-${mode}` })
  const input = JSON.stringify({ url: bench.safeUrl('/json') })
  const paths = [
    {
      name: 'probe.echo (call only, no HTTP)',
      mode,
      once: async () => {
        if ((await probe.call('echo', input)).text() !== input) throw new Error(`probe.echo (${mode}): unexpected output`)
      },
    },
    {
      name: 'probe.request (capsule http_request)',
      mode,
      once: async () => {
        const reply = /** @type {{ status: number, body: string }} */ ((await probe.call('request', input)).json())
        expectJson(`probe.request (${mode})`, reply.status, reply.body)
      },
    },
  ]
  if (probe.exports.has('parsed')) {
    paths.push({
      name: 'probe.parsed (+ SDK parses the reply)',
      mode,
      once: async () => {
        const out = /** @type {{ status: number, bodyBytes: number }} */ ((await probe.call('parsed', input)).json())
        if (out.status !== 200 || out.bodyBytes !== JSON_BODY.length) throw new Error(`probe.parsed (${mode}): ${JSON.stringify(out)}`)
      },
    })
  }
  return paths
}

/**
 * The peers a user would pick instead: Extism's own HTTP (allowedHosts, no other check) running
 * the Rust-PDK http.wasm fixture, on JSPI in the foreground with its default fetch and with a thin
 * undici adapter, and in Extism's runInWorker. Used here as peers only; capsule-host never uses them.
 * @param {Bench} bench @param {Array<() => Promise<unknown> | unknown>} cleanup @returns {Promise<SequentialPath[]>}
 */
async function extismPaths(bench, cleanup) {
  if (!existsSync(EXTISM_HTTP)) {
    console.log(`(Extism peers left out: ${EXTISM_HTTP} is absent)`)
    return []
  }
  const wasm = readFileSync(EXTISM_HTTP)
  const input = JSON.stringify({ url: bench.rawUrl('/json') })
  /** @type {typeof fetch} */
  const undiciAdapter = /** @type {any} */ (async (/** @type {string} */ url, /** @type {any} */ init) => {
    const { statusCode, headers, body } = await undiciRequest(url, { method: init?.method ?? 'GET', headers: init?.headers, body: init?.body, dispatcher: bench.agent })
    const bytes = await body.arrayBuffer()
    return { status: statusCode, headers: Object.entries(headers), arrayBuffer: async () => bytes }
  })
  const variants = [
    ...(hasJspi() ? [['JSPI, its default fetch', { runInWorker: false }], ['JSPI, undici adapter', { runInWorker: false, fetch: undiciAdapter }]] : []),
    ['runInWorker', { runInWorker: true }],
  ]
  /** @type {SequentialPath[]} */
  const paths = []
  for (const [mode, options] of /** @type {Array<[string, object]>} */ (variants)) {
    const plugin = await createPlugin({ wasm: [{ data: wasm }], allowedHosts: ['127.0.0.1'] }, { useWasi: false, allowedHosts: ['127.0.0.1'], ...options })
    cleanup.push(() => plugin.close())
    paths.push({
      name: "Extism's own HTTP (http.wasm)",
      mode,
      // runInWorker gets slower with every call: fewer of them.
      ...(mode === 'runInWorker' ? { iterations: 50 } : {}),
      once: async () => expectJson(`Extism ${mode}`, 200, (await plugin.call('http_request', input))?.text() ?? ''),
    })
  }
  return paths
}

/** Every sequential path, raw undici first. @param {Bench} bench @param {Array<() => Promise<unknown> | unknown>} cleanup */
export async function sequentialPaths(bench, cleanup) {
  const paths = directPaths(bench)
  for (const mode of bench.runtimes.keys()) paths.push(...(await capsulePaths(bench, mode)))
  paths.push(...(await extismPaths(bench, cleanup)))
  return paths
}
