// The published .d.ts stand alone: a consumer project with skipLibCheck false and no DOM lib compiles against dist/.
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, test } from 'vitest'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const TSC = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc')
const COMPILE_MS = 120_000

/** As a consumer's strict project would be set up: Node types only, no DOM, every .d.ts checked. */
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022'],
    types: ['node'],
    module: 'NodeNext',
    moduleResolution: 'nodenext',
    strict: true,
    skipLibCheck: false,
    noEmit: true,
  },
  include: ['src'],
}

/** A host and a capsule test, using the root package and capsule-host/testing as documented. */
const CONSUMER = `
import { createRuntime, createSafeFetch, secret, type AuditEvent, type Middleware, type SecurityGate } from 'capsule-host'
import { createTestHost, type MockDescription, type RunResult } from 'capsule-host/testing'

const apiKey: Middleware = async (ctx, next) => {
  ctx.req.header('x-api-key', secret('key'))
  return next()
}
const readOnly: SecurityGate = { name: 'read-only', check: (r) => (r.method === 'GET' ? { allow: true } : { allow: false, reason: 'read only' }) }
const events: AuditEvent[] = []
const fetch = createSafeFetch({ rules: { host: 'api.test', middleware: apiKey }, gates: [readOnly], onRequest: (e) => events.push(e) })
const runtime = createRuntime({ fetch, isolation: 'worker', limits: { callTimeoutMs: 1000 } })

const mocks: MockDescription = { upstreams: { 'api.test': { routes: [{ path: '/items', json: [1] }] } } }
export async function check(wasm: Uint8Array): Promise<RunResult> {
  const host = await createTestHost({ mocks })
  try {
    return await host.run(wasm, 'main', host.url('api.test', '/items'))
  } finally {
    await host.close()
    await runtime.close()
  }
}
`

let project: string
beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'consumer-types-'))
  mkdirSync(join(project, 'src'))
  mkdirSync(join(project, 'node_modules', '@types'), { recursive: true })
  // As npm would install it: the package (its own dependencies resolve from the repository) and @types/node.
  symlinkSync(REPO, join(project, 'node_modules', 'capsule-host'))
  symlinkSync(join(REPO, 'node_modules', '@types', 'node'), join(project, 'node_modules', '@types', 'node'))
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
})
afterAll(() => rmSync(project, { recursive: true, force: true }))

/** Runs the repository's tsc on the consumer project with only `files` in src/; its exit code and report. */
function compile(files: Record<string, string>): Promise<{ code: number; report: string }> {
  rmSync(join(project, 'src'), { recursive: true, force: true })
  mkdirSync(join(project, 'src'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(project, 'src', name), text)
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, '-p', project], { cwd: project, timeout: COMPILE_MS }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, report: `${stdout}${stderr}` })
    })
  })
}

test('a consumer of capsule-host and capsule-host/testing compiles with skipLibCheck false and lib ES2022', { timeout: COMPILE_MS }, async () => {
  const { code, report } = await compile({ 'index.ts': CONSUMER })
  expect(report).toBe('')
  expect(code).toBe(0)
})

test('the project really has no DOM lib: a use of the WebAssembly namespace fails there', { timeout: COMPILE_MS }, async () => {
  const { code, report } = await compile({ 'wasm.ts': 'export type M = WebAssembly.Module\n' })
  expect(code).not.toBe(0)
  expect(report.trim()).toBe("src/wasm.ts(1,17): error TS2503: Cannot find namespace 'WebAssembly'.")
})
