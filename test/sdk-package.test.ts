// The SDK as a package: a capsule project outside this repository imports "capsule-host/sdk", builds with the preset, loads and runs.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRuntime, createSafeFetch, type Runtime } from '../src/index.js'
import { startServer } from './helpers/servers.js'

const repo = fileURLToPath(new URL('..', import.meta.url))
const packageJson = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'))

/** An optimising AssemblyScript build takes seconds, more on a loaded 2-core machine. */
const COMPILE_TIMEOUT_MS = 120_000

/** A capsule using the SDK's input, output, JSON, HTTP and a trap, as an author would write it. */
const CAPSULE = `
import { HttpRequest, inputString, outputString, request } from "capsule-host/sdk";

export function greet(): i32 {
  outputString("hello " + inputString());
  return 0;
}

export function fetchStatus(): i32 {
  const reply = request(new HttpRequest(inputString()));
  outputString(reply.status.toString());
  return 0;
}

export function boom(): i32 {
  throw new Error("boom from " + inputString());
}
`

/** Runs the installed AssemblyScript compiler in `dir` with its asconfig.json; the .wasm bytes or the diagnostics. */
async function compile(dir: string, extraArgs: string[] = []): Promise<{ binary?: Uint8Array<ArrayBuffer>; diagnostics: string }> {
  const asc = (await import('assemblyscript/asc')).default
  let binary: Uint8Array<ArrayBuffer> | undefined
  const stderr = asc.createMemoryStream()
  const result = await asc.main(['assembly/index.ts', '--baseDir', dir, '--outFile', 'build/capsule.wasm', ...extraArgs], {
    stderr,
    writeFile(name: string, contents: string | Uint8Array) {
      if (name.endsWith('.wasm') && typeof contents !== 'string') binary = new Uint8Array(contents)
    },
  })
  const diagnostics = stderr.toString()
  return result.error ? { diagnostics: `${result.error.message}\n${diagnostics}` } : { binary, diagnostics }
}

describe('the SDK as a dependency of a capsule project outside the repository', () => {
  let dir: string
  let runtime: Runtime
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'capsule-project-'))
    mkdirSync(join(dir, 'assembly'))
    mkdirSync(join(dir, 'node_modules', '@extism'), { recursive: true })
    // As npm lays out an install: the package and its peers side by side in node_modules.
    symlinkSync(repo, join(dir, 'node_modules', 'capsule-host'))
    symlinkSync(join(repo, 'node_modules', 'assemblyscript'), join(dir, 'node_modules', 'assemblyscript'))
    symlinkSync(join(repo, 'node_modules', '@extism', 'as-pdk'), join(dir, 'node_modules', '@extism', 'as-pdk'))
    writeFileSync(join(dir, 'assembly', 'index.ts'), CAPSULE)
  })
  afterAll(async () => {
    await runtime?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('package.json declares the SDK\'s peers with the tested versions, and the OpenTelemetry API, all optional', () => {
    const installed = (name: string) => JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')).version
    expect(packageJson.peerDependencies).toEqual({
      assemblyscript: `>=${installed('assemblyscript')} <0.29`,
      '@extism/as-pdk': `^${installed('@extism/as-pdk')}`,
      '@opentelemetry/api': '>=1.3.0 <2',
    })
    expect(packageJson.peerDependenciesMeta).toEqual({ assemblyscript: { optional: true }, '@extism/as-pdk': { optional: true }, '@opentelemetry/api': { optional: true } })
    expect(packageJson.files).toEqual(expect.arrayContaining(['sdk', 'capsules/sdk', 'capsules/asconfig.preset.json']))
  })

  test('with the preset it builds, imports no env.abort, and runs; a trap reports its message', async () => {
    writeFileSync(join(dir, 'asconfig.json'), JSON.stringify({ extends: './node_modules/capsule-host/capsules/asconfig.preset.json' }))
    const { binary, diagnostics } = await compile(dir, ['--config', 'asconfig.json'])
    expect(diagnostics).toBe('')
    const imports = WebAssembly.Module.imports(new WebAssembly.Module(binary!)).map((i) => `${i.module}.${i.name}`)
    expect(imports).not.toContain('env.abort')

    const server = await startServer((_req, res) => res.writeHead(204).end())
    const fetch = createSafeFetch({
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
      resolver: async () => ['127.0.0.1'],
      addressPolicy: { allow: ['127.0.0.1/32'] },
    })
    runtime = createRuntime({ fetch })
    const capsule = await runtime.load({ wasm: binary! })
    expect((await capsule.call('greet', 'author')).text()).toBe('hello author')
    expect((await capsule.call('fetchStatus', `http://api.test:${server.port}/`)).text()).toBe('204')
    await expect(capsule.call('boom', 'here')).rejects.toMatchObject({
      code: 'capsule_failed',
      message: expect.stringContaining('abort: boom from here (assembly/index.ts:'),
    })
  }, COMPILE_TIMEOUT_MS)

  test('without the preset the build imports env.abort, and loading names the fix', async () => {
    // asc reads an asconfig.json in the project by default: without one, only the flags given here apply.
    rmSync(join(dir, 'asconfig.json'), { force: true })
    const { binary } = await compile(dir, ['--runtime', 'incremental', '--optimizeLevel', '3'])
    const bare = createRuntime({ fetch: createSafeFetch({}) })
    try {
      await expect(bare.load({ wasm: binary! })).rejects.toMatchObject({
        code: 'load_failed',
        message: expect.stringContaining('--use abort=~lib/capsule-host/capsules/sdk/abort/capsuleAbort'),
      })
    } finally {
      await bare.close()
    }
  }, COMPILE_TIMEOUT_MS)
})
