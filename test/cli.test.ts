// Integration: the capsule-host CLI (the built dist/cli.js) run as a child process against loopback servers.
import { execFile } from 'node:child_process'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { capsulePath } from './helpers/capsules.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

let server: TestServer
beforeAll(async () => {
  server = await startServer((req, res) => res.end(JSON.stringify({ path: req.url })))
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
    [['run', 'x.wasm', 'f', '--isolation', 'thread'], '--isolation thread: expected worker or inline'],
    [['run', 'x.wasm', 'f', '--timeout', 'soon'], '--timeout soon: expected a whole number'],
    [['run', 'x.wasm', 'f', '--input', '@/nonexistent/input.json'], 'cannot read input file'],
    [['explain'], 'explain needs exactly one URL'],
    [['explain', 'https://a.test/', '--resolve', 'nonsense'], '--resolve nonsense: expected NAME=IP'],
    [['explain', 'https://a.test/', '--rules', '/nonexistent/rules.json'], 'cannot read rules file'],
    [['explain', 'https://a.test/', '--allow', 'http://[bad'], '--allow http://[bad: not a host or URL'],
    [['explain', 'https://a.test/', '--allow', 'bad host!'], 'rules[0]'],
    [['explain', 'https://a.test/', '--allow-address', 'nonsense'], 'addressPolicy.unsafeAllow: "nonsense" is not a CIDR'],
  ])('%j is a usage error with exit code 2', async (args, message) => {
    const { code, stderr } = await cli(...args)
    expect(code).toBe(2)
    expect(stderr).toContain(message)
    expect(stderr).toContain('Usage: capsule-host')
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
