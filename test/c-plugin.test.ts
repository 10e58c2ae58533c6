// A plugin written in C (clang + wasi-libc, built by capsules/build-c.mjs): Extism's kernel HTTP through the rules, stdout/stderr as log lines, libc's view of the sandbox, in each isolation mode.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { CapsuleLogEntry } from '../src/index.js'
import { createTestHost, type TestHost } from '../src/testing/index.js'
import { ALL_ISOLATIONS, lacksJspiFor } from './helpers/capsules.js'

const PLUGIN = fileURLToPath(new URL('../capsules/dist/c-http.wasm', import.meta.url))
const built = existsSync(PLUGIN)
const notBuilt = built ? '' : ' (skipped: capsules/dist/c-http.wasm was not built: no clang with wasi-libc here; .ci/run installs them)'
/** wasi-libc's errno for a path with no preopened directory to resolve it in. */
const ENOTCAPABLE = 76

const MOCKS = {
  upstreams: {
    'api.test': {
      routes: [
        { path: '/missing', status: 404, body: 'no such thing' },
        { path: '/hello', json: { from: 'upstream', path: '/hello' } },
      ],
    },
  },
}

for (const isolation of ALL_ISOLATIONS) {
  const noJspi = lacksJspiFor(isolation)
  const reason = noJspi ? ` (skipped: Node ${process.version} has no JSPI)` : notBuilt
  describe.skipIf(noJspi || !built)(`a C plugin (wasi-libc), isolation ${isolation}${reason}`, () => {
    const logs: CapsuleLogEntry[] = []
    let host: TestHost
    beforeAll(async () => {
      host = await createTestHost({ mocks: MOCKS, isolation, onLog: (entry) => void logs.push(entry) })
    })
    afterAll(() => host.close())
    // A fresh capsule for each test (run() loads once per module and options).
    let loads = 0
    const run = (name: string, input?: string) => host.run(PLUGIN, name, input, { id: `c-http-${isolation}-${++loads}` })

    test('fetch: a GET the rules allow, through the kernel http_request; its printf arrives as a stdout line', async () => {
      const url = host.url('api.test', '/hello')
      const result = await run('fetch', url)
      const [status, body] = result.output.split('\n')
      expect(status).toBe('200')
      expect(JSON.parse(body!)).toEqual({ from: 'upstream', path: '/hello' })
      expect(host.upstream('api.test').received.at(-1)).toMatchObject({ method: 'GET', path: '/hello', route: 1 })
      expect(result.audit).toEqual([expect.objectContaining({ capsuleId: `c-http-${isolation}-${loads}`, abi: 'extism', allowed: true, status: 200, decidedBy: 'rule:api.test' })])
      expect(logs.at(-1)).toEqual({ capsuleId: `c-http-${isolation}-${loads}`, level: 'stdout', message: `fetching ${url}` })
    })

    test('fetch: a 404 is a status, not an error; the plugin says so on stderr', async () => {
      expect((await run('fetch', host.url('api.test', '/missing'))).output).toBe('404\nno such thing')
      expect(logs.at(-1)).toEqual({ capsuleId: `c-http-${isolation}-${loads}`, level: 'stderr', message: 'status 404' })
    })

    test.each([
      { name: 'a host outside the rules', url: 'http://other.test/', code: 'denied', decidedBy: 'rules' },
      { name: 'another port of the allowed host', url: 'http://api.test:1/', code: 'denied', decidedBy: 'rules' },
      { name: 'the metadata address', url: 'http://169.254.169.254/latest/meta-data/', code: 'denied', decidedBy: 'rules' },
    ])('fetch refused: $name -> $code, the call fails with the code first', async ({ url, code, decidedBy }) => {
      const seen = host.upstream('api.test').received.length
      const result = await run('fetch', url)
      expect(result).toMatchObject({ status: 'failed', error: { code: 'capsule_failed', hostCode: code, message: expect.stringContaining(`" failed: ${code}: `) } })
      expect(result.audit).toEqual([expect.objectContaining({ abi: 'extism', allowed: false, code, decidedBy })])
      expect(host.upstream('api.test').received.length).toBe(seen)
    })

    test("sandbox: libc's fopen and opendir find no file system, and getenv no environment", async () => {
      expect(JSON.parse((await run('sandbox')).output)).toEqual({ open: ENOTCAPABLE, opendir: ENOTCAPABLE, home: 'unset' })
    })

    test("a plugin's own error (error_set, return 1) fails the call with its text", async () => {
      const result = await run('fetch', 'http://api.test/"')
      expect(result).toMatchObject({ status: 'failed', error: { code: 'capsule_failed', message: expect.stringContaining('the URL may not hold a quote or a backslash') } })
      expect(result.error).not.toHaveProperty('hostCode')
    })
  })
}
