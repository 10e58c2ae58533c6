// Generates docs/api.md's reference tables from the TypeScript sources (TSDoc included), or checks that they are current.
//
//   node scripts/api-doc.mjs            check docs/api.md; exit 1 and name every stale or missing table
//   node scripts/api-doc.mjs --write    rewrite the tables in docs/api.md between their markers
//   node scripts/api-doc.mjs --doc x.md check (or --write) another copy of the page
//   node scripts/api-doc.mjs --root dir  read the sources from dir/src (a copy) instead of this repo's
//
// A table sits between `<!-- api:Name -->` and `<!-- /api:Name -->`; Name is one entry of SECTIONS.
// An entry marked `example` must be followed, before the next heading, by a code block that uses
// every one of its properties (a short example of each option).
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

/** This repository: where the sources are read from unless a caller names a copy (`--root`). */
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * Every declaration the page documents: its file; for an options table the constant whose
 * initialiser gives the defaults; `output` for what the host receives (no default column);
 * a section whose file or declaration is missing fails the run: every section is checked.
 */
export const SECTIONS = [
  { name: 'createSafeFetch', file: 'src/safe-fetch.ts' },
  { name: 'SafeFetchOptions', file: 'src/safe-fetch.ts', example: true },
  { name: 'Limits', file: 'src/limits.ts', defaults: 'DEFAULT_LIMITS', example: true },
  { name: 'Rule', file: 'src/gate/rules.ts', example: true },
  { name: 'Route', file: 'src/gate/routes.ts', example: true },
  { name: 'Policy', file: 'src/gate/decide.ts' },
  { name: 'PolicyRequest', file: 'src/gate/decide.ts', output: true },
  { name: 'SecurityGate', file: 'src/gate/types.ts', example: true },
  { name: 'GateRequest', file: 'src/gate/types.ts', output: true },
  { name: 'GateVerdict', file: 'src/gate/types.ts' },
  { name: 'MiddlewareOption', file: 'src/middleware/types.ts' },
  { name: 'Middleware', file: 'src/middleware/types.ts' },
  { name: 'MiddlewareRequest', file: 'src/middleware/types.ts', output: true },
  { name: 'MiddlewareResponse', file: 'src/middleware/types.ts', output: true },
  { name: 'MiddlewareResult', file: 'src/middleware/types.ts' },
  { name: 'Resolver', file: 'src/net/resolve.ts' },
  { name: 'ResolverAnswer', file: 'src/net/resolve.ts' },
  { name: 'ResolutionCacheOptions', file: 'src/net/resolution-cache.ts', example: true },
  { name: 'AddressPolicyOptions', file: 'src/net/address-policy.ts', example: true },
  { name: 'QuotaRule', file: 'src/quota/types.ts', example: true },
  { name: 'WindowQuota', file: 'src/quota/types.ts' },
  { name: 'QuotaRequest', file: 'src/quota/types.ts', output: true },
  { name: 'QuotaStore', file: 'src/quota/types.ts' },
  { name: 'MemoryQuotaStoreOptions', file: 'src/quota/memory-store.ts' },
  { name: 'RedisQuotaStoreOptions', file: 'src/quota/redis-store.ts', defaults: 'DEFAULTS', example: true },
  { name: 'TelemetryOptions', file: 'src/telemetry/types.ts', example: true },
  { name: 'ErrorHook', file: 'src/fetch/trace.ts' },
  { name: 'AuditSink', file: 'src/audit.ts' },
  { name: 'SafeFetch', file: 'src/safe-fetch.ts', output: true },
  { name: 'RequestContext', file: 'src/safe-fetch.ts' },
  { name: 'StreamedResponse', file: 'src/safe-fetch.ts', output: true },
  { name: 'Explanation', file: 'src/safe-fetch.ts', output: true },
  { name: 'createRuntime', file: 'src/runtime/runtime.ts' },
  { name: 'RuntimeOptions', file: 'src/runtime/runtime.ts', example: true },
  { name: 'Isolation', file: 'src/runtime/runtime.ts' },
  { name: 'PoolOptions', file: 'src/runtime/runtime.ts', example: true },
  { name: 'RuntimeLimits', file: 'src/runtime/runtime.ts', defaults: 'DEFAULT_RUNTIME_LIMITS', example: true },
  { name: 'LogLevel', file: 'src/runtime/logs.ts' },
  { name: 'LogHandler', file: 'src/runtime/logs.ts' },
  { name: 'CapsuleLogEntry', file: 'src/runtime/logs.ts', output: true },
  { name: 'Runtime', file: 'src/runtime/runtime.ts', output: true },
  { name: 'LoadOptions', file: 'src/runtime/runtime.ts', example: true },
  { name: 'WasmSource', file: 'src/runtime/modules.ts' },
  { name: 'WasiGrants', file: 'src/runtime/wasi-grants.ts', example: true },
  { name: 'Capsule', file: 'src/runtime/capsule.ts', output: true },
  { name: 'CallInput', file: 'src/runtime/capsule.ts' },
  { name: 'CallOutput', file: 'src/runtime/capsule.ts', output: true },
  { name: 'AuditEvent', file: 'src/audit.ts', output: true, example: true },
  { name: 'AuditLog', file: 'src/audit.ts', output: true },
  { name: 'createTestHost', file: 'src/testing/host.ts' },
  { name: 'TestHostOptions', file: 'src/testing/host.ts', example: true },
  { name: 'TestHost', file: 'src/testing/host.ts', output: true },
  { name: 'RunLoadOptions', file: 'src/testing/host.ts' },
  { name: 'RunResult', file: 'src/testing/host.ts', output: true },
  { name: 'MockDescription', file: 'src/testing/mocks.ts', example: true },
  { name: 'MockUpstream', file: 'src/testing/mocks.ts', example: true },
  { name: 'MockRoute', file: 'src/testing/mocks.ts', example: true },
  { name: 'MockChunk', file: 'src/testing/mocks.ts', example: true },
  { name: 'MockReset', file: 'src/testing/mocks.ts' },
  { name: 'loadMocks', file: 'src/testing/mocks.ts' },
  { name: 'parseMocks', file: 'src/testing/mocks.ts' },
  { name: 'startUpstreams', file: 'src/testing/upstreams.ts' },
  { name: 'Upstreams', file: 'src/testing/upstreams.ts', output: true },
  { name: 'Upstream', file: 'src/testing/upstreams.ts', output: true },
  { name: 'ReceivedRequest', file: 'src/testing/upstreams.ts', output: true },
  { name: 'makeTestCertificates', file: 'src/testing/certs.ts' },
  { name: 'TestCertificates', file: 'src/testing/certs.ts', output: true },
]

const collapse = (text) => text.replace(/\s+/g, ' ').trim()
/** A table cell: one line, pipes escaped (GitHub tables need it inside code spans too). */
const cell = (text) => collapse(text).replace(/\|/g, '\\|')
const code = (text) => '`' + cell(text) + '`'

/** The TSDoc text of a declaration (without tags), and its `@defaultValue` / `@deprecated` tags. */
function docOf(node) {
  const parts = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc)
  const doc = parts.at(-1)
  const text = doc ? collapse(ts.getTextOfJSDocComment(doc.comment) ?? '') : ''
  const tag = (name) => doc?.tags?.find((t) => t.tagName.text === name)
  const tagText = (name) => {
    const found = tag(name)
    return found === undefined ? undefined : collapse(ts.getTextOfJSDocComment(found.comment) ?? '')
  }
  return { text, defaultValue: tagText('defaultValue') ?? tagText('default'), deprecated: tagText('deprecated'), internal: tag('internal') !== undefined }
}

/** A default stated in the TSDoc prose: "Default 8", "default `info`", "Default: `capsule-<n>`". */
function defaultInProse(text) {
  const match = /\b[Dd]efault(?: is|:)? (`[^`]+`|-?\d[\d_]*(?:\.\d+)?(?: ms| MiB| KiB)?|true|false|none|nothing)/.exec(text)
  return match?.[1]
}

const source = (root, file) => ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.ES2022, true)

function findDeclaration(root, file, name) {
  let found
  const visit = (node) => {
    if (found) return
    const named = ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node) || ts.isClassDeclaration(node) || ts.isFunctionDeclaration(node)
    if (named && node.name?.text === name) found = node
    else if (ts.isVariableStatement(node)) {
      const declaration = node.declarationList.declarations.find((d) => d.name.getText() === name)
      if (declaration) found = declaration
    }
  }
  ts.forEachChild(source(root, file), visit)
  return found
}

/** The defaults object literal of `const NAME = Object.freeze({ ... })` (or a plain literal, `as const` or not), as name -> source text. */
function defaultsOf(root, file, constant) {
  const declaration = findDeclaration(root, file, constant)
  let literal = declaration?.initializer
  if (literal && ts.isAsExpression(literal)) literal = literal.expression
  if (literal && ts.isCallExpression(literal)) literal = literal.arguments[0]
  if (!literal || !ts.isObjectLiteralExpression(literal)) throw new Error(`${file}: ${constant} is not an object literal`)
  const values = new Map()
  for (const property of literal.properties) {
    if (ts.isPropertyAssignment(property)) values.set(property.name.getText(), property.initializer.getText().replace('Number.POSITIVE_INFINITY', 'Infinity'))
  }
  return values
}

const parameters = (node) => node.parameters.map((p) => p.getText()).join(', ')
const returnType = (node) => (node.type ? node.type.getText() : 'void')

/** One row per property or method: name, type, default, description. Private and @internal members are left out. */
function membersOf(node, defaults) {
  const rows = []
  for (const member of node.members) {
    if (ts.isConstructorDeclaration(member) || ts.isIndexSignatureDeclaration(member) || !member.name) continue
    if (ts.isPrivateIdentifier(member.name)) continue
    if (member.modifiers?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) continue
    const doc = docOf(member)
    if (doc.internal) continue
    const name = member.name.getText()
    const optional = member.questionToken !== undefined
    let type
    if (ts.isMethodSignature(member) || ts.isMethodDeclaration(member)) type = `(${parameters(member)}) => ${returnType(member)}`
    else if (ts.isGetAccessorDeclaration(member)) type = returnType(member)
    else type = member.type ? member.type.getText() : 'unknown'
    // A @defaultValue tag is markdown as written; a value from code or a "Default 8" is shown as code.
    const valued = defaults?.get(name) ?? defaultInProse(doc.text)
    const asCode = valued === undefined ? undefined : valued.startsWith('`') ? valued : code(valued)
    const fallback = optional ? '—' : ts.isPropertySignature(member) || ts.isPropertyDeclaration(member) ? 'required' : '(method)'
    const description = doc.deprecated !== undefined ? `**Deprecated.** ${doc.deprecated}` : doc.text
    rows.push({ name, optional, type, default: doc.defaultValue !== undefined ? cell(doc.defaultValue) : (asCode ?? fallback), description })
  }
  return rows
}

const headerOf = (node) => (ts.isClassDeclaration(node) ? 'member' : 'property')

/** The markdown of one section (what goes between its markers), from the source as it is now. */
export function renderSection(section, root = REPO) {
  const node = findDeclaration(root, section.file, section.name)
  if (!node) throw new Error(`${section.file} declares no ${section.name}`)
  const doc = docOf(ts.isVariableDeclaration(node) ? node.parent.parent : node)
  const lines = [`<sub>${section.file}</sub>`, '']
  if (doc.text) lines.push(doc.text, '')
  if (ts.isFunctionDeclaration(node)) {
    lines.push('```ts', `function ${section.name}(${parameters(node)}): ${returnType(node)}`, '```')
  } else if (ts.isTypeAliasDeclaration(node)) {
    lines.push('```ts', `type ${section.name} = ${node.type.getText()}`, '```')
  } else {
    const heritage = node.heritageClauses?.map((h) => h.getText()).join(' ')
    if (heritage) lines.push(`\`${heritage}\``, '')
    const defaults = section.defaults ? defaultsOf(root, section.file, section.defaults) : undefined
    const header = headerOf(node)
    const rows = membersOf(node, defaults)
    if (section.output) {
      lines.push(`| ${header} | type | description |`, '| --- | --- | --- |')
      for (const row of rows) lines.push(`| \`${row.name}${row.optional ? '?' : ''}\` | ${code(row.type)} | ${cell(row.description)} |`)
    } else {
      lines.push(`| ${header} | type | default | description |`, '| --- | --- | --- | --- |')
      for (const row of rows) lines.push(`| \`${row.name}\` | ${code(row.type)} | ${row.default} | ${cell(row.description)} |`)
    }
  }
  return lines.join('\n')
}

/** The property names of a section's declaration (for the example check). */
function propertyNames(section, root) {
  const node = findDeclaration(root, section.file, section.name)
  return node && (ts.isInterfaceDeclaration(node) || ts.isClassDeclaration(node)) ? membersOf(node).map((row) => row.name) : []
}

const open = (name) => `<!-- api:${name} -->`
const close = (name) => `<!-- /api:${name} -->`

/** The first code block after a section's closing marker, before the next heading. */
function exampleAfter(doc, name) {
  const rest = doc.slice(doc.indexOf(close(name)) + close(name).length)
  const untilHeading = rest.split(/\n#{1,6} /)[0] ?? ''
  return /```[a-z]*\n([\s\S]*?)```/.exec(untilHeading)?.[1]
}

/** Every problem with the page: a missing or unknown section, a stale table, an option without an example. */
export function problemsOf(doc, root = REPO) {
  const problems = []
  const known = new Set(SECTIONS.map((s) => s.name))
  for (const [, name] of doc.matchAll(/<!-- api:([\w$]+) -->/g)) {
    if (!known.has(name)) problems.push(`${name}: the page has a table for it, but scripts/api-doc.mjs's SECTIONS does not list it`)
  }
  for (const section of SECTIONS) {
    const start = doc.indexOf(open(section.name))
    const end = doc.indexOf(close(section.name))
    if (start < 0 || end < start) {
      problems.push(`${section.name}: no table (markers ${open(section.name)} ... ${close(section.name)}) in the page`)
      continue
    }
    const present = doc.slice(start + open(section.name).length, end).trim()
    const expected = renderSection(section, root)
    if (present !== expected) problems.push(`${section.name}: the table is stale; ${firstDifference(present, expected)}`)
    if (section.example) {
      const example = exampleAfter(doc, section.name)
      if (example === undefined) problems.push(`${section.name}: no example code block after its table`)
      else for (const name of propertyNames(section, root)) {
        if (!new RegExp(`\\b${name}\\b`).test(example)) problems.push(`${section.name}.${name}: not used in the example after the table`)
      }
    }
  }
  return problems
}

function firstDifference(present, expected) {
  const have = present.split('\n')
  const want = expected.split('\n')
  const missing = want.find((line) => !have.includes(line))
  if (missing !== undefined) return `it lacks the line: ${missing}`
  const extra = have.find((line) => !want.includes(line))
  return extra !== undefined ? `it has a line the source does not give: ${extra}` : 'its lines are out of order'
}

/** The page with every table regenerated (a section without markers is left for a person to place). */
export function regenerate(doc, root = REPO) {
  let text = doc
  for (const section of SECTIONS) {
    const start = text.indexOf(open(section.name))
    const end = text.indexOf(close(section.name))
    if (start < 0 || end < start) continue
    text = `${text.slice(0, start + open(section.name).length)}\n${renderSection(section, root)}\n${text.slice(end)}`
  }
  return text
}

function main(argv) {
  const value = (flag) => {
    const at = argv.indexOf(flag)
    if (at >= 0 && !argv[at + 1]) throw new Error(`${flag} needs a path`)
    return at >= 0 ? argv[at + 1] : undefined
  }
  const path = value('--doc') ?? join(REPO, 'docs/api.md')
  const root = value('--root') ?? REPO
  if (argv.includes('--write')) writeFileSync(path, regenerate(readFileSync(path, 'utf8'), root))
  const problems = problemsOf(readFileSync(path, 'utf8'), root)
  for (const problem of problems) console.error(`${relative(process.cwd(), path)}: ${problem}`)
  if (problems.length > 0) {
    console.error(`${problems.length} problem(s); regenerate the tables with: node scripts/api-doc.mjs --write`)
    process.exitCode = 1
  } else {
    console.log(`${relative(process.cwd(), path)}: ${SECTIONS.length} tables match the sources`)
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2))
