// Before any test: the build in dist/ is at least as new as every source in src/, or the run stops.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'
import { sourcesUnder, staleOutputs, type StaleOutput } from '../src/runtime/worker-script.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** When the global setup compared src/ with dist/ (ms since the epoch); sources older than it are built. */
    sourcesCheckedAt: number
  }
}

const TSC = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc')

/**
 * Compares `<root>/src` with `<root>/dist` by modification time (cheap when fresh) and, when any
 * output is missing or older, runs `tsc -p tsconfig.build.json` in `root`. A failed build throws
 * with tsc's report, so no test runs on code that did not build.
 */
export function buildIfStale(root: string): { readonly stale: readonly StaleOutput[] } {
  const srcRoot = join(root, 'src')
  const stale = staleOutputs(srcRoot, join(root, 'dist'), sourcesUnder(srcRoot))
  if (stale.length === 0) return { stale }
  try {
    execFileSync(process.execPath, [TSC, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe', timeout: 120_000 })
  } catch (error) {
    const { status, stdout, stderr } = error as { status?: number | null; stdout?: Buffer; stderr?: Buffer }
    const report = `${stdout?.toString() ?? ''}${stderr?.toString() ?? ''}`.trim()
    const first = relative(root, stale[0]!.source)
    throw new Error(
      `dist/ is older than src/ (${first} and ${stale.length - 1} more) and "tsc -p tsconfig.build.json" ` +
        `failed (exit ${status ?? 'none'}); fix the build, or the tests would run stale code:\n${report}`,
    )
  }
  return { stale }
}

export default function setup(project: TestProject): void {
  const checkedAt = Date.now()
  buildIfStale(fileURLToPath(new URL('..', import.meta.url)))
  project.provide('sourcesCheckedAt', checkedAt)
}
