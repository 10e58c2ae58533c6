// A plugin written in C (clang + wasi-libc, built by capsules/build-c.mjs): Extism's kernel HTTP through the rules, stdout/stderr as log lines, libc's view of the sandbox, in each isolation mode.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRuntime, type AuditEvent, type CapsuleLogEntry, type Runtime } from '../src/index.js'
import { ALL_ISOLATIONS, lacksJspiFor } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

const PLUGIN = fileURLToPath(new URL('../capsules/dist/c-http.wasm', import.meta.url))
const built = existsSync(PLUGIN)
const notBuilt = built ? '' : ' (skipped: capsules/dist/c-http.wasm was not built: no clang with wasi-libc here; .ci/run installs them)'
/** wasi-libc's errno for a path with no preopened directory to resolve it in. */
const ENOTCAPABLE = 76

let server: TestServer
beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/missing') return void res.writeHead(404).end('no such thing')
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ from: 'upstream', path: req.url }))
  })
})
const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
  await closeAllServers()
})

for (const isolation of ALL_ISOLATIONS) {
  const noJspi = lacksJspiFor(isolation)
  const reason = noJspi ? ` (skipped: Node ${process.version} has no JSPI)` : notBuilt
  describe.skipIf(noJspi || !built)(`a C plugin (wasi-libc), isolation ${isolation}${reason}`, () => {
    const events: AuditEvent[] = []
    const logs: CapsuleLogEntry[] = []
    const load = async () => {
      const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, onRequest: (e) => void events.push(e) })
      const runtime = createRuntime({ fetch, isolation, onLog: (entry) => void logs.push(entry) })
      runtimes.push(runtime)
      return runtime.load({ wasm: PLUGIN, id: `c-http-${isolation}` })
    }

    test('fetch: a GET the rules allow, through the kernel http_request; its printf arrives as a stdout line', async () => {
      const plugin = await load()
      const url = `http://api.test:${server.port}/hello`
      const [status, body] = (await plugin.call('fetch', url)).text().split('\n')
      expect(status).toBe('200')
      expect(JSON.parse(body!)).toEqual({ from: 'upstream', path: '/hello' })
      expect(events.at(-1)).toMatchObject({ capsuleId: `c-http-${isolation}`, abi: 'extism', allowed: true, status: 200, decidedBy: 'rule:api.test' })
      expect(logs.at(-1)).toEqual({ capsuleId: `c-http-${isolation}`, level: 'stdout', message: `fetching ${url}` })
    })

    test('fetch: a 404 is a status, not an error; the plugin says so on stderr', async () => {
      const plugin = await load()
      expect((await plugin.call('fetch', `http://api.test:${server.port}/missing`)).text()).toBe('404\nno such thing')
      expect(logs.at(-1)).toEqual({ capsuleId: `c-http-${isolation}`, level: 'stderr', message: 'status 404' })
    })

    test.each([
      { name: 'a host outside the rules', url: 'http://other.test/', code: 'denied', decidedBy: 'rules' },
      { name: 'another port of the allowed host', url: 'http://api.test:1/', code: 'denied', decidedBy: 'rules' },
      { name: 'the metadata address', url: 'http://169.254.169.254/latest/meta-data/', code: 'denied', decidedBy: 'rules' },
    ])('fetch refused: $name -> $code, the call fails with the code first', async ({ url, code, decidedBy }) => {
      const plugin = await load()
      const seen = server.requests.length
      await expect(plugin.call('fetch', url)).rejects.toMatchObject({ code: 'capsule_failed', hostCode: code, message: expect.stringContaining(`" failed: ${code}: `) })
      expect(events.at(-1)).toMatchObject({ abi: 'extism', allowed: false, code, decidedBy })
      expect(server.requests.length).toBe(seen)
    })

    test("sandbox: libc's fopen and opendir find no file system, and getenv no environment", async () => {
      const plugin = await load()
      expect((await plugin.call('sandbox')).json()).toEqual({ open: ENOTCAPABLE, opendir: ENOTCAPABLE, home: 'unset' })
    })

    test("a plugin's own error (error_set, return 1) fails the call with its text", async () => {
      const plugin = await load()
      await expect(plugin.call('fetch', 'http://api.test/"')).rejects.toMatchObject({
        code: 'capsule_failed',
        hostCode: undefined,
        message: expect.stringContaining('the URL may not hold a quote or a backslash'),
      })
    })
  })
}
