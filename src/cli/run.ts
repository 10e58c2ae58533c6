// `capsule-host run <capsule.wasm> <export>`: call one export with guarded HTTP, print its output and what its requests did.
import { buffer as readAll } from 'node:stream/consumers'
import type { AuditEvent } from '../audit.js'
import type { Isolation, Runtime } from '../runtime/runtime.js'
import { LOG_LEVELS, type LogLevel } from '../runtime/logs.js'
import { safeText } from '../safe-text.js'
import { MAX_TIMER_MS } from '../timers.js'
import { createFetch, loadApi } from './api.js'
import { FETCH_FLAG_OPTIONS, fetchOptions, pairs } from './fetch-flags.js'
import { withDownloadProgress } from './download-progress.js'
import { startMocks, type MockWiring } from './mocks.js'
import { progressOn } from './progress.js'
import { screenOf, summaryLines } from './summary.js'
import { parse, print, readText, usage, UsageError, wholeNumber } from './usage.js'

const OPTIONS = {
  ...FETCH_FLAG_OPTIONS,
  mock: { type: 'string' },
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
  summary: { type: 'boolean' },
} as const

const PAGE_BYTES = 64 * 1024
const MAX_PAGES = 65536

type RunValues = ReturnType<typeof parse<typeof OPTIONS>>['values']

function checkNames(values: RunValues): void {
  if (values.isolation !== undefined && !['worker', 'inline', 'pool'].includes(values.isolation)) {
    throw new UsageError(`--isolation ${values.isolation}: expected worker, inline or pool`)
  }
  const level = values['log-level']
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level ${level}: expected one of ${LOG_LEVELS.join(', ')}`)
  }
  if (values.stdin && values.input !== undefined) throw new UsageError('give the input with --input or --stdin, not both')
}

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
  checkNames(values)
  const input = values.input?.startsWith('@') ? readText(values.input.slice(1), 'input file') : values.input
  const pages = wholeNumber(values['memory-max'], 'memory-max', '64 KiB pages', MAX_PAGES)
  const maxResponseBytes = wholeNumber(values['http-response-max'], 'http-response-max', 'bytes', Number.MAX_SAFE_INTEGER)
  const callTimeoutMs = wholeNumber(values.timeout, 'timeout', 'milliseconds', MAX_TIMER_MS)
  const config = pairs(values.config, 'config', 'KEY=VALUE')
  const env = pairs(values['wasi-env'], 'wasi-env', 'NAME=VALUE')
  const args = values['wasi-arg']
  const wasi = args || env ? { ...(args ? { args } : {}), ...(env ? { env } : {}) } : undefined
  const limits = { ...(callTimeoutMs ? { callTimeoutMs } : {}), ...(pages ? { memoryBytes: pages * PAGE_BYTES } : {}) }
  const level = values['log-level'] as LogLevel | undefined
  return { exportName, wasm, manifest: values.manifest, input, level, maxResponseBytes, config, wasi, limits }
}

type RunPlan = ReturnType<typeof runPlan>

/** One decision line per request (`allowed GET url -> 200 (rule:x, 3 ms)`), or nothing with --verbose. */
function decisionLine(e: AuditEvent) {
  // A refusal's reason may quote what the capsule sent (an unknown key, a header name): escaped.
  const why = [e.reason, e.detail].filter((part) => part !== undefined).join(': ')
  const outcome = e.code ? `${e.code}: ${safeText(why)}` : `${e.status}`
  process.stderr.write(`${e.allowed ? 'allowed' : 'refused'} ${e.method ?? '-'} ${e.url ?? '-'} -> ${outcome} (${e.decidedBy ?? 'no decision'}, ${e.durationMs} ms)\n`)
}

/** The safe fetch options of the flags, with the mock upstreams' names allowed and resolved on top. */
function runFetchOptions(values: RunValues, plan: RunPlan, mocks: MockWiring | undefined, events: AuditEvent[]) {
  const flags = fetchOptions(values)
  const ca = [...(values.ca ? [readText(values.ca, 'CA file')] : []), ...(mocks?.ca ? [mocks.ca] : [])]
  return {
    ...flags,
    ...(mocks ? mocks.merge(flags) : {}),
    ...(ca.length ? { tls: { ca } } : {}),
    ...(plan.maxResponseBytes ? { limits: { maxResponseBytes: plan.maxResponseBytes } } : {}),
    ...(values.verbose ? { auditStream: process.stderr } : {}),
    onRequest: (e: AuditEvent) => {
      if (values.summary) events.push(e)
      if (!values.verbose) decisionLine(e)
    },
  }
}

function printSummary(events: readonly AuditEvent[]): void {
  const lines = summaryLines(events, screenOf(process.stderr, process.env))
  process.stderr.write(`${lines.join('\n')}\n`)
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(OPTIONS, args)
  if (values.help) return print(usage('run'))
  const plan = runPlan(values, positionals)
  const input = values.stdin ? await readAll(process.stdin) : plan.input
  const api = await loadApi()
  const mocks = values.mock === undefined ? undefined : await startMocks(values.mock)
  const events: AuditEvent[] = []
  try {
    const fetch = createFetch(api, runFetchOptions(values, plan, mocks, events))
    const runtime = api.createRuntime({
      fetch,
      ...(values.isolation ? { isolation: values.isolation as Isolation } : {}),
      limits: plan.limits,
      // The engine has made each line safe to print (control characters escaped, capped).
      ...(plan.level ? { logLevel: plan.level, onLog: (e) => void process.stderr.write(`[${e.level}] ${e.message}\n`) } : {}),
    })
    try {
      return await callOnce(runtime, plan, input)
    } finally {
      try {
        await runtime.close()
        await fetch.close()
      } finally {
        // Every request has ended (or was cut off) by now; the table is printed even when closing failed.
        if (values.summary) printSummary(events)
      }
    }
  } finally {
    await mocks?.close()
  }
}

async function callOnce(runtime: Runtime, plan: RunPlan, input: string | Buffer | undefined): Promise<number> {
  try {
    // A module given by URL downloads here: on a terminal, with its progress on stderr.
    const capsule = await withDownloadProgress(progressOn(process.stderr), () =>
      runtime.load({
        ...(plan.wasm ? { wasm: plan.wasm } : {}),
        ...(plan.manifest ? { manifest: plan.manifest } : {}),
        ...(plan.config ? { config: plan.config } : {}),
        ...(plan.wasi ? { wasi: plan.wasi } : {}),
      }),
    )
    const output = await capsule.call(plan.exportName, input)
    process.stdout.write(output.bytes())
    if (process.stdout.isTTY) process.stdout.write('\n')
    return 0
  } catch (error) {
    const code = (error as { code?: string }).code
    process.stderr.write(`capsule-host: ${code ? `${code}: ` : ''}${(error as Error).message}\n`)
    return 1
  }
}
