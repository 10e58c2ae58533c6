// `run --mock mocks.json`: the file's upstreams started on loopback, and the safe-fetch options that reach exactly them.
import type { Middleware } from '../middleware/types.js'
import { systemResolver, type Resolver } from '../net/resolve.js'
import { defaultPortOf } from '../testing/default-port.js'
import type { Upstreams } from '../testing/upstreams.js'
import type { Rule } from './fetch-flags.js'
import { UsageError } from './usage.js'

/** What the flags gave the safe fetch before the mocks join in. */
interface FlagOptions {
  readonly rules: Rule[]
  readonly addressPolicy: { readonly unsafeAllow: readonly string[] }
  readonly resolver?: Resolver
}

/** The started upstreams and how they join the safe fetch's options. */
export interface MockWiring {
  readonly upstreams: Upstreams
  /** The CA of the HTTPS upstreams, to trust; undefined when none serves HTTPS. */
  readonly ca: string | undefined
  /** The flags' options with the upstreams' rules, names, exemption and port mapping added. */
  merge(flags: FlagOptions): { rules: Rule[]; resolver: Resolver; addressPolicy: { unsafeAllow: string[] }; middleware: Middleware }
  close(): Promise<void>
}

/**
 * One rule per upstream: its name, its scheme, on its own port and on the scheme's default port
 * (which the kit's defaultPortRewrite sends on to its own), as createTestHost allows them.
 */
function mockRules(upstreams: Upstreams): Rule[] {
  return upstreams.names.map((name) => {
    const { tls, port } = upstreams.upstream(name)
    return { host: name, httpsOnly: tls, port: [defaultPortOf(tls), port] }
  })
}

/** The upstream names to the loopback address; any other name as the flags would have resolved it. */
function mockResolver(upstreams: Upstreams, address: string, fallback: Resolver | undefined): Resolver {
  const names = new Set(upstreams.names)
  const other = fallback ?? systemResolver
  return async (hostname) => (names.has(hostname) ? [address] : other(hostname))
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
    merge: (flags) => ({
      rules: [...mockRules(upstreams), ...flags.rules],
      resolver: mockResolver(upstreams, kit.UPSTREAM_ADDRESS, flags.resolver),
      addressPolicy: { unsafeAllow: [`${kit.UPSTREAM_ADDRESS}/32`, ...flags.addressPolicy.unsafeAllow] },
      middleware: kit.defaultPortRewrite(upstreams),
    }),
    close: () => upstreams.close(),
  }
}
