// Resolves an allowed host once per hop and checks every address in the answer against the address policy.
import { lookup } from 'node:dns/promises'
import { listenForAbort, type StopSignal } from '../abort-listeners.js'
import { cancelledBy, CapsuleHostError } from '../errors.js'
import type { NormalisedUrl } from '../url/normalise.js'
import type { AddressPolicy } from './address-policy.js'
import { classifyAddress, type ClassifiedAddress } from './classify.js'

/**
 * A resolver's answer: the addresses, or the addresses with how long they may be kept (`ttlMs`,
 * from the DNS record's TTL; a resolution cache honours it within its floor and ceiling).
 */
export type ResolverAnswer = readonly string[] | { readonly addresses: readonly string[]; readonly ttlMs?: number }

/** Maps a host name to its addresses. Injectable so tests can map names to loopback. */
export type Resolver = (hostname: string) => Promise<ResolverAnswer>

/** The addresses of an answer in either form (anything else is passed on, for classifyAnswer to refuse). */
export function answerAddresses(answer: unknown): unknown {
  if (Array.isArray(answer) || typeof answer !== 'object' || answer === null) return answer
  return (answer as { addresses?: unknown }).addresses
}

/** A resolver's synchronous view of its own fresh cached answers (set by the resolution cache). */
const cachedAnswers = new WeakMap<Resolver, (hostname: string) => readonly string[] | undefined>()

/** Lets resolveAddresses take `resolver`'s fresh cached answer at once: no timer, no race. */
export function withCachedAnswers(resolver: Resolver, fresh: (hostname: string) => readonly string[] | undefined): Resolver {
  cachedAnswers.set(resolver, fresh)
  return resolver
}

/** The system resolver (getaddrinfo), every address, in the order the system returns them. */
export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address)

/** The answer for one request: all addresses, each classified, and the one that is dialled. */
export interface CheckedAddresses {
  readonly addresses: readonly ClassifiedAddress[]
  /** The address the connection is pinned to: the first of the answer. */
  readonly pinned: ClassifiedAddress
}

/** Describes addresses for logs and explain(): `127.0.0.1 (loopback)`. Never sent to a capsule. */
export function describeAddresses(addresses: readonly ClassifiedAddress[]): string {
  return addresses
    .map((a) => {
      const inner = a.embedded.map((e) => `${e.form} ${e.address} (${e.class})`).join(', ')
      return `${a.address} (${a.class}${inner ? `; embeds ${inner}` : ''})`
    })
    .join(', ')
}

function blocked(url: NormalisedUrl, addresses: readonly ClassifiedAddress[], refused: readonly ClassifiedAddress[]): CapsuleHostError {
  const detail = describeAddresses(refused)
  const audit = { decidedBy: 'address-policy', detail: `${url.hostname} resolves to blocked addresses: ${detail}`, addressClass: refused[0]!.class }
  return url.ipLiteral === undefined
    ? new CapsuleHostError('blocked_address', `${url.hostname} resolves to an address that is not allowed`, {
        cause: new Error(`answer: ${describeAddresses(addresses)}`),
        ...audit,
      })
    : new CapsuleHostError('blocked_address', `${url.ipLiteral} is not an allowed address (${addresses[0]?.class})`, audit)
}

function classifyAnswer(hostname: string, answer: unknown): ClassifiedAddress[] {
  if (!Array.isArray(answer) || answer.length === 0) {
    throw new CapsuleHostError('dns_failed', `${hostname} did not resolve to any address`)
  }
  return answer.map((text) => {
    const classified = typeof text === 'string' ? classifyAddress(text) : undefined
    if (!classified) {
      throw new CapsuleHostError('dns_failed', `the resolver returned an invalid address for ${hostname}`, {
        cause: new Error(`invalid address in answer: ${JSON.stringify(text)}`),
      })
    }
    return classified
  })
}

/**
 * The resolver's answer for `url`'s host, or `timeout` (phase connect) after `timeoutMs`, or the
 * request's own reason (`timeout` phase total at its deadline, else `cancelled`) once it aborts.
 * One promise around the resolver's: no race, no wrapper per step.
 */
function lookupAnswer(url: NormalisedUrl, resolver: Resolver, timeoutMs: number, signal?: StopSignal): Promise<ResolverAnswer> {
  if (signal?.aborted) return Promise.reject(cancelledBy(signal))
  return new Promise<ResolverAnswer>((resolve, reject) => {
    const settle = (error: CapsuleHostError | undefined, answer?: ResolverAnswer) => {
      clearTimeout(timer)
      stopListening()
      if (error) reject(error)
      else resolve(answer!)
    }
    const dnsFailed = (cause: unknown) => settle(new CapsuleHostError('dns_failed', `${url.hostname} could not be resolved`, { cause }))
    const timer = setTimeout(
      () => settle(new CapsuleHostError('timeout', `resolving ${url.hostname} took longer than ${timeoutMs} ms`, { phase: 'connect' })),
      timeoutMs,
    )
    const stopListening = listenForAbort(signal, () => settle(cancelledBy(signal!)))
    let answer: Promise<ResolverAnswer>
    try {
      answer = Promise.resolve(resolver(url.hostname))
    } catch (cause) {
      return dnsFailed(cause)
    }
    answer.then((value) => settle(undefined, value), dnsFailed)
  })
}

/**
 * Resolves `url`'s host (or takes its IP literal) and classifies every address, on every call:
 * a cached answer is re-classified too. Asks the resolver once.
 */
export async function resolveAddresses(
  url: NormalisedUrl,
  resolver: Resolver,
  timeoutMs: number,
  signal?: StopSignal,
): Promise<ClassifiedAddress[]> {
  if (url.ipLiteral !== undefined) return classifyAnswer(url.hostname, [url.ipLiteral])
  const cached = cachedAnswers.get(resolver)?.(url.hostname)
  if (cached !== undefined) {
    if (signal?.aborted) throw cancelledBy(signal)
    return classifyAnswer(url.hostname, cached)
  }
  return classifyAnswer(url.hostname, answerAddresses(await lookupAnswer(url, resolver, timeoutMs, signal)))
}

/** Pins the first address, or refuses with `blocked_address` when any address in the answer is not allowed. */
export function checkAddresses(
  url: NormalisedUrl,
  addresses: readonly ClassifiedAddress[],
  policy: AddressPolicy,
): CheckedAddresses {
  const refused = addresses.filter((address) => !policy.isAllowed(address))
  if (refused.length > 0) throw blocked(url, addresses, refused)
  return { addresses, pinned: addresses[0]! }
}
