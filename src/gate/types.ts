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

/** What the gates decided, and which one decided it. */
export type Decision =
  | {
      readonly allowed: true
      readonly decidedBy: string
      /** The matched rule's and route's middleware, in that order (none when the policy or gates allowed). */
      readonly middleware?: readonly Middleware[]
      /** The matched route's parameters. */
      readonly params?: Readonly<Record<string, string>>
    }
  | {
      readonly allowed: false
      readonly decidedBy: string
      readonly reason: string
      /**
       * Absent: a refusal (`denied`). `timeout`: the deciding step (a gate or the policy) did not
       * answer within its host deadline; the request fails with `timeout`, phase `host`.
       */
      readonly code?: 'timeout'
    }
