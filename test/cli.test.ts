// Integration: the capsule-host CLI (the built dist/cli.js) run as a child process against loopback servers.
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { AuditEvent } from '../src/audit.js'
import { PIPE_COLUMNS, screenOf, summaryLines } from '../src/cli/summary.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

function cliWith(stdin: string | undefined, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
    if (stdin !== undefined) child.stdin?.end(stdin)
    else child.stdin?.end()
  })
}

const cli = (...args: string[]) => cliWith(undefined, args)

let server: TestServer
beforeAll(async () => {
  server = await startServer((req, res) => res.end(req.url === '/big' ? Buffer.alloc(5000, 97) : JSON.stringify({ path: req.url })))
})
afterAll(closeAllServers)

describe('usage', () => {
  test.each([[['--help']], [['run', '--help']], [['explain', '-h']]])('%j prints help and exits 0', async (args) => {
    const { code, stdout } = await cli(...args)
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Usage: capsule-host/)
  })

  test.each([
    [[], 'no command given'],
    [['launch'], 'unknown command "launch"'],
    [['run'], 'run needs a capsule file and an export name'],
    [['run', 'x.wasm'], 'run needs a capsule file and an export name'],
    [['run', 'x.wasm', 'f', 'extra'], 'run needs a capsule file and an export name'],
    [['run', 'x.wasm', 'f', '--bogus'], "Unknown option '--bogus'"],
    [['run', 'x.wasm', 'f', '--isolation', 'thread'], '--isolation thread: expected worker, inline or pool'],
    [['run', 'x.wasm', 'f', '--timeout', 'soon'], '--timeout soon: expected a whole number'],
    [['run', 'x.wasm', 'f', '--input', '@/nonexistent/input.json'], 'cannot read input file'],
    [['explain'], 'explain needs exactly one URL'],
    [['explain', 'https://a.test/', '--resolve', 'nonsense'], '--resolve nonsense: expected NAME=IP'],
    [['explain', 'https://a.test/', '--rules', '/nonexistent/rules.json'], 'cannot read rules file'],
    [['explain', 'https://a.test/', '--allow', 'http://[bad'], '--allow http://[bad: not a host or URL'],
    [['explain', 'https://a.test/', '--allow', 'bad host!'], 'rules[0]'],
    [['explain', 'https://a.test/', '--allow-address', 'nonsense'], 'addressPolicy.unsafeAllow: "nonsense" is not a CIDR'],
    [['run', 'x.wasm', 'f', '--input', 'a', '--stdin'], 'give the input with --input or --stdin, not both'],
    [['run', 'x.wasm', 'f', '--config', 'region'], '--config region: expected KEY=VALUE'],
    [['run', 'x.wasm', 'f', '--config', '=eu'], '--config =eu: expected KEY=VALUE'],
    [['explain', 'https://a.test/', '--allow', 'api.test:8443'], '--allow api.test:8443: give a port as a URL, such as https://api.test:8443 (or http://...)'],
    [['run', 'x.wasm', 'f', '--wasi-env', 'TZ'], '--wasi-env TZ: expected NAME=VALUE'],
    [['run', 'x.wasm', 'f', '--log-level', 'loud'], '--log-level loud: expected one of trace, debug, info, warn, error'],
    [['run', 'x.wasm', 'f', '--memory-max', '0'], '--memory-max 0: expected a whole number of 64 KiB pages from 1 to 65536'],
    [['run', 'x.wasm', 'f', '--memory-max', '65537'], '--memory-max 65537: expected a whole number of 64 KiB pages from 1 to 65536'],
    [['run', 'x.wasm', 'f', '--http-response-max', '1.5'], '--http-response-max 1.5: expected a whole number of bytes'],
    [['run', 'x.wasm', 'f', '--timeout', '0'], '--timeout 0: expected a whole number of milliseconds from 1 to 2147483647'],
    [['run', '--manifest', 'm.json'], 'run --manifest needs an export name (and, optionally, the capsule file before it)'],
    [['run', 'a', 'b', 'c', '--manifest', 'm.json'], 'run --manifest needs an export name'],
    [['run', 'plugin.json', 'f'], 'plugin.json looks like a manifest, not a module: give it as --manifest plugin.json'],
    [['explain', 'https://a.test/', '--allow', 'https://a.test/v1/*'], '--allow https://a.test/v1/*: "*" is not a route pattern; use /v1/:name for one segment, or /v1/** for every path under /v1'],
    [['explain', 'https://a.test/', '--allow', 'https://a.test/*.json'], '"*.json" is not a route pattern; use /:name for one segment, or /** for every path under /'],
    [['explain', 'https://a.test/', '--allow', 'https://a.test/v1?x=1'], '--allow https://a.test/v1?x=1: a query or fragment cannot be allowed'],
    [['explain', 'https://a.test/', '--allow', 'https://a.test/#top'], 'a query or fragment cannot be allowed'],
    [['explain', 'https://a.test/', '--allow', 'https://a.test/files/:ext(png|'], 'rules[0]'],
  ])('%j is a usage error with exit code 2', async (args, message) => {
    const { code, stderr } = await cli(...args)
    expect(code).toBe(2)
    expect(stderr).toContain(message)
    expect(stderr).toContain('Usage: capsule-host')
  })
})

describe('--version', () => {
  test('prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    expect(await cli('--version')).toMatchObject({ code: 0, stdout: `capsule-host ${version}\n` })
  })
})

describe('--allow with a path becomes a route', () => {
  const explainAt = (url: string, ...allow: string[]) =>
    cli('explain', url, ...allow.flatMap((a) => ['--allow', a]), '--resolve', 'api.test=127.0.0.1', '--allow-address', '127.0.0.1/32', '--json')

  // decidedBy: the rule whose origin matched (and whose routes then refused), or "rules" when no origin did.
  test.each<[string, string[], boolean, string | undefined, string]>([
    ['https://api.test/v1/users', ['https://api.test/v1/**'], true, '/v1/**', 'rule:api.test'],
    ['https://api.test/v1', ['https://api.test/v1/**'], true, '/v1/**', 'rule:api.test'],
    ['https://api.test/v2/users', ['https://api.test/v1/**'], false, undefined, 'rule:api.test'],
    ['https://api.test/v1/users/7', ['https://api.test/v1/users/:id'], true, '/v1/users/:id', 'rule:api.test'],
    ['https://api.test/v1/users/7/x', ['https://api.test/v1/users/:id'], false, undefined, 'rule:api.test'],
    ['https://api.test/v1/users', ['api.test/v1/**'], true, '/v1/**', 'rule:api.test'],
    ['http://api.test/v1/users', ['api.test/v1/**'], false, undefined, 'rules'],
    ['https://api.test/v2/x', ['https://api.test/v1/**', 'https://api.test/v2/**'], true, '/v2/**', 'rule:api.test'],
    ['https://api.test/v3/x', ['https://api.test/v1/**', 'https://api.test'], true, undefined, 'rule:api.test'],
    ['https://api.test/', ['https://api.test/'], true, undefined, 'rule:api.test'],
    // One origin however it is spelled, in either order: a bare host allows every path of it.
    ['https://api.test/other', ['https://api.test/v1/**', 'api.test'], true, undefined, 'rule:api.test'],
    ['https://api.test/other', ['api.test', 'https://api.test/v1/**'], true, undefined, 'rule:api.test'],
    ['https://api.test/other', ['https://api.test:443/v1/**', 'api.test'], true, undefined, 'rule:api.test'],
  ])('%s with --allow %j: allowed %s', async (url, allow, allowed, route, decidedBy) => {
    const { code, stdout } = await explainAt(url, ...allow)
    const decision = JSON.parse(stdout)
    expect(decision).toMatchObject({ allowed, url, decidedBy })
    expect(decision.route).toBe(route)
    expect(code).toBe(allowed ? 0 : 1)
    if (!allowed) expect(decision.code).toBe('denied')
  })
})

describe('explain --json', () => {
  test('prints the decision as one JSON object: method, url, addresses', async () => {
    const { code, stdout } = await cli('explain', 'http://169.254.169.254/latest/meta-data/', '--allow', 'http://169.254.169.254', '--json', '--method', 'post')
    expect(code).toBe(1)
    expect(stdout.trim().split('\n')).toHaveLength(1)
    expect(JSON.parse(stdout)).toMatchObject({
      method: 'POST',
      url: 'http://169.254.169.254/latest/meta-data/',
      allowed: false,
      code: 'blocked_address',
      decidedBy: 'address-policy',
      addresses: [{ address: '169.254.169.254', class: 'link-local' }],
    })
  })
})

describe('explain', () => {
  test('the metadata address is refused even when allowed by name, exit 1', async () => {
    const { code, stdout } = await cli('explain', 'http://169.254.169.254/latest/meta-data/', '--allow', 'http://169.254.169.254')
    expect(code).toBe(1)
    expect(stdout).toContain('refused (blocked_address)')
    expect(stdout).toContain('decided by: address-policy')
    expect(stdout).toContain('address: 169.254.169.254 (link-local)')
  })

  test('a host outside the rules is denied', async () => {
    const { code, stdout } = await cli('explain', 'https://elsewhere.test/x', '--allow', 'api.test', '--method', 'post')
    expect(code).toBe(1)
    expect(stdout).toContain('refused (denied): POST https://elsewhere.test/x')
    expect(stdout).toContain('decided by: rules')
    expect(stdout).toContain('reason: no rule matches the host')
    // The stable reason alone does not say which host: the detail must be printed too.
    expect(stdout).toContain('no rule allows host elsewhere.test')
  })

  test('an allowed request names the rule and the addresses, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capsule-host-'))
    const rules = join(dir, 'rules.json')
    writeFileSync(rules, JSON.stringify({ rules: [{ host: 'api.test', httpsOnly: false, port: server.port }] }))
    const { code, stdout } = await cli('explain', `http://api.test:${server.port}/`, '--rules', rules, '--resolve', 'api.test=127.0.0.1', '--allow-address', '127.0.0.1/32')
    expect(code).toBe(0)
    expect(stdout).toContain('allowed: GET')
    expect(stdout).toContain('decided by: rule:api.test')
    expect(stdout).toContain('address: 127.0.0.1 (loopback)')
  })
})

describe('run', () => {
  test('prints the output on stdout and one decision line per request on stderr', async () => {
    const input = JSON.stringify({ url: `http://api.test:${server.port}/hello?secret=1` })
    const { code, stdout, stderr } = await cli(
      'run', capsulePath('probe'), 'request', '--input', input,
      '--allow', `http://api.test:${server.port}`, '--resolve', 'api.test=127.0.0.1', '--allow-address', '127.0.0.1/32',
    )
    expect(code).toBe(0)
    expect(JSON.parse(JSON.parse(stdout).body)).toEqual({ path: '/hello?secret=1' })
    expect(stderr).toMatch(new RegExp(`^allowed GET http://api\\.test:${server.port}/hello\\?… -> 200 \\(rule:api\\.test, \\d+ ms\\)\\n$`))
    expect(stderr).not.toContain('secret')
  })

  test('a refused request is a decision line too; the capsule still gets its JSON error', async () => {
    const { code, stdout, stderr } = await cli('run', capsulePath('probe'), 'request', '--input', '{"url":"http://169.254.169.254/latest/meta-data/"}')
    expect(code).toBe(0)
    expect(JSON.parse(stdout).error.code).toBe('denied')
    expect(stderr).toContain('refused GET http://169.254.169.254/latest/meta-data/ -> denied')
  })

  test('--verbose prints every audit event as a JSON line instead of decision lines', async () => {
    const { code, stderr } = await cli('run', capsulePath('probe'), 'request', '--input', '{"url":"http://169.254.169.254/latest/meta-data/?x=1"}', '--verbose')
    expect(code).toBe(0)
    const events = stderr.trim().split('\n').map((line) => JSON.parse(line))
    expect(events).toEqual([
      expect.objectContaining({
        allowed: false,
        decidedBy: 'default',
        code: 'denied',
        reason: 'nothing is configured',
        detail: 'no rule, policy or gate is configured, so nothing is allowed',
        redactions: 0,
        url: 'http://169.254.169.254/latest/meta-data/?…',
      }),
    ])
  })

  test('input from a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capsule-host-'))
    writeFileSync(join(dir, 'in.txt'), 'from a file')
    const { code, stdout } = await cli('run', capsulePath('probe'), 'echo', '--input', `@${join(dir, 'in.txt')}`)
    expect(code).toBe(0)
    expect(stdout).toBe('from a file')
  })

  test('a failing call exits 1 with its error code', async () => {
    const { code, stderr } = await cli('run', capsulePath('probe'), 'no_such_thing')
    expect(code).toBe(1)
    expect(stderr).toContain('capsule-host: no_such_export')
  })

  test('a call past --timeout exits 1 with call_timeout', async () => {
    const { code, stderr } = await cli('run', capsulePath('probe'), 'spin', '--timeout', '300')
    expect(code).toBe(1)
    expect(stderr).toContain('call_timeout')
  })
})

describe('run, extism call parity', () => {
  const loopback = () => ['--allow', `http://api.test:${server.port}`, '--resolve', 'api.test=127.0.0.1', '--allow-address', '127.0.0.1/32']

  test('--stdin: the input is read from stdin', async () => {
    const { code, stdout } = await cliWith('from stdin \u00e9', ['run', capsulePath('probe'), 'echo', '--stdin'])
    expect(code).toBe(0)
    expect(stdout).toBe('from stdin \u00e9')
  })

  test('--config KEY=VALUE, repeatable; a value may hold "="', async () => {
    const region = await cli('run', capsulePath('probe'), 'config_get', '--input', 'region', '--config', 'region=eu', '--config', 'token=a=b')
    expect(region).toMatchObject({ code: 0, stdout: 'eu' })
    expect((await cli('run', capsulePath('probe'), 'config_get', '--input', 'token', '--config', 'token=a=b')).stdout).toBe('a=b')
    // A name like any other, never the prototype of the config object.
    expect((await cli('run', capsulePath('probe'), 'config_get', '--input', '__proto__', '--config', '__proto__=x')).stdout).toBe('x')
  })

  test('--manifest with an Extism manifest: its allowed_hosts narrow --allow, and the module may be left out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capsule-host-'))
    copyFileSync(capsulePath('probe'), join(dir, 'probe.wasm'))
    writeFileSync(join(dir, 'plugin.json'), JSON.stringify({ wasm: [{ path: 'probe.wasm' }], allowed_hosts: ['other.test'], config: { region: 'us' } }))
    const denied = await cli('run', '--manifest', join(dir, 'plugin.json'), 'request', '--input', JSON.stringify({ url: `http://api.test:${server.port}/` }), ...loopback())
    expect(denied.code).toBe(0)
    expect(JSON.parse(denied.stdout).error.code).toBe('denied')
    expect(denied.stderr).toContain("the capsule's manifest does not declare")
    const config = await cli('run', '--manifest', join(dir, 'plugin.json'), 'config_get', '--input', 'region', '--config', 'region=eu')
    expect(config).toMatchObject({ code: 0, stdout: 'eu' })
  })

  test('--manifest with a capsule.json and the module given first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capsule-host-'))
    writeFileSync(join(dir, 'capsule.json'), JSON.stringify({ name: 'probe', version: '1.0.0', capabilities: { http: ['api.test'] } }))
    const { code, stdout } = await cli('run', capsulePath('probe'), 'request', '--manifest', join(dir, 'capsule.json'), '--input', JSON.stringify({ url: `http://api.test:${server.port}/x` }), ...loopback())
    expect(code).toBe(0)
    expect(JSON.parse(JSON.parse(stdout).body)).toEqual({ path: '/x' })
  })

  test('a refused Extism manifest exits 1 with load_failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capsule-host-'))
    writeFileSync(join(dir, 'plugin.json'), JSON.stringify({ wasm: [{ path: capsulePath('probe') }], allowed_paths: { '.': '/' } }))
    const { code, stderr } = await cli('run', '--manifest', join(dir, 'plugin.json'), 'echo')
    expect(code).toBe(1)
    expect(stderr).toContain('capsule-host: load_failed: invalid Extism manifest: "allowed_paths"')
  })

  test('--http-response-max lowers the response cap', async () => {
    const { code, stdout } = await cli('run', capsulePath('probe'), 'request', '--input', JSON.stringify({ url: `http://api.test:${server.port}/big` }), '--http-response-max', '1000', ...loopback())
    expect(code).toBe(0)
    expect(JSON.parse(stdout).error.code).toBe('too_large')
  })

  test('--memory-max in pages: a capsule that grows past it is stopped with memory_limit', async () => {
    const { code, stderr } = await cli('run', capsulePath('probe'), 'grow', '--memory-max', '64')
    expect(code).toBe(1)
    expect(stderr).toContain('capsule-host: memory_limit')
  })

  test('--log-level prints the capsule\'s log lines at that level and above on stderr; without it, none', async () => {
    const info = await cli('run', capsulePath('hostile'), 'log_flood', '--input', '2:hello', '--log-level', 'info')
    expect(info).toMatchObject({ code: 0, stdout: '2' })
    expect(info.stderr).toBe('[info] hello\n[info] hello\n')
    const error = await cli('run', capsulePath('hostile'), 'log_flood', '--input', '2:hello', '--log-level', 'error')
    expect(error.stderr).toBe('')
    const none = await cli('run', capsulePath('hostile'), 'log_flood', '--input', '2:hello')
    expect(none.stderr).toBe('')
  })
})

describe('run, WASI grants', () => {
  const wasiCapsule = existsSync(new URL('../capsules/dist/wasi-stdio.wasm', import.meta.url))

  test.skipIf(!wasiCapsule)('--wasi-arg and --wasi-env are what the module sees; nothing without them', async () => {
    const granted = await cli('run', capsulePath('wasi-stdio'), 'environment', '--wasi-arg', 'tool', '--wasi-arg=--flag', '--wasi-env', 'TZ=UTC', '--wasi-env', 'A=b=c')
    expect(granted.code).toBe(0)
    expect(JSON.parse(granted.stdout)).toMatchObject({ args: ['tool', '--flag'], env: ['TZ=UTC', 'A=b=c'] })
    const bare = await cli('run', capsulePath('wasi-stdio'), 'environment')
    expect(JSON.parse(bare.stdout)).toMatchObject({ args: [], env: [] })
  })

  test.skipIf(!wasiCapsule)('--log-level shows WASI stdout and stderr lines', async () => {
    const { code, stdout, stderr } = await cli('run', capsulePath('wasi-stdio'), 'speak', '--log-level', 'error')
    expect(code).toBe(0)
    expect(stdout).toBe('spoken')
    expect(stderr).toContain('[stdout] out one')
    expect(stderr).toContain('[stderr] err one')
  })
})

describe('run --mock', () => {
  const mockFile = (description: unknown) => {
    const file = join(mkdtempSync(join(tmpdir(), 'capsule-host-')), 'mocks.json')
    writeFileSync(file, typeof description === 'string' ? description : JSON.stringify(description))
    return file
  }
  const MOCKS = {
    upstreams: {
      'api.test': {
        routes: [
          { path: '/hello', json: { hi: true } },
          { path: '/chunks', chunks: [{ data: 'ab' }, { data: 'cdef' }] },
        ],
      },
      'secure.test': { tls: true, routes: [{ path: '/s', body: 'over tls' }] },
    },
  }
  const runProbe = (url: string, ...flags: string[]) => cli('run', capsulePath('probe'), 'request', '--input', JSON.stringify({ url }), '--mock', mockFile(MOCKS), ...flags)

  test('a mock name on its default port reaches its upstream; no --allow, --resolve or --allow-address', async () => {
    const { code, stdout, stderr } = await runProbe('http://api.test/hello')
    expect(code).toBe(0)
    const reply = JSON.parse(stdout)
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body)).toEqual({ hi: true })
    // Decided by the rule for the default port, whose middleware sends the request on to the server's port.
    expect(stderr).toMatch(/^allowed GET http:\/\/api\.test\/hello -> 200 \(rule:api\.test@default-port, \d+ ms\)\n$/)
  })

  test('an --allow of a mock name too: the mock still answers', async () => {
    const { code, stdout } = await runProbe('http://api.test/hello', '--allow', 'http://api.test')
    expect(code).toBe(0)
    expect(JSON.parse(JSON.parse(stdout).body)).toEqual({ hi: true })
  })

  test('an HTTPS upstream: its CA is trusted', async () => {
    const { code, stdout } = await runProbe('https://secure.test/s')
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({ status: 200, body: 'over tls' })
  })

  test('an unscripted path gets the mock\'s 404, which names it', async () => {
    const { code, stdout } = await runProbe('http://api.test/nothing')
    expect(code).toBe(0)
    const reply = JSON.parse(stdout)
    expect(reply.status).toBe(404)
    expect(reply.body).toContain('/nothing')
  })

  test.each([
    ['a name the mocks do not have', 'https://other.test/x', 'refused GET https://other.test/x -> denied: no rule matches the host'],
    ['a mock name on another scheme', 'https://api.test/hello', 'refused GET https://api.test/hello -> denied'],
    ['a mock name on a port that is not its own', 'http://api.test:8080/hello', 'refused GET http://api.test:8080/hello -> denied'],
  ])('%s is refused, before any lookup', async (_, url, line) => {
    const { code, stdout, stderr } = await runProbe(url)
    expect(code).toBe(0)
    expect(JSON.parse(stdout).error.code).toBe('denied')
    expect(stderr).toContain(line)
  })

  // The loopback exemption is the mock servers' only: --allow of a mock name on another port, or of
  // 127.0.0.1 in any spelling, does not reach the bystander (the suite's server, on a port of its own).
  test.each([
    ['a mock name on the bystander\'s port', (port: number) => `http://api.test:${port}/x`, (port: number) => `api.test is served on port %api (or 80), not ${port}`],
    ['the address, on the bystander\'s port', (port: number) => `http://127.0.0.1:${port}/x`, () => '127.0.0.1 is an address; the test host reaches its upstreams by name only'],
    ['the address as a number', (port: number) => `http://2130706433:${port}/x`, () => '127.0.0.1 is an address; the test host reaches its upstreams by name only'],
  ])('--allow of %s is refused by the gate test-upstreams; the bystander sees nothing', async (_, url, detail) => {
    const seen = server.requests.length
    const { code, stdout, stderr } = await runProbe(url(server.port), '--allow', url(server.port).replace(/\/x$/, ''))
    expect(code).toBe(0)
    expect(JSON.parse(stdout).error.code).toBe('denied')
    const shown = new URL(url(server.port)).href
    expect(stderr).toMatch(new RegExp(`^refused GET ${shown.replace(/[.?*+^$()|[\]\\]/g, '\\$&')} -> denied: refused by a gate: ${detail(server.port).replace(/[.?*+^$()|[\]\\]/g, '\\$&').replace('%api', '\\d+')} \\(gate:test-upstreams, \\d+ ms\\)\n$`))
    expect(server.requests.length).toBe(seen)
  })

  test('a name that is not a mock, resolved to the mocks\' address, is refused at resolution; the bystander sees nothing', async () => {
    const seen = server.requests.length
    const url = `http://other.test:${server.port}/x`
    const { stdout, stderr } = await runProbe(url, '--allow', `http://other.test:${server.port}`, '--resolve', 'other.test=127.0.0.1')
    expect(JSON.parse(stdout).error).toMatchObject({ code: 'dns_failed', message: 'other.test could not be resolved' })
    expect(stderr).toContain(`allowed GET ${url} -> dns_failed: other.test could not be resolved (rule:other.test`)
    expect(server.requests.length).toBe(seen)
    // With the address allowed by a flag of its own, the name reaches it, as it would without --mock.
    const { stdout: allowed } = await runProbe(url, '--allow', `http://other.test:${server.port}`, '--resolve', 'other.test=127.0.0.1', '--allow-address', '127.0.0.1/32')
    expect(JSON.parse(allowed)).toMatchObject({ status: 200, body: '{"path":"/x"}' })
    expect(server.requests.length).toBe(seen + 1)
  })

  test('--allow-address of another range does not open the address the mocks exempt', async () => {
    const seen = server.requests.length
    const url = `http://127.0.0.1:${server.port}/x`
    const { stdout, stderr } = await runProbe(url, '--allow', `http://127.0.0.1:${server.port}`, '--allow-address', '10.0.0.0/8')
    expect(JSON.parse(stdout).error.code).toBe('denied')
    expect(stderr).toContain('refused by a gate: 127.0.0.1 is an address; the test host reaches its upstreams by name only (gate:test-upstreams')
    expect(server.requests.length).toBe(seen)
  })

  test('--allow-address 127.0.0.1/32 of its own: the address is reached, beside the mocks', async () => {
    const seen = server.requests.length
    const url = `http://127.0.0.1:${server.port}/x`
    const { code, stdout } = await runProbe(url, '--allow', `http://127.0.0.1:${server.port}`, '--allow-address', '127.0.0.1/32')
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({ status: 200, body: '{"path":"/x"}' })
    expect(server.requests.length).toBe(seen + 1)
  })

  test.each([
    ['/nonexistent/mocks.json', (file: string) => `--mock ${file}: cannot read the mock file (ENOENT)`],
    [mockFile('{ not json'), (file: string) => `--mock ${file}: not JSON`],
    [mockFile({ upstreams: { 'api.test': { routes: [{ path: '/x', status: 99 }] } } }), (file: string) => `--mock ${file}: upstreams["api.test"].routes[0].status must be from 200 to 599, not 99`],
  ])('a bad mock file %s is a usage error naming it', async (file, message) => {
    const { code, stderr } = await cli('run', capsulePath('probe'), 'echo', '--mock', file)
    expect(code).toBe(2)
    expect(stderr).toContain(`capsule-host: ${message(file)}`)
  })
})

describe('run --summary', () => {
  const withMocks = () => {
    const file = join(mkdtempSync(join(tmpdir(), 'capsule-host-')), 'mocks.json')
    writeFileSync(file, JSON.stringify({ upstreams: { 'api.test': { routes: [{ path: '/chunks', chunks: [{ data: 'ab' }, { data: 'cdef' }] }] } } }))
    return ['--mock', file]
  }

  test('after the decision lines: a table of the requests and a total, with no escape codes in a pipe', async () => {
    const { code, stdout, stderr } = await cli('run', capsulePath('probe'), 'stream', '--input', '{"url":"http://api.test/chunks?token=x"}', '--summary', ...withMocks())
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({ status: 200, bytes: 6 })
    const lines = stderr.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^allowed GET http:\/\/api\.test\/chunks\?… -> 200/)
    // The time column is as wide as its widest cell, which depends on how long the request took.
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^decision  status  bytes  +time  url$/),
      expect.stringMatching(/^-+$/),
      expect.stringMatching(/^allowed   200       6 B  +\d+ ms  GET http:\/\/api\.test\/chunks\?… \(stream\)$/),
      '1 request: 1 answered, 0 failed, 0 refused; 6 B in',
    ])
    expect(stderr).not.toContain('\x1b')
    expect(stderr).not.toContain('token')
  })

  test('with --verbose: the audit JSON lines, then the table', async () => {
    const { code, stderr } = await cli('run', capsulePath('probe'), 'request', '--input', '{"url":"http://169.254.169.254/"}', '--verbose', '--summary')
    expect(code).toBe(0)
    const [json, ...table] = stderr.trimEnd().split('\n')
    expect(JSON.parse(json!)).toMatchObject({ allowed: false, code: 'denied', url: 'http://169.254.169.254/' })
    expect(table[0]).toMatch(/^decision  status  bytes  +time  url$/)
    expect(table[2]).toMatch(/^refused   denied    0 B  +\d+ ms  GET http:\/\/169\.254\.169\.254\/$/)
    expect(table[3]).toBe('1 request: 0 answered, 0 failed, 1 refused; 0 B in')
  })

  test('a call with no request says so', async () => {
    const { code, stderr } = await cli('run', capsulePath('probe'), 'echo', '--input', 'x', '--summary')
    expect(code).toBe(0)
    expect(stderr.trimEnd().split('\n').at(-1)).toBe('0 requests: 0 answered, 0 failed, 0 refused; 0 B in')
  })
})

describe('summaryLines: one screen, cut to its width', () => {
  const event = (n: number, more: Partial<AuditEvent> = {}): AuditEvent => ({
    capsuleId: 'c', requestId: `c#${n}`, kind: 'request', abi: 'capsule-host', method: 'GET', url: `https://api.test/items/${n}`,
    allowed: true, decidedBy: 'rule:api.test', redactions: 0, bytesIn: 0, bytesOut: 0, redirects: 0, durationMs: n, status: 200, ...more,
  })

  test('columns: decision, status or code, bytes and time right-aligned, then the URL; bytes in B, KiB, MiB', () => {
    const lines = summaryLines([
      event(1, { bytesIn: 1023 }),
      event(2, { bytesIn: 1024, code: 'timeout', status: undefined }),
      event(3, { allowed: false, code: 'denied', status: undefined, bytesIn: 5 * 1024 * 1024, method: 'POST', kind: 'stream' }),
    ], { columns: 120, rows: 40 })
    expect(lines).toEqual([
      'decision  status     bytes  time  url',
      '-------------------------------------',
      'allowed   200       1023 B  1 ms  GET https://api.test/items/1',
      'allowed   timeout  1.0 KiB  2 ms  GET https://api.test/items/2',
      'refused   denied   5.0 MiB  3 ms  POST https://api.test/items/3 (stream)',
      '3 requests: 1 answered, 1 failed, 1 refused; 5.0 MiB in',
    ])
  })

  test.each([[20], [39], [40], [41]])('every line fits %i columns, the cut ones ending in …', (columns) => {
    const lines = summaryLines([event(1, { url: `https://api.test/${'x'.repeat(80)}` })], { columns, rows: 40 })
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(columns)
    expect(lines[2]).toMatch(/…$/)
  })

  // 10 rows: the header, the rule and the total take 3, one is kept free: 6 for requests.
  test.each([
    [6, 6, false],
    [7, 5, true],
    [50, 5, true],
  ])('%i requests on a 10-row screen: %i rows shown, a "more" line: %s', (count, shown, more) => {
    const lines = summaryLines(Array.from({ length: count }, (_, i) => event(i + 1)), { columns: 100, rows: 10 })
    expect(lines.length).toBeLessThan(10)
    expect(lines.filter((line) => line.startsWith('allowed'))).toHaveLength(shown)
    expect(lines.includes(`… ${count - shown} more requests (see --verbose for every event)`)).toBe(more)
    expect(lines.at(-1)).toBe(`${count} requests: ${count} answered, 0 failed, 0 refused; 0 B in`)
  })

  test('a URL with control characters is printed escaped', () => {
    const [, , row] = summaryLines([event(1, { url: 'https://api.test/a\u001b[2Jb' })], { columns: 100, rows: 40 })
    expect(row).not.toContain('\u001b')
  })

  test.each<[{ isTTY?: boolean; columns?: number; rows?: number }, Record<string, string>, { columns?: number; rows?: number }]>([
    [{ isTTY: true, columns: 72, rows: 20 }, { COLUMNS: '200' }, { columns: 72, rows: 20 }],
    [{}, { COLUMNS: '60', LINES: '15' }, { columns: 60, rows: 15 }],
    [{}, { COLUMNS: 'wide', LINES: '0' }, { columns: undefined, rows: undefined }],
    [{}, {}, { columns: undefined, rows: undefined }],
  ])('screenOf(%j, %j)', (stream, env, screen) => {
    expect(screenOf(stream, env)).toEqual(screen)
  })

  test('without a width the pipe default is used', () => {
    const lines = summaryLines([event(1, { url: `https://api.test/${'x'.repeat(300)}` })], {})
    expect(lines[2]).toHaveLength(PIPE_COLUMNS)
  })
})
