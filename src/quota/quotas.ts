// Quota declarations (host options and manifests): validated, compiled, and resolved to the checks one request needs.
import { z } from 'zod'
import type { NormalisedUrl } from '../url/normalise.js'
import type { QuotaCheck, QuotaRequest, QuotaRule, WindowQuota } from './types.js'

/** The longest window: a year (ms). */
const MAX_WINDOW_MS = 366 * 24 * 3600 * 1000

const WindowSchema = z.strictObject({
  limit: z.int().positive(),
  windowMs: z.int().positive().max(MAX_WINDOW_MS),
})

const LIMITS = {
  requests: WindowSchema.optional(),
  concurrent: z.int().positive().optional(),
  responseBytes: WindowSchema.optional(),
  perOrigin: z.boolean().optional(),
}

const hasALimit = (quota: { requests?: unknown; concurrent?: unknown; responseBytes?: unknown }) =>
  quota.requests !== undefined || quota.concurrent !== undefined || quota.responseBytes !== undefined
const NO_LIMIT = { message: 'a quota needs at least one of requests, concurrent, responseBytes' }

const QuotaRuleSchema = z
  .strictObject({
    key: z.custom<QuotaRule['key']>((v) => v === 'capsule' || typeof v === 'function', 'key must be "capsule" or a function of the request'),
    id: z.string().min(1).max(200).optional(),
    ...LIMITS,
  })
  .refine(hasALimit, NO_LIMIT)

const QuotaRulesSchema = z.array(QuotaRuleSchema).max(64)

/** A manifest's `quotas`: a quota on the capsule's own id, checked beside the host's (so it can only lower). */
export const ManifestQuotaSchema = z.strictObject(LIMITS).refine(hasALimit, NO_LIMIT)
export type ManifestQuota = z.infer<typeof ManifestQuotaSchema>

/** The quota id a manifest's quota gets. */
export const MANIFEST_QUOTA_ID = 'manifest'

/** The first issue of a failed parse, as `<path>.<field>[i]: <message>`. */
function firstIssue(error: z.ZodError, path: string): string {
  const issue = error.issues[0]!
  const where = issue.path.reduce<string>((at, part) => (typeof part === 'number' ? `${at}[${part}]` : `${at}.${String(part)}`), path)
  return `${where}: ${issue.message}`
}

/** A restriction's (a manifest's) `quotas` problem, or undefined. */
export function manifestQuotaProblem(value: unknown, path: string): string | undefined {
  const result = ManifestQuotaSchema.safeParse(value)
  return result.success ? undefined : firstIssue(result.error, path)
}

/** The `quotas` option's problem (a message for the TypeError), or undefined. */
export function quotasProblem(value: unknown, path: string): string | undefined {
  const result = QuotaRulesSchema.safeParse(value)
  if (!result.success) return firstIssue(result.error, path)
  const reserved = result.data.findIndex((rule) => rule.id === MANIFEST_QUOTA_ID)
  if (reserved >= 0) return `${path}[${reserved}].id: "${MANIFEST_QUOTA_ID}" is reserved for the quota of a capsule's manifest`
  const ids = result.data.map((rule, i) => rule.id ?? String(i))
  const twice = ids.find((id, i) => ids.indexOf(id) !== i)
  return twice === undefined ? undefined : `${path}: two quotas have the id "${twice}"`
}

/** A quota ready to resolve: its id and limits. */
export interface CompiledQuota {
  readonly id: string
  readonly key: QuotaRule['key']
  readonly requests: WindowQuota | undefined
  readonly concurrent: number | undefined
  readonly responseBytes: WindowQuota | undefined
  readonly perOrigin: boolean
}

function compiled(rule: QuotaRule, id: string): CompiledQuota {
  return { id, key: rule.key, requests: rule.requests, concurrent: rule.concurrent, responseBytes: rule.responseBytes, perOrigin: rule.perOrigin ?? false }
}

/** The host's quotas (validated by `quotasProblem` already), ids filled in. */
export function compileQuotas(rules: readonly QuotaRule[] | undefined): readonly CompiledQuota[] {
  return (rules ?? []).map((rule, i) => compiled(rule, rule.id ?? String(i)))
}

/** A session's quotas: the host's, plus the manifest's own on the capsule id. */
export function withManifestQuota(quotas: readonly CompiledQuota[], manifest: ManifestQuota | undefined): readonly CompiledQuota[] {
  return manifest ? [...quotas, compiled({ key: 'capsule', ...manifest }, MANIFEST_QUOTA_ID)] : quotas
}

/** What a key function sees of a request. */
export function quotaRequest(capsuleId: string, manifestName: string | undefined, kind: QuotaRequest['kind'], method: string, url: NormalisedUrl): QuotaRequest {
  const query = url.path.indexOf('?')
  return {
    capsuleId,
    manifestName,
    kind,
    method,
    origin: `${url.protocol}//${url.hostname}:${url.port}`,
    host: url.hostname,
    path: query < 0 ? url.path : url.path.slice(0, query),
  }
}

/**
 * The checks a request needs, with the quota of each (the same index), but none whose key is in
 * `held` (the request took it already). A key function that returns undefined exempts the request
 * from its quota; one that throws or returns something else than a string is a host bug (the
 * request fails `internal`).
 */
export function checksFor(quotas: readonly CompiledQuota[], request: QuotaRequest, held: ReadonlySet<string> = new Set()): { checks: QuotaCheck[]; quotas: CompiledQuota[] } {
  const checks: QuotaCheck[] = []
  const applied: CompiledQuota[] = []
  for (const quota of quotas) {
    const key = quota.key === 'capsule' ? request.capsuleId : quota.key(request)
    if (key === undefined) continue
    if (typeof key !== 'string') throw new TypeError(`the key function of quota "${quota.id}" returned ${typeof key}, not a string or undefined`)
    const checkKey = JSON.stringify(quota.perOrigin ? [quota.id, key, request.origin] : [quota.id, key])
    if (held.has(checkKey)) continue
    checks.push({ key: checkKey, requests: quota.requests, concurrent: quota.concurrent, responseBytes: quota.responseBytes })
    applied.push(quota)
  }
  return { checks, quotas: applied }
}

/** True when a check limits requests at once: the request then holds a lease in the store. */
export function holdsLeases(checks: readonly QuotaCheck[]): boolean {
  return checks.some((check) => check.concurrent !== undefined)
}
