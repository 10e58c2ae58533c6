// docs/api.md's tables match the TypeScript sources: scripts/api-doc.mjs passes on the page and fails on every kind of drift.
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test } from 'vitest'
import { problemsOf, regenerate } from '../scripts/api-doc.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PAGE = readFileSync(join(ROOT, 'docs/api.md'), 'utf8')
const scratch = mkdtempSync(join(tmpdir(), 'api-doc-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function apiDoc(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'scripts/api-doc.mjs'), ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

/** The page with the first line that contains `needle` removed (the line must exist). */
function withoutLine(text: string, needle: string): string {
  const lines = text.split('\n')
  const at = lines.findIndex((line) => line.includes(needle))
  if (at < 0) throw new Error(`no line contains ${needle}`)
  return [...lines.slice(0, at), ...lines.slice(at + 1)].join('\n')
}

/** The page with `from` replaced once (it must occur). */
function replaced(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the page has no ${from}`)
  return text.replace(from, to)
}

test('docs/api.md matches the sources (the script as CI runs it)', async () => {
  const { code, stdout, stderr } = await apiDoc([])
  expect(stderr).toBe('')
  expect(code).toBe(0)
  // Every section is checked: none may drop out unnoticed (a file renamed, a section skipped).
  expect(stdout).toBe('docs/api.md: 67 tables match the sources\n')
})

test('the script exits 1 and names the problem for a stale copy', async () => {
  const copy = join(scratch, 'stale.md')
  writeFileSync(copy, withoutLine(PAGE, '| `maxRedirects` | `number` |'))
  const { code, stderr } = await apiDoc(['--doc', copy])
  expect(code).toBe(1)
  expect(stderr).toContain('SafeFetchOptions: the table is stale; it lacks the line: | `maxRedirects` |')
  expect(stderr).toContain('1 problem(s); regenerate the tables with: node scripts/api-doc.mjs --write')
})

describe('a page that drifted from the code fails, naming what', () => {
  test.each([
    ['an option row removed', withoutLine(PAGE, '| `maxRedirects` | `number` |'), 'SafeFetchOptions: the table is stale; it lacks the line: | `maxRedirects` |'],
    ['an option with the wrong type', replaced(PAGE, '| `limits` | `Partial<Limits>` |', '| `limits` | `Limits` |'), 'SafeFetchOptions: the table is stale; it lacks the line: | `limits` | `Partial<Limits>` |'],
    ['a default that is not the code\'s', replaced(PAGE, '| `maxOpenStreams` | `number` | `4` |', '| `maxOpenStreams` | `number` | `8` |'), 'Limits: the table is stale; it lacks the line: | `maxOpenStreams` | `number` | `4` |'],
    ['a row for an option that does not exist', replaced(PAGE, '| `maxRedirects` |', '| `maxRedirect` | `number` | — | Old name. |\n| `maxRedirects` |'), 'SafeFetchOptions: the table is stale; it has a line the source does not give: | `maxRedirect` |'],
    ['a call-limit row removed', withoutLine(PAGE, '| `callTimeoutMs` |'), 'RuntimeLimits: the table is stale; it lacks the line: | `callTimeoutMs` |'],
    ['an audit field removed', withoutLine(PAGE, '| `bytesOut` |'), 'AuditEvent: the table is stale; it lacks the line: | `bytesOut` |'],
    ['a load option removed', withoutLine(PAGE, '| `wasi` | `WasiGrants` |'), 'LoadOptions: the table is stale; it lacks the line: | `wasi` |'],
    ['a test-kit option removed', withoutLine(PAGE, '| `runtimeLimits` |'), 'TestHostOptions: the table is stale; it lacks the line: | `runtimeLimits` |'],
    ['a mock route field removed', withoutLine(PAGE, '| `times` |'), 'MockRoute: the table is stale; it lacks the line: | `times` |'],
    ['a whole table gone', withoutLine(PAGE, '<!-- api:ResolutionCacheOptions -->'), 'ResolutionCacheOptions: no table (markers'],
    ['a table the script does not know', `${PAGE}\n<!-- api:Nonsense -->\n<!-- /api:Nonsense -->\n`, 'Nonsense: the page has a table for it, but scripts/api-doc.mjs\'s SECTIONS does not list it'],
    ['an option missing from its example', replaced(PAGE, '    maxOpenStreams: 2,\n', ''), 'Limits.maxOpenStreams: not used in the example after the table'],
  ])('%s', (_name, page, message) => {
    const problems = problemsOf(page)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toContain(message)
  })
})

test('a new option in the source makes the page stale until the tables are written again', () => {
  const root = join(scratch, 'root')
  cpSync(join(ROOT, 'src'), join(root, 'src'), { recursive: true })
  const file = join(root, 'src/safe-fetch.ts')
  const marker = '  /** Global middleware (one or a list)'
  writeFileSync(file, replaced(readFileSync(file, 'utf8'), marker, `  /** A new option. Default 7. */\n  brandNew?: number\n${marker}`))
  expect(problemsOf(PAGE, root)).toEqual([
    expect.stringContaining('SafeFetchOptions: the table is stale; it lacks the line: | `brandNew` | `number` | `7` | A new option. Default 7. |'),
    'SafeFetchOptions.brandNew: not used in the example after the table',
  ])
  // Regenerated, the table is current; the example does not show the new option yet, and says so.
  const written = regenerate(PAGE, root)
  expect(written).toContain('| `brandNew` | `number` | `7` | A new option. Default 7. |')
  expect(problemsOf(written, root)).toEqual(['SafeFetchOptions.brandNew: not used in the example after the table'])
})
