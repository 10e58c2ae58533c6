// Resolves an allowed host once and checks every address in the answer against the address policy.
import { lookup } from 'node:dns/promises'
import { CapsuleHostError } from '../errors.js'
import type { NormalisedUrl } from '../url/normalise.js'
import type { AddressPolicy } from './address-policy.js'
import { classifyAddress, type ClassifiedAddress } from './classify.js'

/** Maps a host name to its addresses. Injectable so tests can map names to loopback. */
export type Resolver = (hostname: string) => Promise<readonly string[]>

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

async function lookupAnswer(url: NormalisedUrl, resolver: Resolver, timeoutMs: number, signal?: AbortSignal) {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new CapsuleHostError('timeout', `resolving ${url.hostname} took longer than ${timeoutMs} ms`, { phase: 'connect' })),
      timeoutMs,
    )
    onAbort = () => reject(new CapsuleHostError('cancelled', 'the request was cancelled'))
    if (signal?.aborted) onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([
      Promise.resolve()
        .then(() => resolver(url.hostname))
        .catch((cause: unknown) => {
          throw new CapsuleHostError('dns_failed', `${url.hostname} could not be resolved`, { cause })
        }),
      stop,
    ])
  } finally {
    clearTimeout(timer)
    if (onAbort) signal?.removeEventListener('abort', onAbort)
  }
}

/** Resolves `url`'s host (or takes its IP literal) and classifies every address. Asks the resolver once. */
export async function resolveAddresses(
  url: NormalisedUrl,
  resolver: Resolver,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ClassifiedAddress[]> {
  const answer = url.ipLiteral === undefined ? await lookupAnswer(url, resolver, timeoutMs, signal) : [url.ipLiteral]
  return classifyAnswer(url.hostname, answer)
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
