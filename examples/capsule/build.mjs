// Builds assembly/index.ts into build/forecast.wasm with the AssemblyScript compiler and capsule-host's preset.
//
//   node build.mjs      (in a project of your own, `npx asc assembly/index.ts --target release` does the same)
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

/**
 * asconfig.json extends ./node_modules/capsule-host/capsules/asconfig.preset.json and the source
 * imports "capsule-host/sdk": both need capsule-host in node_modules, as `npm install capsule-host`
 * puts it. Inside the capsule-host repository this example is part of, link the repository there.
 */
function ensureInstalled() {
  const installed = join(here, 'node_modules', 'capsule-host')
  if (existsSync(installed)) return
  const repo = join(here, '..', '..')
  const name = existsSync(join(repo, 'package.json')) ? JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).name : undefined
  if (name !== 'capsule-host') throw new Error('capsule-host is not installed here: run `npm install capsule-host assemblyscript @extism/as-pdk` first')
  mkdirSync(join(here, 'node_modules'), { recursive: true })
  try {
    symlinkSync(repo, installed, 'dir')
  } catch (error) {
    if (error.code !== 'EEXIST') throw error
  }
}

ensureInstalled()
const asc = (await import('assemblyscript/asc')).default
mkdirSync(join(here, 'build'), { recursive: true })
const stderr = asc.createMemoryStream()
const { error } = await asc.main(['assembly/index.ts', '--baseDir', here, '--config', 'asconfig.json', '--target', 'release'], { stderr })
if (error) {
  console.error(`${error.message}\n${stderr.toString()}`)
  process.exit(1)
}
console.log('built build/forecast.wasm')
