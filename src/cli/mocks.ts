// `run --mock mocks.json`: the file's upstreams started on loopback, and the safe-fetch options that reach exactly them.
import type { Middleware } from '../middleware/types.js'
import { systemResolver, type Resolver } from '../net/resolve.js'
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

const defaultPort = (tls: boolean) => (tls ? 443 : 80)

/** One rule per upstream: its name, its scheme, on its own port and on the scheme's default port. */
function mockRules(upstreams: Upstreams): Rule[] {
  return upstreams.names.map((name) => {
    const { tls, port } = upstreams.upstream(name)
    return { host: name, httpsOnly: tls, port: [defaultPort(tls), port] }
  })
}

/** The upstream names to the loopback address; any other name as the flags would have resolved it. */
function mockResolver(upstreams: Upstreams, address: string, fallback: Resolver | undefined): Resolver {
  const names = new Set(upstreams.names)
  const other = fallback ?? systemResolver
  return async (hostname) => (names.has(hostname) ? [address] : other(hostname))
}

/**
 * A capsule written against a real API asks for `https://api.test/x`, on the default port; the
 * upstream listens on another. This sends such a request to the upstream's port (the gates judge
 * the new URL again, and the rules allow only that port besides the default).
 */
export function defaultPortRewrite(upstreams: Upstreams): Middleware {
  const names = new Set(upstreams.names)
  return async (ctx, next) => {
    const url = new URL(ctx.req.url)
    if (names.has(url.hostname) && url.port === '') {
      const upstream = upstreams.upstream(url.hostname)
      if (url.protocol === (upstream.tls ? 'https:' : 'http:')) {
        url.port = String(upstream.port)
        ctx.req.setUrl(url.href)
      }
    }
    return next()
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
    merge: (flags) => ({
      rules: [...mockRules(upstreams), ...flags.rules],
      resolver: mockResolver(upstreams, kit.UPSTREAM_ADDRESS, flags.resolver),
      addressPolicy: { unsafeAllow: [`${kit.UPSTREAM_ADDRESS}/32`, ...flags.addressPolicy.unsafeAllow] },
      middleware: defaultPortRewrite(upstreams),
    }),
    close: () => upstreams.close(),
  }
}
