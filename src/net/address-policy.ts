// Decides whether a classified address may be dialled: global unicast, or inside a host-allowed CIDR.
import ipaddr from 'ipaddr.js'
import type { ClassifiedAddress } from './classify.js'

export interface AddressPolicyOptions {
  /**
   * CIDRs (or single addresses) exempted from the blocklist, for tests and private deployments,
   * such as `["127.0.0.1/32"]`. Empty by default. An exemption never opens an IPv4 address that
   * an exempted IPv6 prefix wraps: the embedded address must pass on its own.
   */
  allow?: readonly string[]
}

export interface AddressPolicy {
  /** True when `address` (and every IPv4 it embeds) may be dialled. */
  isAllowed(address: ClassifiedAddress): boolean
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number]

function parseAllowEntry(entry: string): Range {
  try {
    if (entry.includes('/')) return ipaddr.parseCIDR(entry)
    const address = ipaddr.parse(entry)
    return [address, address.kind() === 'ipv4' ? 32 : 128]
  } catch {
    throw new TypeError(
      `addressPolicy.allow: "${entry}" is not a CIDR; write it as "127.0.0.1/32" or "fd00::/8"`,
    )
  }
}

function inRanges(ranges: readonly Range[], address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits))
}

export function createAddressPolicy(options: AddressPolicyOptions = {}): AddressPolicy {
  const allowed = (options.allow ?? []).map(parseAllowEntry)
  return {
    isAllowed(address) {
      const self = address.class === 'unicast' || inRanges(allowed, address.parsed)
      return (
        self &&
        address.embedded.every(
          (inner) => inner.class === 'unicast' || inRanges(allowed, ipaddr.IPv4.parse(inner.address)),
        )
      )
    },
  }
}
