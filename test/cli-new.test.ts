// `capsule-host new`: the project it writes, the names, languages and folders it refuses, and progress on a terminal only.
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { packageNameProblem, MAX_NAME_LENGTH } from '../src/cli/package-name.js'
import { progressOn } from '../src/cli/progress.js'
import { hasScript } from './helpers/pty.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const REPO = fileURLToPath(new URL('..', import.meta.url))

const cli = (cwd: string, ...args: string[]) => cliWith(process.env, cwd, ...args)

function cliWith(env: NodeJS.ProcessEnv, cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

const scratch = () => mkdtempSync(join(tmpdir(), 'capsule-host-new-'))
const installedVersion = (name: string) => (JSON.parse(readFileSync(join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
const ownVersion = () => (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(dir, join(prefix, e.name)) : [join(prefix, e.name)]))
    .sort()
}

/** script(1), which runs a command on a pty: how these tests see what a terminal would. */

const TEMPLATE_FILES = ['.gitignore', 'README.md', 'asconfig.json', 'assembly/index.ts', 'assembly/tsconfig.json', 'mocks.json', 'package.json', 'test/greet.test.js']

describe('capsule-host new <name>', () => {
  test.each([[['help', 'new']], [['new', '--help']]])('%j prints the usage of new and exits 0', async (args) => {
    const { code, stdout } = await cli(scratch(), ...args)
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Usage: capsule-host new <name>/)
  })

  test('writes the AssemblyScript project: every file, no placeholder left, the result on stdout', async () => {
    const cwd = scratch()
    const { code, stdout, stderr } = await cli(cwd, 'new', 'my-cap')
    expect(code).toBe(0)
    const dir = join(cwd, 'my-cap')
    expect(filesUnder(dir)).toEqual(TEMPLATE_FILES)
    for (const file of TEMPLATE_FILES) expect(readFileSync(join(dir, file), 'utf8'), file).not.toContain('{{')
    expect(stdout).toContain('Created my-cap in my-cap')
    expect(stdout).toContain('npm run build      # assembly/index.ts -> build/my-cap.wasm')
    // A pipe: no progress lines and no escape codes, on either stream.
    expect(stderr).toBe('')
    expect(stdout).not.toContain('\x1b')
  })

  test('package.json pins the compiler and PDK installed here, and depends on this capsule-host', async () => {
    const cwd = scratch()
    expect((await cli(cwd, 'new', 'my-cap')).code).toBe(0)
    const pkg = JSON.parse(readFileSync(join(cwd, 'my-cap/package.json'), 'utf8'))
    expect(pkg).toMatchObject({
      name: 'my-cap',
      type: 'module',
      scripts: { build: 'asc assembly/index.ts --target release', test: 'node --disable-warning=ExperimentalWarning --test' },
      devDependencies: {
        assemblyscript: installedVersion('assemblyscript'),
        '@extism/as-pdk': installedVersion('@extism/as-pdk'),
        'capsule-host': `^${ownVersion()}`,
      },
    })
    // Exact versions, not ranges; and nothing to install for the test but capsule-host.
    expect(pkg.devDependencies.assemblyscript).toMatch(/^\d+\.\d+\.\d+$/)
    expect(Object.keys(pkg.devDependencies).sort()).toEqual(['@extism/as-pdk', 'assemblyscript', 'capsule-host'])
    expect(pkg.dependencies).toBeUndefined()
  })

  test('asconfig.json extends the preset; the source imports the SDK from capsule-host/sdk; the test uses capsule-host/testing', async () => {
    const cwd = scratch()
    expect((await cli(cwd, 'new', 'my-cap')).code).toBe(0)
    const asconfig = JSON.parse(readFileSync(join(cwd, 'my-cap/asconfig.json'), 'utf8'))
    expect(asconfig).toEqual({ extends: './node_modules/capsule-host/capsules/asconfig.preset.json', targets: { release: { outFile: 'build/my-cap.wasm' } } })
    expect(existsSync(join(REPO, 'capsules/asconfig.preset.json'))).toBe(true)
    expect(readFileSync(join(cwd, 'my-cap/assembly/index.ts'), 'utf8')).toContain('from "capsule-host/sdk"')
    const testFile = readFileSync(join(cwd, 'my-cap/test/greet.test.js'), 'utf8')
    expect(testFile).toContain("from 'capsule-host/testing'")
    expect(testFile).toContain("'../build/my-cap.wasm'")
    expect(readFileSync(join(cwd, 'my-cap/.gitignore'), 'utf8')).toBe('node_modules/\nbuild/\n')
  })

  test('a scoped name: the folder and the .wasm take the name without its scope', async () => {
    const cwd = scratch()
    const { code, stdout } = await cli(cwd, 'new', '@acme/my-cap')
    expect(code).toBe(0)
    expect(stdout).toContain('Created @acme/my-cap in my-cap')
    expect(JSON.parse(readFileSync(join(cwd, 'my-cap/package.json'), 'utf8')).name).toBe('@acme/my-cap')
    expect(JSON.parse(readFileSync(join(cwd, 'my-cap/asconfig.json'), 'utf8')).targets.release.outFile).toBe('build/my-cap.wasm')
  })

  test('--dir: the project goes there; an existing empty folder is fine', async () => {
    const cwd = scratch()
    mkdirSync(join(cwd, 'empty'))
    expect((await cli(cwd, 'new', 'my-cap', '--dir', 'empty')).code).toBe(0)
    expect(filesUnder(join(cwd, 'empty'))).toEqual(TEMPLATE_FILES)
    expect((await cli(cwd, 'new', 'other', '--dir', join(cwd, 'deep/er'))).code).toBe(0)
    expect(existsSync(join(cwd, 'deep/er/package.json'))).toBe(true)
  })

  test('--help names the templates there are', async () => {
    const { code, stdout } = await cli(scratch(), 'new', '--help')
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Usage: capsule-host new <name>/)
    expect(stdout).toContain('templates: assemblyscript')
    expect((await cli(scratch(), '--help')).stdout).toContain('new <name>')
  })
})

describe('capsule-host new refuses bad input (exit code 2, nothing written); a write that fails exits 1', () => {
  test.each([
    [['new'], 'new needs exactly one project name, such as: capsule-host new my-capsule'],
    [['new', 'a', 'b'], 'new needs exactly one project name'],
    [['new', ''], '"" is not a valid npm package name: a name cannot be empty'],
    [['new', 'My-Cap'], '"My-Cap" is not a valid npm package name: a name must be lower case'],
    [['new', '.cap'], '".cap" is not a valid npm package name: a name cannot start with "."'],
    [['new', 'fs'], '"fs" is not a valid npm package name: "fs" is a Node.js core module'],
    [['new', 'a b'], '"a b" is not a valid npm package name: a name may hold only URL-safe characters'],
    [['new', '../up'], '"../up" is not a valid npm package name: a name cannot start with "."'],
    [['new', 'a/b'], '"a/b" is not a valid npm package name: a name may hold only URL-safe characters'],
    [['new', 'cap', '--lang', 'rust'], '--lang rust: there is no template for it; templates: assemblyscript'],
    [['new', 'cap', '--lang'], "Option '--lang <value>' argument missing; templates: assemblyscript"],
    [['new', 'cap', '--bogus'], "Unknown option '--bogus'"],
  ])('%j', async (args, message) => {
    const cwd = scratch()
    const { code, stderr } = await cli(cwd, ...args)
    expect(code).toBe(2)
    expect(stderr).toContain(`capsule-host: ${message}`)
    expect(stderr).toContain('Usage: capsule-host new <name>')
    expect(readdirSync(cwd)).toEqual([])
  })

  test('a folder that cannot be made (a file in its path) exits 1, naming the file it could not write', async () => {
    const cwd = scratch()
    writeFileSync(join(cwd, 'plain'), 'a file')
    const { code, stdout, stderr } = await cli(cwd, 'new', 'my-cap', '--dir', 'plain/sub')
    expect(code).toBe(1)
    expect(stderr).toMatch(new RegExp(`^capsule-host: cannot write ${join(cwd, 'plain/sub')}/\\S+: ENOTDIR`))
    expect(stdout).toBe('')
  })

  test('a folder that is not empty, and a file where the folder would go', async () => {
    const cwd = scratch()
    mkdirSync(join(cwd, 'taken'))
    writeFileSync(join(cwd, 'taken/keep.txt'), 'mine')
    const taken = await cli(cwd, 'new', 'my-cap', '--dir', 'taken')
    expect(taken.code).toBe(2)
    expect(taken.stderr).toContain(`capsule-host: ${join(cwd, 'taken')} exists and is not an empty folder: give another --dir or name`)
    expect(readdirSync(join(cwd, 'taken'))).toEqual(['keep.txt'])
    writeFileSync(join(cwd, 'my-cap'), 'a file')
    const file = await cli(cwd, 'new', 'my-cap')
    expect(file.code).toBe(2)
    expect(file.stderr).toContain(`capsule-host: ${join(cwd, 'my-cap')} exists and is not an empty folder`)
  })
})

describe('npm package-name rules', () => {
  test.each<[string, string | undefined]>([
    ['a', undefined],
    ['my-cap', undefined],
    ['my.cap_2', undefined],
    ['@acme/my-cap', undefined],
    ['a'.repeat(MAX_NAME_LENGTH), undefined],
    ['a'.repeat(MAX_NAME_LENGTH + 1), 'a name can have at most 214 characters'],
    ['', 'a name cannot be empty'],
    [' cap', 'a name cannot start or end with a space'],
    ['cap ', 'a name cannot start or end with a space'],
    ['.cap', 'a name cannot start with "."'],
    ['_cap', 'a name cannot start with "_"'],
    ['-cap', 'a name cannot start with "-"'],
    ['ca-p', undefined],
    ['capsule-host', '"capsule-host" is a dependency of the project (npm cannot install a package into itself)'],
    ['assemblyscript', '"assemblyscript" is a dependency of the project (npm cannot install a package into itself)'],
    ['@extism/as-pdk', '"@extism/as-pdk" is a dependency of the project (npm cannot install a package into itself)'],
    ['node_modules', '"node_modules" is reserved'],
    ['favicon.ico', '"favicon.ico" is reserved'],
    ['http', '"http" is a Node.js core module'],
    ['Cap', 'a name must be lower case'],
    ['cap!', "a name cannot contain any of ~'!()*"],
    ['ca(p)', "a name cannot contain any of ~'!()*"],
    ['@acme/ca~p', "a name cannot contain any of ~'!()*"],
    ['c%p', 'a name may hold only URL-safe characters (a-z, 0-9, "-", "_", "."), and one "/" after an @scope'],
    ['ca:p', 'a name may hold only URL-safe characters (a-z, 0-9, "-", "_", "."), and one "/" after an @scope'],
    ['a/b', 'a name may hold only URL-safe characters (a-z, 0-9, "-", "_", "."), and one "/" after an @scope'],
    ['@acme/', 'a name may hold only URL-safe characters (a-z, 0-9, "-", "_", "."), and one "/" after an @scope'],
    ['@/cap', 'a name may hold only URL-safe characters (a-z, 0-9, "-", "_", "."), and one "/" after an @scope'],
    ['@acme/a/b', 'a name may hold only URL-safe characters (a-z, 0-9, "-", "_", "."), and one "/" after an @scope'],
    ['@acme/.cap', 'a name cannot start with "." or "_" after its scope'],
    ['@acme/_cap', 'a name cannot start with "." or "_" after its scope'],
  ])('%j: %s', (name, problem) => {
    expect(packageNameProblem(name)).toBe(problem)
  })
})

describe('progress', () => {
  const recorder = (isTTY: boolean) => {
    const written: string[] = []
    return { stream: { isTTY, write: (text: string) => written.push(text) }, written }
  }

  test('a pipe gets nothing at all', () => {
    const { stream, written } = recorder(false)
    const progress = progressOn(stream, {})
    progress.step('write a')
    progress.done()
    progress.fail()
    expect(written).toEqual([])
  })

  test('a terminal gets each step, replaced by its ✓ line when the next starts', () => {
    const { stream, written } = recorder(true)
    const progress = progressOn(stream, {})
    progress.step('write a')
    progress.step('write b')
    progress.done()
    expect(written).toEqual([
      '\r\x1b[2K\x1b[2m…\x1b[0m write a',
      '\r\x1b[2K\x1b[32m✓\x1b[0m write a\n',
      '\r\x1b[2K\x1b[2m…\x1b[0m write b',
      '\r\x1b[2K\x1b[32m✓\x1b[0m write b\n',
    ])
  })

  test('a failed step gets ✗; NO_COLOR keeps the lines and drops the colour', () => {
    const { stream, written } = recorder(true)
    const progress = progressOn(stream, { NO_COLOR: '1' })
    progress.step('write a')
    progress.fail()
    expect(written).toEqual(['\r\x1b[2K… write a', '\r\x1b[2K✗ write a\n'])
  })

  test('NO_COLOR set to "" is as if unset (no-color.org): the colour stays', () => {
    const { stream, written } = recorder(true)
    const progress = progressOn(stream, { NO_COLOR: '' })
    progress.step('write a')
    progress.fail()
    expect(written).toEqual(['\r\x1b[2K\x1b[2m…\x1b[0m write a', '\r\x1b[2K\x1b[31m✗\x1b[0m write a\n'])
  })

  test.skipIf(!hasScript())('the real CLI on a terminal (script(1) gives it a pty): one ✓ line per file', () => {
    const cwd = scratch()
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} new my-cap`
    const out = execFileSync('script', ['-qec', command, '/dev/null'], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
    for (const file of TEMPLATE_FILES) expect(out).toContain(`✓ write ${file}`)
    expect(out).toContain('Created my-cap in my-cap')
  })
})

describe('new --install: npm install and npm run build in the project', () => {
  /** A stand-in npm first on PATH: it logs where and with what it ran, and fails when told to. */
  function fakeNpm(failOn?: string) {
    const bin = scratch()
    const log = join(bin, 'npm.log')
    writeFileSync(join(bin, 'npm'), [
      '#!/bin/sh',
      'echo "$PWD|$*" >> "$FAKE_NPM_LOG"',
      'echo "npm says $*"',
      'if [ "$*" = "$FAKE_NPM_FAIL" ]; then echo "boom" >&2; exit 3; fi',
      '',
    ].join('\n'))
    chmodSync(join(bin, 'npm'), 0o755)
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_NPM_LOG: log, FAKE_NPM_FAIL: failOn ?? '' }
    return { env, ran: () => (existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n') : []) }
  }

  test('runs them in order in the project folder; in a pipe their output is not shown', async () => {
    const cwd = scratch()
    const npm = fakeNpm()
    const { code, stdout, stderr } = await cliWith(npm.env, cwd, 'new', 'my-cap', '--install')
    expect(code).toBe(0)
    expect(npm.ran()).toEqual([`${join(cwd, 'my-cap')}|install`, `${join(cwd, 'my-cap')}|run build`])
    expect(stdout).toContain('Created my-cap in my-cap, installed and built')
    expect(stdout).not.toContain('npm install')
    expect(stderr).toBe('')
  })

  test('a failing step stops there: exit 1, its output and which step on stderr', async () => {
    const cwd = scratch()
    const npm = fakeNpm('install')
    const { code, stdout, stderr } = await cliWith(npm.env, cwd, 'new', 'my-cap', '--install')
    expect(code).toBe(1)
    expect(npm.ran()).toEqual([`${join(cwd, 'my-cap')}|install`])
    expect(stderr).toBe(`npm says install\nboom\ncapsule-host: npm install failed (exit 3) in ${join(cwd, 'my-cap')}\n`)
    expect(stdout).toBe('')
  })

  test('no npm on PATH: exit 1, saying npm could not start', async () => {
    const cwd = scratch()
    const { code, stderr } = await cliWith({ ...process.env, PATH: scratch() }, cwd, 'new', 'my-cap', '--install')
    expect(code).toBe(1)
    expect(stderr).toBe(`cannot start npm: spawn npm ENOENT\ncapsule-host: npm install failed (exit 127) in ${join(cwd, 'my-cap')}\n`)
  })

  test.skipIf(!hasScript())('on a terminal each npm step is a line with its seconds', () => {
    const cwd = scratch()
    const npm = fakeNpm()
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} new my-cap --install`
    const out = execFileSync('script', ['-qec', command, '/dev/null'], { cwd, encoding: 'utf8', env: { ...npm.env, NO_COLOR: '1' } })
    expect(out).toMatch(/✓ npm install \(\d+ s\)/)
    expect(out).toMatch(/✓ npm run build \(\d+ s\)/)
  })
})

describe('a timed step', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  test('counts its seconds on its line, once a second, and ends with them', () => {
    vi.useFakeTimers()
    const written: string[] = []
    const progress = progressOn({ isTTY: true, write: (text: string) => written.push(text) }, { NO_COLOR: '1' })
    progress.step('npm install', { timed: true })
    vi.advanceTimersByTime(2000)
    progress.done()
    vi.advanceTimersByTime(5000)
    expect(written).toEqual([
      '\r\x1b[2K… npm install (0 s)',
      '\r\x1b[2K… npm install (1 s)',
      '\r\x1b[2K… npm install (2 s)',
      '\r\x1b[2K✓ npm install (2 s)\n',
    ])
  })
})
