// @ts-check
// The `npm start` demo: real Extism capsules (ours, and one built with Extism's Rust PDK) making guarded HTTP calls to a local HTTPS upstream, the requests the host refuses, and a WASI plugin's output as log lines.
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { createRuntime, createSafeFetch } from '../dist/index.js'

/** @param {string} name */
const fixture = (name) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url))
const capsuleWasm = (/** @type {string} */ name) => new URL(`../capsules/dist/${name}.wasm`, import.meta.url)
const MiB = 1024 * 1024
const DOWNLOAD_BYTES = 64 * MiB

// ---------------------------------------------------------------------------------------------
// Fixtures: a deterministic 64 MiB body and its FNV-1a 32, computed here before anything is sent.

/** @param {Uint8Array} bytes */
function fnv1a32(bytes) {
  let h = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193)
  return (h >>> 0).toString(16).padStart(8, '0')
}

const download = Buffer.alloc(DOWNLOAD_BYTES)
{
  const words = new Uint32Array(download.buffer, download.byteOffset, DOWNLOAD_BYTES / 4)
  for (let i = 0, x = 0x12345678; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    words[i] = x
  }
}
const downloadFnv = fnv1a32(download)

// Three pages of users: 4 + 4 + 2.
const PAGES = [1, 2, 3].map((page) => ({
  users: Array.from({ length: page === 3 ? 2 : 4 }, (_, i) => ({ id: (page - 1) * 4 + i + 1, name: `user-${(page - 1) * 4 + i + 1}` })),
  next: page < 3 ? page + 1 : null,
}))
const TOTAL_USERS = PAGES.reduce((n, p) => n + p.users.length, 0)

// ---------------------------------------------------------------------------------------------
// The upstream: HTTPS on 127.0.0.1, a certificate for demo.test from the fixtures' test CA.

/** Requests the upstream saw, by path. */
const seen = new Map()
/** Responses to /hold that are still open (their body never ends until the client goes away). */
const held = new Set()

const upstream = createServer({ cert: fixture('server.pem'), key: fixture('server-key.pem') }, (req, res) => {
  const url = new URL(req.url ?? '/', 'https://demo.test')
  seen.set(url.pathname, (seen.get(url.pathname) ?? 0) + 1)
  if (url.pathname === '/api/users') {
    const page = PAGES[Number(url.searchParams.get('page') ?? '1') - 1]
    if (!page) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such page"}')
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(page))
  }
  if (url.pathname === '/download') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DOWNLOAD_BYTES })
    return void res.end(download)
  }
  if (url.pathname === '/hold') {
    // Sends the head and a first chunk, then keeps the body open.
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('streaming...\n')
    held.add(res)
    res.on('close', () => held.delete(res))
    return
  }
  res.writeHead(404).end('not found')
})
await new Promise((resolve) => upstream.listen(0, '127.0.0.1', () => resolve(undefined)))
const port = /** @type {import('node:net').AddressInfo} */ (upstream.address()).port
const base = `https://demo.test:${port}`

// ---------------------------------------------------------------------------------------------
// The safe fetch: demo names resolve from a table (never real DNS), only 127.0.0.1 is exempted.

/** @type {Record<string, string[]>} */
const resolverTable = { 'demo.test': ['127.0.0.1'], 'intranet.demo.test': ['10.0.0.8'] }
/** Every name the resolver was asked about, in order. */
const lookups = /** @type {string[]} */ ([])

/** @type {import('../dist/index.js').RequestEvent[]} */
const events = []
const short = (/** @type {string | undefined} */ url) => (url ?? '(invalid url)').replace(`:${port}/`, ':PORT/')

const safeFetch = createSafeFetch({
  rules: [{ host: 'demo.test', port }, { host: '*.demo.test', port }],
  resolver: async (hostname) => {
    lookups.push(hostname)
    const answer = resolverTable[hostname]
    if (!answer) throw new Error(`ENOTFOUND ${hostname}`)
    return answer
  },
  // The upstream lives on loopback, which is blocked unless exempted: exempt exactly it.
  addressPolicy: { allow: ['127.0.0.1/32'] },
  tls: { ca: fixture('ca.pem') },
  limits: { connectTimeoutMs: 5_000, firstByteTimeoutMs: 5_000, idleTimeoutMs: 10_000 },
  onRequest: (event) => {
    events.push(event)
    const verdict = event.allowed ? 'allowed' : 'REFUSED'
    const outcome = event.status !== undefined ? `status ${event.status}` : `error ${event.code}`
    console.log(`      [${event.capsuleId}] ${event.kind === 'stream' ? 'stream ' : ''}${event.method ?? '?'} ${short(event.url)}  ${verdict} by ${event.decidedBy ?? '-'}  -> ${outcome}  (${event.durationMs} ms)`)
  },
})

/** Capsule log lines (Extism's log_* and WASI stdout/stderr), as the host receives them. */
const logLines = []
const runtime = createRuntime({
  fetch: safeFetch,
  limits: { callTimeoutMs: 20_000 },
  onLog: (entry) => {
    logLines.push(entry)
    console.log(`      [${entry.capsuleId} ${entry.level}] ${entry.message}`)
  },
})
/** Plugins built by Extism's maintainers with their Rust PDK (beside the project, never copied into it). */
const extismPlugins = new URL('../../shared/fixtures/extism-plugins/', import.meta.url)

// ---------------------------------------------------------------------------------------------
// Steps.

/** @type {Array<{ step: string, ok: boolean }>} */
const results = []
/**
 * @param {string} step
 * @param {() => Promise<{ ok: boolean, detail: string }>} run
 */
async function step(step, run) {
  console.log(`\n${step}`)
  let ok = false
  let detail
  try {
    ;({ ok, detail } = await run())
  } catch (error) {
    detail = `threw: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`
  }
  results.push({ step, ok })
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${detail}`)
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** @param {() => boolean} condition @param {number} ms */
async function waitFor(condition, ms) {
  const until = performance.now() + ms
  while (!condition() && performance.now() < until) await sleep(10)
  return condition()
}

console.log(`upstream https://demo.test:${port} on 127.0.0.1 (test CA), download ${DOWNLOAD_BYTES / MiB} MiB, fnv1a32 ${downloadFnv}`)

try {
  const probe = await runtime.load({ wasm: capsuleWasm('probe'), id: 'probe' })
  const report = await runtime.load({ wasm: capsuleWasm('report'), id: 'report' })
  console.log(`loaded capsules: ${[...runtime.capsules.keys()].join(', ')} (worker isolation)`)

  /** A request sent from inside the probe capsule; returns the host function's reply, verbatim. */
  const probeRequest = async (/** @type {object} */ request) => (await probe.call('request', request)).json()

  await step('1. buffered JSON call (probe.request)', async () => {
    const reply = /** @type {any} */ (await probeRequest({ url: `${base}/api/users?page=1`, headers: { accept: 'application/json' } }))
    if (reply.error) return { ok: false, detail: `error ${JSON.stringify(reply.error)}` }
    const body = JSON.parse(reply.body)
    // The reply carries the headers as rawHeaders, [name, value] pairs in order (responseHeaders: "list", the default).
    const contentType = reply.rawHeaders.find((/** @type {[string, string]} */ [name]) => name === 'content-type')?.[1]
    const ok = reply.status === 200 && reply.bodyEncoding === 'text' && body.users.length === PAGES[0].users.length && body.next === 2 && contentType === 'application/json'
    return { ok, detail: `status ${reply.status}, ${body.users.length} users, next ${body.next}, content-type ${contentType}, ${reply.meta.elapsedMs} ms` }
  })

  await step(`2. report.summarise: page through the API, stream ${DOWNLOAD_BYTES / MiB} MiB, verify the checksum`, async () => {
    const started = performance.now()
    const out = /** @type {any} */ ((await report.call('summarise', { api: `${base}/api/users`, download: `${base}/download` })).json())
    const seconds = (performance.now() - started) / 1000
    if (out.error) return { ok: false, detail: `error ${JSON.stringify(out.error)}` }
    const d = out.download
    const ok = out.users === TOTAL_USERS && out.pages === PAGES.length && d.status === 200 && d.bytes === DOWNLOAD_BYTES && d.fnv1a32 === downloadFnv
    return {
      ok,
      detail: `${out.users} users on ${out.pages} pages; download ${d.status}, ${d.bytes} bytes, fnv1a32 ${d.fnv1a32} ${d.fnv1a32 === downloadFnv ? 'matches' : `DOES NOT match ${downloadFnv}`}; ` +
        `${seconds.toFixed(2)} s, ${(d.bytes / MiB / seconds).toFixed(0)} MiB/s`,
    }
  })

  /**
   * A refused request from inside a capsule: the expected code, and the upstream never saw it.
   * @param {string} url @param {string} expected @param {() => string | undefined} [extra] a further check
   */
  const refused = (url, expected, extra) => async () => {
    const before = events.length
    const reply = /** @type {any} */ (await probeRequest({ url }))
    const code = reply.error?.code ?? `status ${reply.status}`
    const event = events.slice(before).at(-1)
    const problem = code !== expected ? `expected ${expected}` : event?.allowed !== false ? 'the event does not say refused' : extra?.()
    return { ok: problem === undefined, detail: `${url} -> ${code} (${reply.error?.message ?? ''})${problem ? `; ${problem}` : ''}` }
  }

  await step('3a. refused: a name that resolves to a private address', refused(`https://intranet.demo.test:${port}/admin`, 'blocked_address',
    () => (seen.has('/admin') ? 'the upstream saw /admin' : undefined)))

  await step('3b. refused: the cloud metadata address', refused('http://169.254.169.254/latest/meta-data/', 'denied'))

  await step('3c. refused: a host outside the rules (never resolved)', refused('https://example.com/', 'denied',
    () => (lookups.includes('example.com') ? 'example.com was resolved' : undefined)))

  await step('3d. refused: a 5th concurrent stream (probe.hold_streams count 5)', async () => {
    // A second probe instance, so that unloading it shows its streams are closed upstream.
    const holder = await runtime.load({ wasm: capsuleWasm('probe'), id: 'probe-streams' })
    const replies = /** @type {any[]} */ ((await holder.call('hold_streams', { request: { url: `${base}/hold` }, count: 5 })).json())
    const handles = replies.filter((r) => typeof r.handle === 'string' && r.status === 200)
    const last = replies[4]?.error?.code
    const upstreamSaw = seen.get('/hold') ?? 0
    const openBefore = held.size
    console.log(`      start replies: ${replies.map((r) => (r.handle !== undefined ? `handle ${r.handle} (${r.status})` : r.error?.code)).join(', ')}`)
    await holder.unload()
    const allClosed = await waitFor(() => held.size === 0, 3_000)
    const ok = replies.length === 5 && handles.length === 4 && new Set(handles.map((r) => r.handle)).size === 4 &&
      last === 'stream_limit' && upstreamSaw === 4 && openBefore === 4 && allClosed
    return {
      ok,
      detail: `${handles.length} handles + ${last}; the upstream saw ${upstreamSaw} requests (the 5th made no network I/O); ` +
        `unload closed ${openBefore - held.size} of ${openBefore} held upstream responses`,
    }
  })

  await step('4. explain(): the metadata address in several spellings, with a rule that allows it', async () => {
    const permissive = createSafeFetch({
      rules: [{ host: '169.254.169.254', httpsOnly: false }, { host: '[::ffff:a9fe:a9fe]', httpsOnly: false }],
      resolver: async (hostname) => {
        throw new Error(`ENOTFOUND ${hostname}`) // IP literals are never resolved; nothing else is allowed
      },
    })
    try {
      const spellings = ['http://169.254.169.254/', 'http://2852039166/', 'http://0xa9fea9fe/', 'http://0xa9.0xfe.0xa9.0xfe/',
        'http://0251.0376.0251.0376/', 'http://169.254.43518/', 'http://[::ffff:169.254.169.254]/']
      let ok = true
      for (const url of spellings) {
        const d = await permissive.explain({ url }, { capsuleId: 'explain' })
        const a = d.addresses?.[0]
        const embedded = a?.embedded?.map((e) => ` wraps ${e.address} ${e.class} (${e.form})`).join('') ?? ''
        console.log(`      ${url.padEnd(34)} -> ${d.allowed ? 'allowed' : d.code} by ${d.decidedBy}${a ? `: ${a.address} ${a.class}${embedded}` : ''}`)
        ok &&= !d.allowed && d.code === 'blocked_address'
      }
      return { ok, detail: `all ${spellings.length} spellings ${ok ? 'are' : 'are NOT all'} blocked_address, even though a rule allows the host` }
    } finally {
      await permissive.close()
    }
  })

  await step("5. a plugin built with Extism's Rust PDK (http.wasm): its standard HTTP goes through the same rules", async () => {
    const wasm = new URL('http.wasm', extismPlugins)
    if (!existsSync(wasm)) return { ok: true, detail: `skipped: ${wasm.pathname} is not there (the fixtures folder beside the project)` }
    const plugin = await runtime.load({ wasm, id: 'extism-rust-http' })
    const before = events.length
    const body = JSON.parse((await plugin.call('http_request', { url: `${base}/api/users?page=2` })).text())
    const denied = await plugin.call('http_request', { url: 'https://example.com/' }).then(() => undefined, (e) => e)
    const [allowedEvent, deniedEvent] = events.slice(before)
    const ok = body.users?.length === PAGES[1].users.length && allowedEvent?.abi === 'extism' && allowedEvent.allowed &&
      denied?.hostCode === 'denied' && deniedEvent?.abi === 'extism' && !deniedEvent.allowed
    await plugin.unload()
    return { ok, detail: `page 2: ${body.users?.length} users (audit abi ${allowedEvent?.abi}); example.com: ${denied?.code} / ${denied?.hostCode}: ${denied?.message}` }
  })

  await step('6. a WASI plugin (capsules/wasi-stdio): no file system, its stdout and stderr arrive as log lines', async () => {
    const plugin = await runtime.load({ wasm: capsuleWasm('wasi-stdio'), id: 'wasi-stdio' })
    const before = logLines.length
    const output = (await plugin.call('speak')).text()
    const lines = logLines.slice(before).map((l) => `${l.level}: ${l.message}`)
    await plugin.unload()
    const expected = ['stdout: out one', 'stdout: out two', 'stderr: err one', 'stdout: partial']
    const ok = output === 'spoken' && expected.every((line) => lines.includes(line))
    return { ok, detail: `output ${JSON.stringify(output)}; ${lines.length} lines: ${lines.join(' | ')}` }
  })
} catch (error) {
  // Loading failed, or a step broke the demo itself.
  console.error(`\nthe demo could not run: ${error instanceof Error ? error.stack : String(error)}`)
  results.push({ step: 'demo setup', ok: false })
} finally {
  await runtime.close()
  await safeFetch.close()
  upstream.closeAllConnections()
  await new Promise((resolve) => upstream.close(() => resolve(undefined)))
}

const failed = results.filter((r) => !r.ok).length
const strayLookups = lookups.filter((name) => !(name in resolverTable))
console.log(`\nnames resolved (from the demo table only): ${[...new Set(lookups)].join(', ') || 'none'}${strayLookups.length ? `; unexpected: ${strayLookups.join(', ')}` : ''}`)
console.log(`${results.length - failed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
// Everything is closed, so the process ends now; if something still holds it open, say so and stop.
setTimeout(() => {
  console.error('something kept the process alive after close; exiting')
  process.exit(1)
}, 3_000).unref()
