// upstreamGate: the kit's gate that keeps the loopback exemption to the upstream servers (their names, schemes and ports).
import { isIP } from 'node:net'
import type { GateVerdict, SecurityGate } from '../gate/types.js'
import { defaultPortOf } from './default-port.js'
import type { Upstreams } from './upstreams.js'

/** The gate's name: refusals are `decidedBy: "gate:test-upstreams"`. */
export const UPSTREAM_GATE_NAME = 'test-upstreams'

const ALLOW: GateVerdict = { allow: true }
const refuse = (reason: string): GateVerdict => ({ allow: false, reason })

/**
 * Allows an upstream's name only with its own scheme, on its server's port or on that scheme's
 * default port (which `defaultPortRewrite` sends on to the server), and refuses a host that is an
 * IP literal unless `addressAllowed` says otherwise (the exempted address is reached by name only;
 * the kit allows none, `run --mock` those its --allow-address allows). Any other host passes: the
 * resolver gives the upstreams' address for their names only.
 */
export function upstreamGate(upstreams: Upstreams, addressAllowed: (address: string) => boolean = () => false): SecurityGate {
  const names = new Set(upstreams.names)
  return {
    name: UPSTREAM_GATE_NAME,
    check({ host, scheme, port }) {
      const address = host.replace(/^\[|\]$/g, '')
      if (isIP(address) !== 0 && !addressAllowed(address)) return refuse(`${host} is an address; the test host reaches its upstreams by name only`)
      if (!names.has(host)) return ALLOW
      const upstream = upstreams.upstream(host)
      const own = upstream.tls ? 'https' : 'http'
      if (scheme !== own) return refuse(`${host} is served over ${own} only`)
      const defaultPort = defaultPortOf(upstream.tls)
      if (port !== upstream.port && port !== defaultPort) return refuse(`${host} is served on port ${upstream.port} (or ${defaultPort}), not ${port}`)
      return ALLOW
    },
  }
}
