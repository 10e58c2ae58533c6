// Where the worker thread's script is, and whether a build in dist/ is older than its sources in src/.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { CapsuleError } from '../errors.js'

/** A source whose compiled output is missing, or older (by modification time) than the source. */
export interface StaleOutput {
  readonly source: string
  readonly output: string
  readonly reason: 'missing' | 'older'
}

/** The compiled path of `source` (`<srcRoot>/a/b.ts` → `<distRoot>/a/b.js`), as tsconfig.build.json emits it. */
export function outputOf(srcRoot: string, distRoot: string, source: string): string {
  return join(distRoot, relative(srcRoot, source)).replace(/\.ts$/, '.js')
}

/** Every TypeScript source under `dir` (declaration files excluded, as they emit nothing). */
export function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => join(dir, name))
    .sort()
}

/** `import … from './x.js'` and `export … from './x.js'` statements; group 1 is set for `import type`/`export type`. */
const STATIC_IMPORT =
  /^\s*(?:import|export)\s+(type\s+)?(?:[\w$]+\s*,?\s*)?(?:\{[^}]*\}|\*(?:\s+as\s+[\w$]+)?)?\s*from\s*['"](\.\.?\/[^'"]+)['"]/gm
/** `import './x.js'` and `import('./x.js')`. */
const BARE_IMPORT = /\bimport\s*\(?\s*['"](\.\.?\/[^'"]+)['"]/g

/** The relative specifiers a module loads at run time (type-only imports are erased, so left out). */
function runtimeImports(text: string): string[] {
  const loaded = [...text.matchAll(STATIC_IMPORT)].filter((match) => !match[1]).map((match) => match[2]!)
  return [...loaded, ...[...text.matchAll(BARE_IMPORT)].map((match) => match[1]!)]
}

/** `entry` and every source under `srcRoot` it loads through relative specifiers, transitively. */
export function importClosure(entry: string, srcRoot: string): string[] {
  const seen = new Set<string>()
  const pending = [resolve(entry)]
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file) || !existsSync(file) || relative(srcRoot, file).startsWith('..')) continue
    seen.add(file)
    for (const specifier of runtimeImports(readFileSync(file, 'utf8'))) {
      pending.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')))
    }
  }
  return [...seen].sort()
}

/** The `sources` whose output in `distRoot` is missing or has an older modification time. */
export function staleOutputs(srcRoot: string, distRoot: string, sources: readonly string[]): StaleOutput[] {
  const stale: StaleOutput[] = []
  for (const source of sources) {
    const output = outputOf(srcRoot, distRoot, source)
    const built = statSync(output, { throwIfNoEntry: false })
    if (!built) stale.push({ source, output, reason: 'missing' })
    else if (built.mtimeMs < statSync(source).mtimeMs) stale.push({ source, output, reason: 'older' })
  }
  return stale
}

/**
 * The built script of a thread entry (`worker-main`, `pool-worker`) beside the engine module at
 * `engineUrl`. From dist/ that is the sibling `.js`. From src/ (tests run the sources) it is the
 * dist/ build, refused with `load_failed` when it is missing or older than any source it imports.
 */
export function resolveWorkerScript(engineUrl: URL, entryName = 'worker-main', what = 'worker script'): URL {
  if (!engineUrl.pathname.endsWith('.ts')) return new URL(`./${entryName}.js`, engineUrl)
  const srcRoot = fileURLToPath(new URL('../', engineUrl))
  const distRoot = fileURLToPath(new URL('../../dist/', engineUrl))
  const entry = join(srcRoot, 'runtime', `${entryName}.ts`)
  const built = outputOf(srcRoot, distRoot, entry)
  if (!existsSync(built)) {
    throw new CapsuleError('load_failed', `the ${what} is not built; run "npm run build" first`)
  }
  const stale = staleOutputs(srcRoot, distRoot, importClosure(entry, srcRoot))
  if (stale.length > 0) {
    const root = dirname(srcRoot)
    const names = stale.map(({ source }) => relative(root, source))
    throw new CapsuleError('load_failed', `the ${what} in dist/ is older than ${names.join(', ')}; run "npm run build" first`)
  }
  return pathToFileURL(built)
}
