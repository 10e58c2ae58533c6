#!/usr/bin/env node
// Builds every capsules/c/<name>.c into capsules/dist/c-<name>.wasm (a WASI reactor) with clang and wasi-libc, when the machine has them.
//
//   node capsules/build-c.mjs [--force]
//
// The toolchain comes from the distribution's packages (Debian: clang lld wasi-libc
// libclang-rt-14-dev-wasm32; .ci/run installs them when missing). Without it this prints one
// "skipped" line and exits 0, and the tests of these plugins report skipped. A .wasm newer than
// its source and this script is not rebuilt. Exits 1 when a plugin fails to compile.

import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const sources = join(here, 'c')
const distDir = join(here, 'dist')
const force = process.argv.includes('--force')
const FLAGS = ['--target=wasm32-wasi', '--sysroot=/usr', '-mexec-model=reactor', '-O2', '-Wall', '-Werror']

/** The reason the toolchain cannot build for wasm32-wasi here, or undefined when it can. */
function missingToolchain() {
  try {
    execFileSync('clang', [...FLAGS, '-x', 'c', '-', '-o', '/dev/null'], { input: '#include <stdio.h>\nint x;\n', stdio: ['pipe', 'ignore', 'pipe'] })
    return undefined
  } catch (error) {
    const detail = error.code === 'ENOENT' ? 'clang is not installed' : String(error.stderr ?? error.message).trim().split('\n')[0]
    return `${detail} (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)`
  }
}

const names = readdirSync(sources).filter((f) => f.endsWith('.c')).map((f) => f.slice(0, -2)).sort()
const missing = missingToolchain()
if (missing) {
  console.log(`C plugins (${names.join(', ')}): skipped, no wasm32-wasi toolchain: ${missing}`)
  process.exit(0)
}
mkdirSync(distDir, { recursive: true })
const scriptTime = statSync(fileURLToPath(import.meta.url)).mtimeMs
let failed = false
for (const name of names) {
  const source = join(sources, `${name}.c`)
  const output = join(distDir, `c-${name}.wasm`)
  if (!force && existsSync(output) && statSync(output).mtimeMs > Math.max(statSync(source).mtimeMs, scriptTime)) {
    console.log(`c-${name}: up to date`)
    continue
  }
  try {
    execFileSync('clang', [...FLAGS, '-o', output, source], { stdio: ['ignore', 'inherit', 'inherit'] })
    console.log(`c-${name}: built capsules/dist/c-${name}.wasm (${statSync(output).size} bytes)`)
  } catch {
    console.error(`c-${name}: clang failed (see above)`)
    failed = true
  }
}
process.exit(failed ? 1 : 0)
