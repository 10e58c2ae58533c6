// The table of createSafeFetch's options and their checkers: unknown names and wrong shapes fail at creation.
import { middlewareList } from './middleware/compose.js'
import { addressPolicyProblem } from './net/address-policy.js'
import { resolutionCacheProblem } from './net/resolution-cache.js'
import { quotasProblem } from './quota/quotas.js'
import { telemetryOptionsProblem } from './telemetry/index.js'
import { checkOptions, describeValue, is, type OptionCheck } from './options.js'
import type { SafeFetchOptions } from './safe-fetch.js'

const isCertificate = (value: unknown) => typeof value === 'string' || Buffer.isBuffer(value)

const ca: OptionCheck = (value, path) => {
  if (!Array.isArray(value)) return isCertificate(value) ? undefined : `${path} must be a PEM string or Buffer, or an array of them, not ${describeValue(value)}`
  const i = value.findIndex((entry) => !isCertificate(entry))
  return i < 0 ? undefined : `${path}[${i}] must be a PEM string or Buffer, not ${describeValue(value[i])}`
}

const gates: OptionCheck = (value, path) => {
  if (!Array.isArray(value)) return `${path} must be an array of gates, such as [{ name: "tenant", check(request) { ... } }], not ${describeValue(value)}`
  const i = value.findIndex((gate) => !gate || typeof gate.name !== 'string' || gate.name === '' || typeof gate.check !== 'function')
  return i < 0 ? undefined : `${path}[${i}]: a gate is { name: string, check(request) }`
}

const rules: OptionCheck = (value, path) =>
  typeof value === 'object' && value !== null
    ? undefined
    : `${path} must be a rule or an array of rules, such as { host: "api.example.com" }, not ${describeValue(value)}`

const wholeNumber: OptionCheck = (value, path) =>
  Number.isInteger(value) && (value as number) >= 0 ? undefined : `${path} must be a whole number >= 0, not ${String(value)}`

const quotaStore: OptionCheck = (value, path) =>
  ['acquire', 'release', 'close'].every((name) => typeof (value as Record<string, unknown> | null)?.[name] === 'function')
    ? undefined
    : `${path} must be a quota store (acquire, release, close), such as memoryQuotaStore() or redisQuotaStore({ url }), not ${describeValue(value)}`

const sink: OptionCheck = (value, path) =>
  typeof (value as { write?: unknown } | null)?.write === 'function'
    ? undefined
    : `${path} must have a write(chunk) function, such as process.stderr, not ${describeValue(value)}`

/** Every option of createSafeFetch (the type makes a new option fail to compile until it is listed). */
const SAFE_FETCH_OPTIONS: Readonly<Record<keyof SafeFetchOptions, OptionCheck>> = {
  rules,
  policy: is.function,
  gates,
  resolver: is.function,
  dnsCache: resolutionCacheProblem,
  addressPolicy: addressPolicyProblem,
  tls: is.nested({ ca }),
  limits: is.object,
  maxRedirects: wholeNumber,
  onRequest: is.function,
  onError: is.function,
  auditStream: sink,
  middleware: is.thrownBy(middlewareList),
  quotas: quotasProblem,
  quotaStore: quotaStore,
  telemetry: telemetryOptionsProblem,
}

/** Throws a TypeError (`createSafeFetch: unknown option "rule"; did you mean "rules"?`) for the first problem. */
export function checkSafeFetchOptions(options: unknown): void {
  checkOptions('createSafeFetch', options, SAFE_FETCH_OPTIONS)
}
