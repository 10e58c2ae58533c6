// The security-gate interface: what a gate sees of a request, and the verdict it returns.
import type { Middleware } from '../middleware/types.js'

/** A request as every gate sees it: already normalised, decided on the name before any DNS lookup. */
export interface GateRequest {
  readonly capsuleId: string
  /** The normalised URL, exactly as it will be sent. */
  readonly url: string
  readonly scheme: 'http' | 'https'
  /** Lower-case, punycode, no trailing dot; IPv6 literals in brackets. */
  readonly host: string
  readonly port: number
  /** Path and query, exactly as sent. */
  readonly path: string
  /** Upper-case method. */
  readonly method: string
  /** 0 for the capsule's request, 1.. for each redirect hop followed. */
  readonly hop: number
  /**
   * Resolves the host and checks every address, exactly as the connection will (the resolver is
   * asked once per hop, whoever calls). Rejects with `blocked_address` or `dns_failed`.
   */
  resolve(): Promise<readonly string[]>
}

export type GateVerdict = { readonly allow: true } | { readonly allow: false; readonly reason: string }

/** A host-supplied check. All gates must allow; a gate that throws denies. */
export interface SecurityGate {
  readonly name: string
  check(request: GateRequest): GateVerdict | Promise<GateVerdict>
}

/**
 * Who decides a request, as the audit log and `explain()` name it: one of these stages, or
 * `rule:<id>` for an origin rule and `gate:<name>` for a host gate. The list is closed and documented
 * (docs/rules.md); a failure after an allow keeps the stage that allowed.
 */
export const DECIDING_STAGES = [
  'validation',
  'stream-table',
  'manifest',
  'rules',
  'policy',
  'gates',
  'default',
  'address-policy',
  'resolver',
  'pending',
  'request-options',
  'middleware',
  'quota-store',
] as const
export type DecidingStage = (typeof DECIDING_STAGES)[number]
/** A stage, a rule (`rule:<id>`), a gate (`gate:<name>`) or a quota (`quota:<id>`). */
export type Decider = DecidingStage | `rule:${string}` | `gate:${string}` | `quota:${string}`

/**
 * Why a request was refused: stable phrases, like Smokescreen's, so a host can count and alert on
 * them. What the request was (its path, its method, the address) is in the event's `detail`.
 */
export const DENY_REASONS = [
  'invalid request',
  'too many open streams',
  'not declared in the manifest',
  'no rule matches the host',
  'scheme not allowed',
  'port not allowed',
  'no route matches the path',
  'method not allowed on the route',
  'refused by the policy',
  'the policy failed',
  'refused by a gate',
  'a gate failed',
  'a host step did not answer in time',
  'nothing is configured',
  'blocked address',
  'redirects refused by the request',
  'invalid redirect',
  'refused by middleware',
  'over quota',
  'quota store unavailable',
] as const
export type DenyReason = (typeof DENY_REASONS)[number]

/** An allow, credited to the rule (and route), the policy or the gates. */
export interface Allowed {
  readonly allowed: true
  readonly decidedBy: Decider
  /** The matched route's pattern. */
  readonly route?: string
  /** The matched rule's and route's middleware, in that order (none when the policy or gates allowed). */
  readonly middleware?: readonly Middleware[]
  /** The matched route's parameters. */
  readonly params?: Readonly<Record<string, string>>
}

/** A refusal: who, the stable reason, and the detail (which may name the request's host, path or method). */
export interface Refused {
  readonly allowed: false
  readonly decidedBy: Decider
  readonly reason: DenyReason
  readonly detail: string
  /**
   * Absent: a refusal (`denied`). `timeout`: the deciding step (a gate or the policy) did not
   * answer within its host deadline; the request fails with `timeout`, phase `host`.
   */
  readonly code?: 'timeout'
  /** For `a gate failed` and `the policy failed`: what the host callback threw (the host's onError gets it). */
  readonly thrown?: unknown
}

/** What the gates decided, and which one decided it. */
export type Decision = Allowed | Refused
