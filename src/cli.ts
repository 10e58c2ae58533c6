#!/usr/bin/env node
// The capsule-host command line: run a capsule's export, or explain what the rules decide for a URL.
import { readFileSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { safeText } from './safe-text.js'
import { MAX_TIMER_MS } from './timers.js'

const USAGE = {
  main: `Usage: capsule-host <command> [options]

Commands:
  run <capsule.wasm> <export>   call an export of a capsule, printing its output
  explain <url>                 print what the rules decide for a request, without connecting

Run "capsule-host <command> --help" for the options of a command.`,
  run: `Usage: capsule-host run <capsule.wasm> <export> [options]

Prints the export's output on stdout and one decision line per request on stderr.

Options:
  --input JSON|@file       the export's input (text, or the contents of a file)
  --allow HOST             allow https://HOST (or a URL such as http://HOST:8080); repeatable
  --rules rules.json       rules from a file: an array of rules, or { "rules": [...] }
  --isolation MODE         worker (default) or inline (needs Node 25+)
  --resolve NAME=IP        answer NAME with IP instead of DNS; repeatable
  --allow-address CIDR     exempt a CIDR from the address blocklist (for local servers); repeatable
  --ca file.pem            trust an extra CA certificate
  --timeout MS             the call's time limit (default 30000)
  --verbose                print every audit event as a JSON line on stderr instead of decision lines
  -h, --help               this help`,
  explain: `Usage: capsule-host explain <url> [options]

Prints the decision, the rule or check that decided, the reason and the addresses.
Exits 0 when the request would be allowed, 1 when it would be refused.

Options:
  --method M               the request method (default GET)
  --allow HOST             allow https://HOST (or a URL such as http://HOST:8080); repeatable
  --rules rules.json       rules from a file: an array of rules, or { "rules": [...] }
  --resolve NAME=IP        answer NAME with IP instead of DNS; repeatable
  --allow-address CIDR     exempt a CIDR from the address blocklist; repeatable
  -h, --help               this help`,
}

class UsageError extends Error {}

const COMMON = {
  allow: { type: 'string', multiple: true },
  rules: { type: 'string' },
  resolve: { type: 'string', multiple: true },
  'allow-address': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options']

const OPTIONS = {
  run: {
    ...COMMON,
    input: { type: 'string' },
    isolation: { type: 'string' },
    ca: { type: 'string' },
    timeout: { type: 'string' },
    verbose: { type: 'boolean' },
  },
  explain: { ...COMMON, method: { type: 'string' } },
} as const

type Rule = { host: string; httpsOnly?: boolean; port?: number | number[] }

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${(error as Error).message}`)
  }
}

/** `api.example.com` allows https on 443; a URL such as `http://localhost:8080` allows that scheme and port. */
function ruleFor(allow: string): Rule {
  if (!allow.includes('://')) return { host: allow }
  let url: URL
  try {
    url = new URL(allow)
  } catch {
    throw new UsageError(`--allow ${allow}: not a host or URL`)
  }
  const port = url.port === '' ? undefined : Number(url.port)
  return { host: url.hostname, httpsOnly: url.protocol === 'https:', ...(port ? { port } : {}) }
}

function rulesFrom(values: { allow?: string[]; rules?: string }): Rule[] {
  const rules = (values.allow ?? []).map(ruleFor)
  if (values.rules) {
    let parsed: unknown
    try {
      parsed = JSON.parse(readText(values.rules, 'rules file'))
    } catch (error) {
      if (error instanceof UsageError) throw error
      throw new UsageError(`--rules ${values.rules}: not valid JSON`)
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { rules?: unknown })?.rules
    if (!Array.isArray(list)) throw new UsageError(`--rules ${values.rules}: expected an array of rules or { "rules": [...] }`)
    rules.push(...(list as Rule[]))
  }
  return rules
}

function resolverFrom(entries: string[] | undefined) {
  if (!entries?.length) return undefined
  const table = new Map<string, string[]>()
  for (const entry of entries) {
    const [name, address] = entry.split('=')
    if (!name || !address) throw new UsageError(`--resolve ${entry}: expected NAME=IP`)
    table.set(name.toLowerCase(), [...(table.get(name.toLowerCase()) ?? []), address])
  }
  return async (hostname: string) => {
    const answer = table.get(hostname)
    if (!answer) throw new Error(`${hostname} is not in --resolve`)
    return answer
  }
}

/** The safe fetch options both commands take: rules, --resolve and --allow-address. */
function fetchOptions(values: { allow?: string[]; rules?: string; resolve?: string[]; 'allow-address'?: string[] }) {
  const resolver = resolverFrom(values.resolve)
  return {
    rules: rulesFrom(values),
    addressPolicy: { unsafeAllow: values['allow-address'] ?? [] },
    ...(resolver ? { resolver } : {}),
  }
}

/** createSafeFetch, with a bad rule or CIDR from the command line reported as a usage error. */
function createFetch(api: Awaited<ReturnType<typeof loadApi>>, options: Parameters<Awaited<ReturnType<typeof loadApi>>['createSafeFetch']>[0]) {
  try {
    return api.createSafeFetch(options)
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(error.message)
    throw error
  }
}

function parse<T extends ParseArgsConfig['options']>(options: T, args: string[]) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0 || n > MAX_TIMER_MS) {
    throw new UsageError(`--${name} ${value}: expected a whole number of milliseconds from 1 to ${MAX_TIMER_MS}`)
  }
  return n
}

async function loadApi() {
  // Extism imports node:wasi, which prints an ExperimentalWarning that means nothing here.
  process.removeAllListeners('warning')
  process.on('warning', (warning) => {
    if (warning.name !== 'ExperimentalWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`)
  })
  return import('./index.js')
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(OPTIONS.run, args)
  if (values.help) return print(USAGE.run)
  const [wasm, exportName, ...extra] = positionals
  if (!wasm || !exportName || extra.length) throw new UsageError('run needs a capsule file and an export name')
  if (values.isolation !== undefined && values.isolation !== 'worker' && values.isolation !== 'inline') {
    throw new UsageError(`--isolation ${values.isolation}: expected worker or inline`)
  }
  const input = values.input?.startsWith('@') ? readText(values.input.slice(1), 'input file') : values.input
  const callTimeoutMs = positiveInt(values.timeout, 'timeout')
  const api = await loadApi()
  const fetch = createFetch(api, {
    ...fetchOptions(values),
    ...(values.ca ? { tls: { ca: readText(values.ca, 'CA file') } } : {}),
    ...(values.verbose ? { auditStream: process.stderr } : {}),
    onRequest: (e) => {
      if (values.verbose) return
      // A refusal's reason may quote what the capsule sent (an unknown key, a header name): escaped.
      const why = [e.reason, e.detail].filter((part) => part !== undefined).join(': ')
      const outcome = e.code ? `${e.code}: ${safeText(why)}` : `${e.status}`
      process.stderr.write(`${e.allowed ? 'allowed' : 'refused'} ${e.method ?? '-'} ${e.url ?? '-'} -> ${outcome} (${e.decidedBy ?? 'no decision'}, ${e.durationMs} ms)\n`)
    },
  })
  const runtime = api.createRuntime({
    fetch,
    ...(values.isolation ? { isolation: values.isolation as 'worker' | 'inline' } : {}),
    ...(callTimeoutMs ? { limits: { callTimeoutMs } } : {}),
  })
  try {
    const capsule = await runtime.load({ wasm })
    const output = await capsule.call(exportName, input)
    process.stdout.write(output.bytes())
    if (process.stdout.isTTY) process.stdout.write('\n')
    return 0
  } catch (error) {
    const code = (error as { code?: string }).code
    process.stderr.write(`capsule-host: ${code ? `${code}: ` : ''}${(error as Error).message}\n`)
    return 1
  } finally {
    await runtime.close()
    await fetch.close()
  }
}

async function explain(args: string[]): Promise<number> {
  const { values, positionals } = parse(OPTIONS.explain, args)
  if (values.help) return print(USAGE.explain)
  const [url, ...extra] = positionals
  if (!url || extra.length) throw new UsageError('explain needs exactly one URL')
  const api = await loadApi()
  const fetch = createFetch(api, fetchOptions(values))
  const decision = await fetch.explain({ url, method: values.method ?? 'GET' }, { capsuleId: 'cli' })
  const lines = [
    `${decision.allowed ? 'allowed' : 'refused'}${decision.code ? ` (${decision.code})` : ''}: ${(values.method ?? 'GET').toUpperCase()} ${url}`,
    `decided by: ${decision.decidedBy ?? '-'}`,
    ...(decision.reason ? [`reason: ${decision.reason}`] : []),
    ...(decision.detail ? [`detail: ${safeText(decision.detail)}`] : []),
    ...(decision.addresses ?? []).map(
      (a) => `address: ${a.address} (${a.class})${a.embedded ? `, embeds ${a.embedded.map((e) => `${e.address} (${e.class})`).join(', ')}` : ''}`,
    ),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  await fetch.close()
  return decision.allowed ? 0 : 1
}

function print(text: string): number {
  process.stdout.write(`${text}\n`)
  return 0
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === 'run') return await run(rest)
    if (command === 'explain') return await explain(rest)
    if (command === '--help' || command === '-h' || command === 'help') return print(USAGE.main)
    throw new UsageError(command ? `unknown command "${command}"` : 'no command given')
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    const usage = command === 'run' || command === 'explain' ? USAGE[command] : USAGE.main
    process.stderr.write(`capsule-host: ${error.message}\n\n${usage}\n`)
    return 2
  }
}

process.exitCode = await main(process.argv.slice(2))
