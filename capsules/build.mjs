#!/usr/bin/env node
// Builds every capsule (a folder of capsules/ with an index.ts) into capsules/dist/<name>.wasm
// with the installed AssemblyScript compiler and the shared options in capsules/asconfig.json.
// A capsule whose .wasm is newer than all of its inputs (its folder, the SDK, the WASI
// declarations in capsules/wasi-sdk, the options, this script, the compiler and the PDK) is
// skipped, so running this on every start is cheap.
//
//   node capsules/build.mjs [--force] [name ...]
//
// Prints one line per capsule; exits 1 when any capsule fails to build, 2 on bad arguments.

import { existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = dirname(here)
const distDir = join(here, 'dist')
const NOT_CAPSULES = new Set(['sdk', 'dist', 'node_modules'])

const args = process.argv.slice(2)
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: node capsules/build.mjs [--force] [name ...]\n' +
    'Builds capsules/<name>/index.ts into capsules/dist/<name>.wasm (all capsules when no name is given).\n' +
    '--force  rebuild even when the output is up to date')
  process.exit(0)
}
const force = args.includes('--force') || args.includes('-f')
const unknown = args.filter((a) => a.startsWith('-') && !['--force', '-f'].includes(a))
if (unknown.length > 0) {
  console.error(`build.mjs: unknown option ${unknown[0]} (try --help)`)
  process.exit(2)
}
const wanted = args.filter((a) => !a.startsWith('-'))

const all = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && !NOT_CAPSULES.has(d.name) && existsSync(join(here, d.name, 'index.ts')))
  .map((d) => d.name)
  .sort()
for (const name of wanted) {
  if (!all.includes(name)) {
    console.error(`build.mjs: no capsule "${name}" (capsules/${name}/index.ts); capsules: ${all.join(', ')}`)
    process.exit(2)
  }
}
const names = wanted.length > 0 ? wanted : all

/** Newest modification time (ms) of the files under `path` (a file or a folder). */
function newest(path) {
  if (!existsSync(path)) return 0
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let max = st.mtimeMs // a deleted file changes its folder's mtime
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'dist') continue
    max = Math.max(max, newest(join(path, entry)))
  }
  return max
}

const require = createRequire(import.meta.url)
const toolchainInputs = [
  join(here, 'sdk'),
  join(here, 'wasi-sdk'),
  join(here, 'asconfig.json'),
  fileURLToPath(import.meta.url),
  require.resolve('assemblyscript/package.json'),
  dirname(require.resolve('@extism/as-pdk/package.json')),
]
const toolchainTime = Math.max(...toolchainInputs.map(newest))

let asc = null
async function compiler() {
  asc ??= (await import('assemblyscript/asc')).default
  return asc
}

function text(stream) {
  return stream && typeof stream.toString === 'function' ? stream.toString().trim() : ''
}

mkdirSync(distDir, { recursive: true })
let failed = 0
for (const name of names) {
  const out = join(distDir, `${name}.wasm`)
  const shown = relative(root, out)
  const inputTime = Math.max(toolchainTime, newest(join(here, name)))
  if (!force && existsSync(out) && statSync(out).mtimeMs > inputTime) {
    console.log(`capsule ${name}: up to date (${shown})`)
    continue
  }
  const started = performance.now()
  const { main, createMemoryStream } = await compiler()
  const stdout = createMemoryStream()
  const stderr = createMemoryStream()
  let binary = null
  const result = await main(
    [
      `${name}/index.ts`,
      '--baseDir', here,
      '--config', 'asconfig.json',
      '--outFile', `dist/${name}.wasm`,
    ],
    {
      stdout,
      stderr,
      // Keep the output in memory and write it in one step below, so a failed or interrupted
      // build never leaves a half-written .wasm that looks up to date.
      writeFile(filename, contents) {
        if (filename.endsWith('.wasm')) binary = contents
      },
    },
  )
  const diagnostics = text(stderr)
  if (result.error || binary === null) {
    failed++
    console.log(`capsule ${name}: FAILED`)
    console.error(diagnostics || String(result.error ?? 'no output was produced'))
    continue
  }
  const tmp = `${out}.${process.pid}.tmp`
  writeFileSync(tmp, binary)
  renameSync(tmp, out)
  const ms = Math.round(performance.now() - started)
  console.log(`capsule ${name}: built ${shown} (${(binary.length / 1024).toFixed(1)} KiB, ${ms} ms)`)
  if (diagnostics) console.error(diagnostics)
}
if (failed > 0) {
  console.error(`${failed} capsule(s) failed to build`)
  process.exit(1)
}
