// Every example in examples/ runs as a user runs it (node, importing 'capsule-host' from dist/) and prints what its README says.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, expect, test } from 'vitest'

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url))
const BUILD_MS = 240_000
const RUN_MS = 60_000

/** Runs `node <script>` in its folder; the exit code, stdout with loopback ports as `<port>`, and stderr. */
function runExample(script: string, timeout = RUN_MS): Promise<{ code: number; stdout: string; stderr: string }> {
  const path = join(EXAMPLES, script)
  return new Promise((resolve) => {
    execFile(process.execPath, [path], { cwd: join(path, '..'), timeout }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout: stdout.replace(/:\d{2,5}\//g, ':<port>/'), stderr })
    })
  })
}

/** Each example, what it shows, and its whole output (loopback ports as `<port>`). */
const EXPECTED: ReadonlyArray<readonly [script: string, shows: string, lines: readonly string[]]> = [
  ['capsule/run.mjs', 'a summary from the scripted API, then a refusal the capsule reports as a value', [
    'summary: {"city":"Oslo","hours":3,"minC":-3.5,"maxC":2.25}',
    'its request: GET http://forecast.test:<port>/forecast/oslo -> 200 (rule:forecast.test)',
    'refused: {"error":{"code":"denied","message":"GET https://weather.example/forecast/oslo is not allowed: no rule allows host weather.example"}}',
    'its request: allowed false, rules: no rule matches the host',
  ]],
  ['minimal-host/host.mjs', 'one capsule, one call, one audit line', [
    'audit: forecast GET http://forecast.local:<port>/forecast/bergen allowed=true by rule:forecast.local status=200',
    'output: {"city":"Bergen","hours":2,"minC":7,"maxC":9.5}',
  ]],
  ['middleware/api-key.mjs', 'the key reaches its origin only, and comes back redacted', [
    'api.local: status 200, body the capsule sees: {"received":"[redacted]"}',
    'other.local: status 401, body the capsule sees: {"received":null}',
    'audit: redactions=1 (the echoed key was replaced before the capsule got it)',
  ]],
  ['gate/read-only.mjs', 'a read passes, a write and an admin path are denied with their reasons', [
    'GET /items: allowed=true by rule:api.local',
    '  capsule gets: 200 you reached GET /items',
    'POST /items: allowed=false by gate:read-only',
    '  capsule gets: denied: POST http://api.local:<port>/items is not allowed: POST would change data; this host is read-only',
    '  audit: reason "refused by a gate", detail "POST would change data; this host is read-only"',
    'GET /admin/users: allowed=false by gate:no-admin',
    '  capsule gets: denied: GET http://api.local:<port>/admin/users is not allowed: the admin area is off limits',
    '  audit: reason "refused by a gate", detail "the admin area is off limits"',
  ]],
]

// The capsule and the minimal host run the capsule that capsule/build.mjs builds.
beforeAll(async () => {
  const build = await runExample('capsule/build.mjs', BUILD_MS)
  expect(build.stderr).toBe('')
  expect(build).toMatchObject({ code: 0, stdout: 'built build/forecast.wasm\n' })
}, BUILD_MS)

test.each(EXPECTED)('%s: %s', async (script, _shows, lines) => {
  const { code, stdout, stderr } = await runExample(script)
  expect(stdout).toBe(`${lines.join('\n')}\n`)
  // Nothing else: no warning from importing capsule-host (Extism and node:wasi load only for inline capsules).
  expect(stderr).toBe('')
  expect(code).toBe(0)
})
