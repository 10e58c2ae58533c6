// Tests can never run stale code: an edit in src/ is built before the run, and a stale worker is refused.
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterAll, describe, expect, inject, test } from 'vitest'
import { importClosure, outputOf, resolveWorkerScript, sourcesUnder, staleOutputs } from '../src/runtime/worker-script.js'
import { buildIfStale } from './global-setup.js'

const dirs: string[] = []
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })))

/** A fresh project directory with `files` (paths relative to it). */
function project(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'capsule-host-stale-'))
  dirs.push(root)
  for (const [path, text] of Object.entries(files)) write(root, path, text)
  return root
}

function write(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true })
  writeFileSync(join(root, path), text)
}

/** Sets a file's modification time `seconds` before now. */
function age(path: string, seconds: number): void {
  const when = Date.now() / 1000 - seconds
  utimesSync(path, when, when)
}

/** The exit code of a worker started from the script of the engine at `<root>/src/runtime/worker-engine.ts`. */
async function runWorker(root: string): Promise<number> {
  const script = resolveWorkerScript(pathToFileURL(join(root, 'src/runtime/worker-engine.ts')))
  return new Promise((resolve, reject) => new Worker(script).on('exit', resolve).on('error', reject))
}

const TSCONFIG = JSON.stringify({
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: [], outDir: 'dist', rootDir: 'src' },
  include: ['src'],
})

/** A project whose worker exits with the code that src/runtime/marker.ts exports. */
function workerProject(marker: number): string {
  return project({
    'package.json': '{ "type": "module" }',
    'tsconfig.build.json': TSCONFIG,
    'src/runtime/worker-main.ts': `import { MARKER } from './marker.js'\ndeclare const process: { exit(code: number): never }\nprocess.exit(MARKER)\n`,
    'src/runtime/marker.ts': `export const MARKER: number = ${marker}\n`,
  })
}

describe('the freshness check', () => {
  const files = {
    'src/runtime/worker-main.ts':
      `import {\n  a,\n  type A,\n} from './a.js'\nimport type { T } from './t.js'\nexport type { U } from './u.js'\nexport type V = { v: 1 }\nexport * as b from '../wire/b.js'\nconst c = await import('./c.js')\n`,
    'src/runtime/a.ts': `import './a.js'\nexport const a = 1\n`,
    'src/runtime/c.ts': 'export {}\n',
    'src/runtime/t.ts': 'export type T = 1\n',
    'src/runtime/u.ts': 'export type U = 1\n',
    'src/runtime/unrelated.ts': 'export {}\n',
    'src/wire/b.ts': `import { x } from 'node:fs'\nexport const b = 2\n`,
  }
  const built = (root: string) => {
    for (const source of sourcesUnder(join(root, 'src'))) {
      const output = outputOf(join(root, 'src'), join(root, 'dist'), source)
      write(root, output.slice(root.length + 1), '')
      age(source, 20)
    }
  }
  const names = (root: string, stale: readonly { source: string }[]) => stale.map(({ source }) => source.slice(root.length + 1))

  test('the worker is built from worker-main.ts and what it loads, across folders; type-only imports are erased', () => {
    const root = project(files)
    const closure = importClosure(join(root, 'src/runtime/worker-main.ts'), join(root, 'src'))
    expect(names(root, closure.map((source) => ({ source })))).toEqual([
      'src/runtime/a.ts',
      'src/runtime/c.ts',
      'src/runtime/worker-main.ts',
      'src/wire/b.ts',
    ])
  })

  test('an output that is missing, or older than its source, is stale; one as new or newer is not', () => {
    const root = project(files)
    const src = join(root, 'src')
    const dist = join(root, 'dist')
    expect(names(root, staleOutputs(src, dist, sourcesUnder(src)))).toHaveLength(7)
    built(root)
    expect(staleOutputs(src, dist, sourcesUnder(src))).toEqual([])
    const same = Math.floor(Date.now() / 1000) - 10
    utimesSync(join(src, 'wire/b.ts'), same, same)
    utimesSync(join(dist, 'wire/b.js'), same, same)
    expect(staleOutputs(src, dist, sourcesUnder(src))).toEqual([])
    age(join(dist, 'wire/b.js'), 30)
    rmSync(join(dist, 'runtime/unrelated.js'))
    expect(staleOutputs(src, dist, sourcesUnder(src))).toEqual([
      { source: join(src, 'runtime/unrelated.ts'), output: join(dist, 'runtime/unrelated.js'), reason: 'missing' },
      { source: join(src, 'wire/b.ts'), output: join(dist, 'wire/b.js'), reason: 'older' },
    ])
  })

  test('a worker older than any source it is built from is refused with load_failed, naming the source', () => {
    const root = project(files)
    const engine = pathToFileURL(join(root, 'src/runtime/worker-engine.ts'))
    expect(() => resolveWorkerScript(engine)).toThrow(expect.objectContaining({ code: 'load_failed', message: expect.stringContaining('run "npm run build"') }))
    built(root)
    expect(fileURLToPath(resolveWorkerScript(engine))).toBe(join(root, 'dist/runtime/worker-main.js'))
    age(join(root, 'dist/runtime/unrelated.js'), 60)
    expect(fileURLToPath(resolveWorkerScript(engine))).toBe(join(root, 'dist/runtime/worker-main.js'))
    age(join(root, 'dist/wire/b.js'), 60)
    expect(() => resolveWorkerScript(engine)).toThrow(
      expect.objectContaining({ code: 'load_failed', message: 'the worker script in dist/ is older than src/wire/b.ts; run "npm run build" first' }),
    )
  })

  test('a built engine takes the worker beside it, with no check', () => {
    expect(resolveWorkerScript(new URL('file:///nowhere/dist/runtime/worker-engine.js')).href).toBe('file:///nowhere/dist/runtime/worker-main.js')
  })
})

describe('an edit in src/runtime is what the next run executes', () => {
  test('the global setup builds a stale tree, and the worker runs the edited source', { timeout: 60_000 }, async () => {
    const root = workerProject(41)
    expect(() => resolveWorkerScript(pathToFileURL(join(root, 'src/runtime/worker-engine.ts')))).toThrow(/not built/)
    expect(buildIfStale(root).stale).toHaveLength(2)
    expect(await runWorker(root)).toBe(41)
    expect(buildIfStale(root).stale).toEqual([])

    for (const file of ['worker-main', 'marker']) {
      age(join(root, `src/runtime/${file}.ts`), 20)
      age(join(root, `dist/runtime/${file}.js`), 10)
    }
    write(root, 'src/runtime/marker.ts', 'export const MARKER: number = 42\n')
    await expect(runWorker(root)).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('src/runtime/marker.ts') })
    expect(buildIfStale(root).stale).toHaveLength(1)
    expect(await runWorker(root)).toBe(42)
  })

  test('a build that fails stops the run with the compiler report', { timeout: 60_000 }, () => {
    const root = workerProject(41)
    write(root, 'src/runtime/marker.ts', 'export const MARKER: number = "not a number"\n')
    expect(() => buildIfStale(root)).toThrow(/"tsc -p tsconfig\.build\.json" failed \(exit 2\)[^]*marker\.ts[^]*TS2322/)
  })
})

describe('this run', () => {
  test('every source in src/ older than the global setup has an output in dist/ at least as new', () => {
    const checkedAt = inject('sourcesCheckedAt')
    expect(checkedAt, 'test/global-setup.ts did not run (vitest.config.ts globalSetup)').toBeTypeOf('number')
    const root = fileURLToPath(new URL('..', import.meta.url))
    const src = join(root, 'src')
    const sources = sourcesUnder(src).filter((source) => statSync(source).mtimeMs < checkedAt)
    expect(sources.length).toBeGreaterThan(20)
    expect(staleOutputs(src, join(root, 'dist'), sources)).toEqual([])
  })
})
