// End to end, as an npm user: pack capsule-host, install the tarball offline, `capsule-host new`, then build, test and run the new capsule.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test, type TestContext } from 'vitest'

const REPO = fileURLToPath(new URL('..', import.meta.url))
/** The longest one step may take (npm install and the AssemblyScript build are the slow ones). */
const STEP_MS = 240_000

interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** npm settings an outer run passes on that the commands here keep: where the cache and the config files are. */
const KEPT_NPM_SETTINGS = /^npm_config_(cache|userconfig|globalconfig|registry)$/i

/**
 * The environment of every npm command here: offline always, and nothing else of an outer
 * `npm test` run (its npm_package_*, npm_lifecycle_*, npm_config_local_prefix would point the
 * commands at this repository).
 */
function npmEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_') || KEPT_NPM_SETTINGS.test(key)) env[key] = value
  }
  return { ...env, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', NO_COLOR: '1' }
}

/**
 * Runs a command in `cwd`, which must be the repository (for npm pack) or a folder under this run's
 * scratch folder: an empty cwd would run npm in the repository itself (it once pruned node_modules).
 */
function sh(cwd: string, command: string, args: string[]): Promise<Result> {
  const scratch = state.work !== '' && isAbsolute(cwd) && relative(state.work, cwd).split(sep)[0] !== '..'
  if (cwd !== REPO && !scratch) throw new Error(`refusing to run ${command} outside the scratch folder (cwd ${JSON.stringify(cwd)})`)
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: npmEnvironment(), timeout: STEP_MS, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

/** What a failed step printed, for the assertion's message. */
const shown = (r: Result) => `exit ${r.code}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`

type LockEntry = Record<string, unknown> & { dependencies?: Record<string, string> }
const repoLock = () => (JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }).packages
const ownPackage = () => JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<string, unknown> & { name: string; version: string }

/** The npm registry's address of a package's tarball: what npm looks up by integrity in its cache. */
function registryTarball(name: string, version: string): string {
  return `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${version}.tgz`
}

/**
 * A package-lock.json for `dir`'s package.json with capsule-host taken from `tarball`, every other
 * package at the version and integrity of this repo's lockfile. Why: npm 11 resolves a name from
 * the registry's full metadata, and this machine's npm cache holds some packages' metadata only in
 * npm's abbreviated form, so `npm install --offline` fails to resolve what the cache does hold.
 * With a lockfile npm needs only the tarballs, by integrity, from the cache. A package the repo's
 * lockfile does not have is an error here, not a skip.
 */
function writeLockfile(dir: string, tarball: string): void {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | string>
  const spec = `file:${relative(dir, tarball)}`
  const own = ownPackage()
  const lock = repoLock()
  const root: LockEntry = { name: pkg.name, version: pkg.version }
  const packages: Record<string, LockEntry> = { '': root }
  const add = (deps: Record<string, string> | undefined) => {
    for (const [name, range] of Object.entries(deps ?? {})) {
      const key = `node_modules/${name}`
      if (packages[key]) continue
      if (name === own.name) {
        const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`
        const { dependencies, peerDependencies, peerDependenciesMeta, bin } = own
        packages[key] = { version: own.version, resolved: spec, integrity, dependencies, peerDependencies, peerDependenciesMeta, bin } as LockEntry
        add(own.dependencies as Record<string, string>)
        continue
      }
      const entry = lock[key]
      if (!entry) throw new Error(`${name} is not in the repo's package-lock.json`)
      // An exact pin the repo's lockfile does not hold would make npm look the name up: an error, never a skip.
      if (/^\d+\.\d+\.\d+$/.test(range) && entry.version !== range) throw new Error(`${name} is pinned to ${range}, and the repo's lockfile has ${String(entry.version)}`)
      const { dev: _dev, optional: _optional, peer: _peer, devOptional: _devOptional, ...kept } = entry
      // With its tarball's address npm never asks for the package's metadata, which the cache may
      // hold only in another form (the repo's lockfile records no addresses).
      packages[key] = { resolved: registryTarball(name, String(entry.version)), ...kept }
      add(entry.dependencies)
    }
  }
  for (const section of ['dependencies', 'devDependencies'] as const) {
    const deps = pkg[section] as Record<string, string> | undefined
    if (!deps) continue
    root[section] = Object.fromEntries(Object.entries(deps).map(([name, range]) => [name, name === own.name ? spec : range]))
    add(root[section] as Record<string, string>)
  }
  writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify({ name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`)
}

/** Every .ts file under src/ has a dist/ .js at least as new: the pack holds the code as it is. */
function staleBuild(): string | undefined {
  const walk = (dir: string): string[] =>
    readdirSync(join(REPO, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
  for (const source of walk('src')) {
    const built = join(REPO, 'dist', source.slice('src/'.length).replace(/\.ts$/, '.js'))
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(REPO, source)).mtimeMs) return source
  }
  return undefined
}

/** Files the installed package needs (its bin, its exports, the SDK, the preset, the template). */
const NEEDED = [
  'package/dist/cli.js',
  'package/dist/index.js',
  'package/dist/testing/index.js',
  'package/sdk/index.ts',
  'package/capsules/sdk/index.ts',
  'package/capsules/sdk/abort.ts',
  'package/capsules/asconfig.preset.json',
  'package/templates/assemblyscript/package.json',
  'package/templates/assemblyscript/assembly/index.ts',
  'package/templates/assemblyscript/gitignore',
  'package/protocol.schema.json',
]

/** The steps share one scratch folder; a skipped step skips the rest, for the same reason. */
const state: { work: string; tarball: string; app: string; demo: string; skipped: string | undefined; failed: string | undefined } = {
  work: '',
  tarball: '',
  app: '',
  demo: '',
  skipped: undefined,
  /** The first step that failed: every later step fails at once, running nothing. */
  failed: undefined,
}

/** An install that failed only because the npm cache lacks a package skips the rest: the one reason this test skips. */
function skipWhenNotCached(ctx: TestContext, r: Result): void {
  // With the lockfile npm asks only for tarballs: a metadata request means the lockfile is wrong, which fails.
  const missing = /ENOTCACHED[\s\S]*?request to (\S+\.tgz) failed/.exec(r.stderr)
  if (r.code !== 0 && missing) {
    state.skipped = `the npm cache lacks ${missing[1]} (npm install --offline cannot get it)`
    ctx.skip(state.skipped)
  }
}

function step(name: string, body: (ctx: TestContext) => Promise<void>) {
  test(name, async (ctx) => {
    if (state.skipped) ctx.skip(state.skipped)
    if (state.failed) throw new Error(`not run: the step "${state.failed}" failed`)
    try {
      await body(ctx)
    } catch (error) {
      // ctx.skip() throws too; a skip is not a failure.
      if (!state.skipped) state.failed = name
      throw error
    }
  }, STEP_MS + 10_000)
}

afterAll(() => {
  if (state.work) rmSync(state.work, { recursive: true, force: true })
})

describe.sequential('npm pack, install offline, capsule-host new demo-cap, build, test and run it', () => {
  step('npm pack: the tarball holds what an installed capsule-host needs', async () => {
    expect(staleBuild(), 'dist/ is older than src/: run npm run build first').toBeUndefined()
    state.work = mkdtempSync(join(tmpdir(), 'capsule-host-pack-'))
    const packed = await sh(REPO, 'npm', ['pack', '--json', '--pack-destination', state.work])
    expect(packed.code, shown(packed)).toBe(0)
    const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }]
    state.tarball = join(state.work, filename)
    const paths = new Set(files.map((f) => `package/${f.path}`))
    expect(NEEDED.filter((path) => !paths.has(path)), 'files missing from the pack (package.json "files")').toEqual([])
  })

  step('npm install --offline <tarball> in an empty folder', async (ctx) => {
    state.app = join(state.work, 'app')
    mkdirSync(state.app)
    // The lockfile needs the dependency named in package.json first; npm install <tarball> then keeps it.
    writeFileSync(join(state.app, 'package.json'), `${JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: { 'capsule-host': `file:${relative(state.app, state.tarball)}` } })}\n`)
    writeLockfile(state.app, state.tarball)
    const installed = await sh(state.app, 'npm', ['install', '--offline', state.tarball])
    skipWhenNotCached(ctx, installed)
    expect(installed.code, shown(installed)).toBe(0)
    expect(existsSync(join(state.app, 'node_modules/.bin/capsule-host'))).toBe(true)
  })

  step('npx capsule-host new demo-cap writes the project (no progress lines in a pipe)', async () => {
    const created = await sh(state.app, 'npx', ['--offline', 'capsule-host', 'new', 'demo-cap'])
    expect(created.code, shown(created)).toBe(0)
    expect(created.stdout).toContain('Created demo-cap in demo-cap')
    expect(created.stderr).toBe('')
    state.demo = join(state.app, 'demo-cap')
    for (const file of ['package.json', 'asconfig.json', 'assembly/index.ts', 'test/greet.test.js', 'mocks.json', 'README.md', '.gitignore']) {
      expect(existsSync(join(state.demo, file)), file).toBe(true)
    }
  })

  step('in demo-cap: npm install --offline <tarball>, then npm install --offline', async (ctx) => {
    writeLockfile(state.demo, state.tarball)
    const pointed = await sh(state.demo, 'npm', ['install', '--offline', state.tarball])
    skipWhenNotCached(ctx, pointed)
    expect(pointed.code, shown(pointed)).toBe(0)
    const pkg = JSON.parse(readFileSync(join(state.demo, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }
    expect(pkg.devDependencies['capsule-host']).toBe(`file:${relative(state.demo, state.tarball)}`)
    const installed = await sh(state.demo, 'npm', ['install', '--offline'])
    skipWhenNotCached(ctx, installed)
    expect(installed.code, shown(installed)).toBe(0)
  })

  step('npm run build compiles build/demo-cap.wasm with the SDK from capsule-host/sdk', async () => {
    const built = await sh(state.demo, 'npm', ['run', 'build'])
    expect(built.code, shown(built)).toBe(0)
    const wasm = readFileSync(join(state.demo, 'build/demo-cap.wasm'))
    expect(WebAssembly.validate(wasm)).toBe(true)
  })

  step('npm test passes (node --test with capsule-host/testing)', async () => {
    const tested = await sh(state.demo, 'npm', ['test'])
    expect(tested.code, shown(tested)).toBe(0)
    // node --test's summary: "# pass 4" (TAP, Node 20 in a pipe) or "ℹ pass 4" (spec, newer Node).
    expect(tested.stdout).toMatch(/^(#|ℹ) pass 4$/m)
    expect(tested.stdout).toMatch(/^(#|ℹ) fail 0$/m)
  })

  step('npx capsule-host run build/demo-cap.wasm greet --mock mocks.json prints the greeting', async () => {
    const ran = await sh(state.demo, 'npx', ['--offline', 'capsule-host', 'run', 'build/demo-cap.wasm', 'greet', '--input', 'Ada', '--mock', 'mocks.json'])
    expect(ran.code, shown(ran)).toBe(0)
    expect(ran.stdout).toBe('Hello, Ada!')
    expect(ran.stderr).toMatch(/^allowed GET https:\/\/greetings\.test\/greeting -> 200 \(rule:greetings\.test@default-port, \d+ ms\)\n$/)
  })
})
