#!/usr/bin/env node
// The capsule-host command line: run a capsule's export, or explain what the rules decide for a URL.
import { readFileSync } from 'node:fs'
import { buffer as readAll } from 'node:stream/consumers'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { Isolation } from './runtime/runtime.js'
import { LOG_LEVELS, type LogLevel } from './runtime/logs.js'
import { safeText } from './safe-text.js'
import { MAX_TIMER_MS } from './timers.js'

const USAGE = {
  main: `Usage: capsule-host <command> [options]

Commands:
  run <capsule.wasm> <export>   call an export of a capsule, printing its output
  explain <url>                 print what the rules decide for a request, without connecting

Options:
  --version                     print the version
  -h, --help                    this help

Run "capsule-host <command> --help" for the options of a command.`,
  run: `Usage: capsule-host run <capsule.wasm> <export> [options]
       capsule-host run --manifest <manifest.json> <export> [options]

Prints the export's output on stdout and one decision line per request on stderr.

Options:
  --input TEXT|@file       the export's input (text, or the contents of a file)
  --stdin                  read the export's input from stdin
  --manifest FILE          a capsule.json or an Extism manifest (told apart by content); the
                           module may then be left out when the manifest names it
  --config KEY=VALUE       a config value the capsule reads; repeatable; wins over the manifest's
  --allow HOST|URL         allow https://HOST, or a URL such as http://HOST:8080; a path in the
                           URL (https://HOST/v1/**) allows only that route; repeatable
  --rules rules.json       rules from a file: an array of rules, or { "rules": [...] }
  --isolation MODE         worker (default), inline or pool (inline and pool need Node 25+)
  --resolve NAME=IP        answer NAME with IP instead of DNS; repeatable
  --allow-address CIDR     exempt a CIDR from the address blocklist (for local servers); repeatable
  --ca file.pem            trust an extra CA certificate
  --timeout MS             the call's time limit (default 30000)
  --memory-max PAGES       the capsule's memory limit in 64 KiB pages (default 4096: 256 MiB)
  --http-response-max BYTES  the largest buffered response body (default 10485760)
  --log-level LEVEL        print the capsule's log lines at LEVEL and above (trace, debug, info,
                           warn, error) and its WASI stdout and stderr, on stderr
  --wasi-arg ARG           grant the WASI module an argument (the first is its argv[0]); repeatable
  --wasi-env NAME=VALUE    grant the WASI module an environment variable; repeatable
  --verbose                print every audit event as a JSON line on stderr instead of decision lines
  -h, --help               this help`,
  explain: `Usage: capsule-host explain <url> [options]

Prints the decision, the rule or check that decided, the reason and the addresses.
Exits 0 when the request would be allowed, 1 when it would be refused.

Options:
  --method M               the request method (default GET)
  --allow HOST|URL         allow https://HOST, or a URL such as http://HOST:8080; a path in the
                           URL (https://HOST/v1/**) allows only that route; repeatable
  --rules rules.json       rules from a file: an array of rules, or { "rules": [...] }
  --resolve NAME=IP        answer NAME with IP instead of DNS; repeatable
  --allow-address CIDR     exempt a CIDR from the address blocklist; repeatable
  --json                   print the decision as one JSON object
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
    stdin: { type: 'boolean' },
    manifest: { type: 'string' },
    config: { type: 'string', multiple: true },
    isolation: { type: 'string' },
    ca: { type: 'string' },
    timeout: { type: 'string' },
    'memory-max': { type: 'string' },
    'http-response-max': { type: 'string' },
    'log-level': { type: 'string' },
    'wasi-arg': { type: 'string', multiple: true },
    'wasi-env': { type: 'string', multiple: true },
    verbose: { type: 'boolean' },
  },
  explain: { ...COMMON, method: { type: 'string' }, json: { type: 'boolean' } },
} as const

const PAGE_BYTES = 64 * 1024
const MAX_PAGES = 65536

type Rule = { host: string; httpsOnly?: boolean; port?: number | number[]; routes?: { path: string }[] }

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${(error as Error).message}`)
  }
}

/** One --allow: its origin rule, and the route its path names (none for a bare origin or "/"). */
interface Allowed {
  readonly rule: Rule
  readonly path: string | undefined
}

/**
 * `api.example.com` allows https on 443; a URL such as `http://localhost:8080` allows that scheme
 * and port; a path (`https://api.example.com/v1/**`) becomes a route, never dropped.
 */
function allowedFor(allow: string): Allowed {
  const spelled = allow.includes('://') || !allow.includes('/') ? allow : `https://${allow}`
  const hostAndPort = /^([^:[\]]+):(\d+)$/.exec(spelled)
  if (hostAndPort) throw new UsageError(`--allow ${allow}: give a port as a URL, such as https://${hostAndPort[1]}:${hostAndPort[2]} (or http://...)`)
  if (!spelled.includes('://')) return { rule: { host: allow }, path: undefined }
  let url: URL
  try {
    url = new URL(spelled)
  } catch {
    throw new UsageError(`--allow ${allow}: not a host or URL`)
  }
  if (url.search !== '' || url.hash !== '' || spelled.endsWith('?') || spelled.endsWith('#')) {
    throw new UsageError(`--allow ${allow}: a query or fragment cannot be allowed; give the origin and, for a route, a path`)
  }
  const path = url.pathname === '/' ? undefined : url.pathname
  const star = path?.split('/').find((segment) => segment.includes('*') && segment !== '**')
  if (path !== undefined && star !== undefined) {
    const base = path.slice(0, path.indexOf(star)).replace(/\/$/, '')
    throw new UsageError(
      `--allow ${allow}: "${star}" is not a route pattern; use ${base}/:name for one segment, or ${base}/** for every path under ${base || '/'}`,
    )
  }
  const port = url.port === '' ? undefined : Number(url.port)
  return { rule: { host: url.hostname, httpsOnly: url.protocol === 'https:', ...(port ? { port } : {}) }, path }
}

/** The --allow rules, one per origin: the routes of one origin's paths together, or every path when one --allow gave none. */
function allowRules(values: string[]): Rule[] {
  const origins = new Map<string, { rule: Rule; paths: string[] | undefined }>()
  for (const { rule, path } of values.map(allowedFor)) {
    // One key per origin set, however it was spelled: `api.test` and `https://api.test:443/x` are the same.
    const https = rule.httpsOnly !== false
    const key = JSON.stringify([rule.host, https, rule.port ?? (https ? 443 : 'scheme default')])
    const seen = origins.get(key)
    if (!seen) origins.set(key, { rule, paths: path === undefined ? undefined : [path] })
    else if (seen.paths && path !== undefined) seen.paths.push(path)
    else seen.paths = undefined
  }
  return [...origins.values()].map(({ rule, paths }) => (paths ? { ...rule, routes: paths.map((path) => ({ path })) } : rule))
}

function rulesFrom(values: { allow?: string[]; rules?: string }): Rule[] {
  const rules = allowRules(values.allow ?? [])
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

/** `NAME=VALUE` pairs (split at the first "="), later ones winning. */
function pairs(entries: string[] | undefined, flag: string, what: string): Record<string, string> | undefined {
  if (!entries?.length) return undefined
  // No prototype: `__proto__=x` is a name like any other, not the object's prototype.
  const out: Record<string, string> = Object.create(null)
  for (const entry of entries) {
    const at = entry.indexOf('=')
    if (at <= 0) throw new UsageError(`--${flag} ${entry}: expected ${what}`)
    out[entry.slice(0, at)] = entry.slice(at + 1)
  }
  return out
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

type Api = Awaited<ReturnType<typeof loadApi>>

/** createSafeFetch, with a bad rule or CIDR from the command line reported as a usage error. */
function createFetch(api: Api, options: Parameters<Api['createSafeFetch']>[0]) {
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

/** A whole number from 1 to `max` given to `--name`, or undefined when the flag is absent. */
function wholeNumber(value: string | undefined, name: string, unit: string, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0 || n > max) {
    throw new UsageError(`--${name} ${value}: expected a whole number of ${unit} from 1 to ${max}`)
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

type RunValues = ReturnType<typeof parse<typeof OPTIONS.run>>['values']

/** What `run` was asked to do, checked before anything is loaded. */
function runPlan(values: RunValues, positionals: string[]) {
  const count = positionals.length
  if (values.manifest === undefined ? count !== 2 : count !== 1 && count !== 2) {
    throw new UsageError(values.manifest === undefined ? 'run needs a capsule file and an export name' : 'run --manifest needs an export name (and, optionally, the capsule file before it)')
  }
  const exportName = positionals.at(-1)!
  const wasm = positionals.length === 2 ? positionals[0] : undefined
  if (wasm?.toLowerCase().endsWith('.json') && values.manifest === undefined) {
    throw new UsageError(`${wasm} looks like a manifest, not a module: give it as --manifest ${wasm}`)
  }
  if (values.isolation !== undefined && !['worker', 'inline', 'pool'].includes(values.isolation)) {
    throw new UsageError(`--isolation ${values.isolation}: expected worker, inline or pool`)
  }
  const level = values['log-level']
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level ${level}: expected one of ${LOG_LEVELS.join(', ')}`)
  }
  if (values.stdin && values.input !== undefined) throw new UsageError('give the input with --input or --stdin, not both')
  const input = values.input?.startsWith('@') ? readText(values.input.slice(1), 'input file') : values.input
  const pages = wholeNumber(values['memory-max'], 'memory-max', '64 KiB pages', MAX_PAGES)
  const maxResponseBytes = wholeNumber(values['http-response-max'], 'http-response-max', 'bytes', Number.MAX_SAFE_INTEGER)
  const callTimeoutMs = wholeNumber(values.timeout, 'timeout', 'milliseconds', MAX_TIMER_MS)
  const config = pairs(values.config, 'config', 'KEY=VALUE')
  const env = pairs(values['wasi-env'], 'wasi-env', 'NAME=VALUE')
  const args = values['wasi-arg']
  const wasi = args || env ? { ...(args ? { args } : {}), ...(env ? { env } : {}) } : undefined
  const limits = { ...(callTimeoutMs ? { callTimeoutMs } : {}), ...(pages ? { memoryBytes: pages * PAGE_BYTES } : {}) }
  return { exportName, wasm, input, level: level as LogLevel | undefined, maxResponseBytes, config, wasi, limits }
}

/** One decision line per request (`allowed GET url -> 200 (rule:x, 3 ms)`), or nothing with --verbose. */
function decisionLine(e: { allowed: boolean; method?: string; url?: string; code?: string; status?: number; reason?: string; detail?: string; decidedBy?: string; durationMs: number }) {
  // A refusal's reason may quote what the capsule sent (an unknown key, a header name): escaped.
  const why = [e.reason, e.detail].filter((part) => part !== undefined).join(': ')
  const outcome = e.code ? `${e.code}: ${safeText(why)}` : `${e.status}`
  process.stderr.write(`${e.allowed ? 'allowed' : 'refused'} ${e.method ?? '-'} ${e.url ?? '-'} -> ${outcome} (${e.decidedBy ?? 'no decision'}, ${e.durationMs} ms)\n`)
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(OPTIONS.run, args)
  if (values.help) return print(USAGE.run)
  const plan = runPlan(values, positionals)
  const input = values.stdin ? await readAll(process.stdin) : plan.input
  const api = await loadApi()
  const fetch = createFetch(api, {
    ...fetchOptions(values),
    ...(values.ca ? { tls: { ca: readText(values.ca, 'CA file') } } : {}),
    ...(plan.maxResponseBytes ? { limits: { maxResponseBytes: plan.maxResponseBytes } } : {}),
    ...(values.verbose ? { auditStream: process.stderr } : {}),
    onRequest: (e) => {
      if (!values.verbose) decisionLine(e)
    },
  })
  const runtime = api.createRuntime({
    fetch,
    ...(values.isolation ? { isolation: values.isolation as Isolation } : {}),
    limits: plan.limits,
    // The engine has made each line safe to print (control characters escaped, capped).
    ...(plan.level ? { logLevel: plan.level, onLog: (e) => void process.stderr.write(`[${e.level}] ${e.message}\n`) } : {}),
  })
  try {
    const capsule = await runtime.load({
      ...(plan.wasm ? { wasm: plan.wasm } : {}),
      ...(values.manifest ? { manifest: values.manifest } : {}),
      ...(plan.config ? { config: plan.config } : {}),
      ...(plan.wasi ? { wasi: plan.wasi } : {}),
    })
    const output = await capsule.call(plan.exportName, input)
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
  const method = (values.method ?? 'GET').toUpperCase()
  const decision = await fetch.explain({ url, method }, { capsuleId: 'cli' })
  await fetch.close()
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ method, url, ...decision })}\n`)
    return decision.allowed ? 0 : 1
  }
  const lines = [
    `${decision.allowed ? 'allowed' : 'refused'}${decision.code ? ` (${decision.code})` : ''}: ${method} ${url}`,
    `decided by: ${decision.decidedBy ?? '-'}`,
    ...(decision.route ? [`route: ${decision.route}`] : []),
    ...(decision.reason ? [`reason: ${decision.reason}`] : []),
    ...(decision.detail ? [`detail: ${safeText(decision.detail)}`] : []),
    ...(decision.addresses ?? []).map(
      (a) => `address: ${a.address} (${a.class})${a.embedded ? `, embeds ${a.embedded.map((e) => `${e.address} (${e.class})`).join(', ')}` : ''}`,
    ),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  return decision.allowed ? 0 : 1
}

function print(text: string): number {
  process.stdout.write(`${text}\n`)
  return 0
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return `capsule-host ${pkg.version}`
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === 'run') return await run(rest)
    if (command === 'explain') return await explain(rest)
    if (command === '--version') return print(version())
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
