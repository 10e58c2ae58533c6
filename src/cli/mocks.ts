// `run --mock mocks.json`: the file's upstreams started on loopback, and the safe-fetch options that reach exactly them.
import type { Rule } from '../gate/rules.js'
import type { SecurityGate } from '../gate/types.js'
import type { MiddlewareOption } from '../middleware/types.js'
import { createAddressPolicy } from '../net/address-policy.js'
import { classifyAddress } from '../net/classify.js'
import { answerAddresses, systemResolver, type Resolver } from '../net/resolve.js'
import { defaultPortOf } from '../testing/default-port.js'
import { upstreamGate } from '../testing/gate.js'
import type { Upstreams } from '../testing/upstreams.js'
import { UsageError } from './usage.js'

/** What the flags gave the safe fetch before the mocks join in. */
interface FlagOptions {
  readonly rules: Rule[]
  readonly addressPolicy: { readonly unsafeAllow: readonly string[] }
  readonly resolver?: Resolver
}

/** What the mocks add to the flags' safe-fetch options. */
interface MockOptions {
  rules: Rule[]
  resolver: Resolver
  addressPolicy: { unsafeAllow: string[] }
  gates: SecurityGate[]
}

/** The started upstreams and how they join the safe fetch's options. */
export interface MockWiring {
  readonly upstreams: Upstreams
  /** The CA of the HTTPS upstreams, to trust; undefined when none serves HTTPS. */
  readonly ca: string | undefined
  /**
   * The flags' options with the upstreams' rules (the port mapping among them), names, exemption
   * and the kit's gate added: a mock name only with its scheme, on its server's port or that
   * scheme's default port, and no IP-literal host that only the mocks' exemption would let through.
   */
  merge(flags: FlagOptions): MockOptions
  close(): Promise<void>
}

/**
 * Two rules per upstream, as createTestHost makes them: its name and scheme on its own port, and
 * on the scheme's default port with the kit's defaultPortRewrite as origin middleware, which
 * sends the request on to the upstream's port (so only those requests run a middleware chain).
 */
function mockRules(upstreams: Upstreams, rewrite: MiddlewareOption): Rule[] {
  return upstreams.names.flatMap((name) => {
    const { tls, port } = upstreams.upstream(name)
    return [
      { host: name, httpsOnly: tls, port },
      { id: `${name}@default-port`, host: name, httpsOnly: tls, port: defaultPortOf(tls), middleware: rewrite },
    ]
  })
}

/** Whether the flags' own address policy (--allow-address, without the mocks' exemption) allows an address. */
function allowedByFlags(unsafeAllow: readonly string[]): (address: string) => boolean {
  const policy = createAddressPolicy({ unsafeAllow: [...unsafeAllow] })
  return (address) => {
    const classified = classifyAddress(address)
    return classified !== undefined && policy.isAllowed(classified)
  }
}

/**
 * The upstream names to the loopback address; any other name as the flags would have resolved it,
 * except to the mocks' own address (which the exemption would let through for any name): an answer
 * holding it is refused unless --allow-address allows that address by itself.
 */
function mockResolver(upstreams: Upstreams, address: string, fallback: Resolver | undefined, allowed: (address: string) => boolean): Resolver {
  const names = new Set(upstreams.names)
  const other = fallback ?? systemResolver
  return async (hostname) => {
    if (names.has(hostname)) return [address]
    const answer = await other(hostname)
    const addresses = answerAddresses(answer)
    if (Array.isArray(addresses) && addresses.includes(address) && !allowed(address)) {
      throw new Error(`${hostname} resolves to ${address}, which --mock exempts for its upstreams only (add --allow-address ${address}/32 to reach it)`)
    }
    return answer
  }
}

/** Reads and checks the mock file (a bad one is a usage error) and starts its upstreams. */
export async function startMocks(path: string): Promise<MockWiring> {
  const kit = await import('../testing/index.js')
  let description: Awaited<ReturnType<typeof kit.loadMocks>>
  try {
    description = await kit.loadMocks(path)
  } catch (error) {
    throw new UsageError(`--mock ${(error as Error).message}`)
  }
  const upstreams = await kit.startUpstreams(description)
  return {
    upstreams,
    ca: upstreams.ca,
    merge: (flags) => {
      const some = upstreams.names.length > 0
      const allowed = allowedByFlags(flags.addressPolicy.unsafeAllow)
      return {
        // First, so that a mock name is served by its upstream even when --allow names it too.
        rules: [...mockRules(upstreams, kit.defaultPortRewrite(upstreams)), ...flags.rules],
        resolver: mockResolver(upstreams, kit.UPSTREAM_ADDRESS, flags.resolver, allowed),
        addressPolicy: { unsafeAllow: [...(some ? [`${kit.UPSTREAM_ADDRESS}/32`] : []), ...flags.addressPolicy.unsafeAllow] },
        gates: some ? [upstreamGate(upstreams, allowed)] : [],
      }
    },
    close: () => upstreams.close(),
  }
}
