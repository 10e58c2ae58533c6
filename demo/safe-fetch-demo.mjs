// @ts-check
// The `npm start` demo: the safe fetch against a local HTTPS upstream, and the requests it refuses.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { createSafeFetch } from '../dist/index.js'

const fixture = (name) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url))
const DOWNLOAD_BYTES = 64 * 1024 * 1024

// A deterministic 64 MiB body and its digest, known before it is sent.
const download = Buffer.alloc(DOWNLOAD_BYTES)
for (let i = 0, x = 0x12345678; i < DOWNLOAD_BYTES; i += 4) {
  x ^= x << 13; x ^= x >>> 17; x ^= x << 5
  download.writeInt32LE(x | 0, i)
}
const downloadSha256 = createHash('sha256').update(download).digest('hex')

const users = Array.from({ length: 5 }, (_, i) => ({ id: i + 1, name: `user-${i + 1}` }))
const upstream = createServer({ cert: fixture('server.pem'), key: fixture('server-key.pem') }, (req, res) => {
  const url = new URL(req.url ?? '/', 'https://demo.test')
  if (url.pathname === '/api/users') {
    res.setHeader('content-type', 'application/json')
    return void res.end(JSON.stringify({ users, total: users.length }))
  }
  if (url.pathname === '/download') {
    res.setHeader('content-type', 'application/octet-stream')
    res.setHeader('content-length', DOWNLOAD_BYTES)
    return void res.end(download)
  }
  res.statusCode = 404
  res.end('not found')
})
await new Promise((resolve) => upstream.listen(0, '127.0.0.1', () => resolve(undefined)))
const port = /** @type {import('node:net').AddressInfo} */ (upstream.address()).port

const resolverTable = { 'demo.test': ['127.0.0.1'], 'intranet.demo.test': ['10.0.0.8'] }
const safeFetch = createSafeFetch({
  rules: [{ host: 'demo.test', port }, { host: '*.demo.test', port }],
  // The demo's names resolve from this table; nothing is looked up in real DNS.
  resolver: async (hostname) => {
    const answer = resolverTable[/** @type {keyof typeof resolverTable} */ (hostname)]
    if (!answer) throw new Error(`ENOTFOUND ${hostname}`)
    return answer
  },
  // The local upstream lives on loopback, which is blocked unless exempted: exempt exactly it.
  addressPolicy: { allow: ['127.0.0.1/32'] },
  tls: { ca: fixture('ca.pem') },
})
const ctx = { capsuleId: 'demo' }
const base = `https://demo.test:${port}`

/** @type {Array<{ step: string, ok: boolean, detail: string }>} */
const results = []
const record = (step, ok, detail) => {
  results.push({ step, ok, detail })
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${step}\n      ${detail}`)
}

// 1. A buffered JSON call.
{
  const reply = await safeFetch.request({ url: `${base}/api/users?page=1`, headers: { accept: 'application/json' } }, ctx)
  const ok = !('error' in reply) && reply.status === 200 && JSON.parse(String(reply.body)).total === users.length
  record('buffered JSON call', ok, 'error' in reply ? JSON.stringify(reply.error) : `${reply.status}, ${String(reply.body).length} bytes, ${reply.meta.elapsedMs} ms`)
}

// 2. A 64 MiB streamed download, checksum verified.
{
  const started = performance.now()
  const stream = await safeFetch.stream({ url: `${base}/download` }, ctx)
  if ('error' in stream) {
    record('64 MiB streamed download', false, JSON.stringify(stream.error))
  } else {
    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of stream) {
      hash.update(chunk)
      bytes += chunk.byteLength
    }
    const seconds = (performance.now() - started) / 1000
    const digest = hash.digest('hex')
    record('64 MiB streamed download', bytes === DOWNLOAD_BYTES && digest === downloadSha256,
      `${bytes} bytes in ${seconds.toFixed(2)} s (${(bytes / 1048576 / seconds).toFixed(0)} MiB/s), sha256 ${digest.slice(0, 16)}... ${digest === downloadSha256 ? 'matches' : 'DOES NOT match'}`)
  }
}

// 3. Refusals: each must fail with the expected code before any connection is made.
const refusals = [
  ['a name that resolves to a private address', `https://intranet.demo.test:${port}/admin`, 'blocked_address'],
  ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/', 'denied'],
  ['a host outside the rules', 'https://example.com/', 'denied'],
  ['a loopback address spelled in hex', 'http://0x7f000001/', 'denied'],
]
for (const [step, url, expected] of refusals) {
  const reply = await safeFetch.request({ url }, ctx)
  const code = 'error' in reply ? reply.error.code : `status ${reply.status}`
  const explained = await safeFetch.explain({ url }, ctx)
  record(`refused: ${step}`, code === expected, `${url} -> ${code} (decided by ${explained.decidedBy}: ${explained.reason})`)
}

// 4. Even a rule that names the metadata address cannot open it: the address policy is below the rules.
{
  const permissive = createSafeFetch({ rules: { host: '169.254.169.254', httpsOnly: false } })
  const spellings = ['http://169.254.169.254/', 'http://2852039166/', 'http://0xa9.0xfe.0xa9.0xfe/', 'http://0251.0376.0251.0376/']
  const decisions = await Promise.all(spellings.map((url) => permissive.explain({ url }, ctx)))
  record('metadata address in four spellings, even when a rule allows it', decisions.every((d) => d.code === 'blocked_address'),
    decisions.map((d, i) => `${spellings[i]} -> ${d.code} (${d.addresses?.[0]?.class})`).join('; '))
  await permissive.close()
}

await safeFetch.close()
upstream.close()
const failed = results.filter((r) => !r.ok).length
console.log(`\n${results.length - failed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
