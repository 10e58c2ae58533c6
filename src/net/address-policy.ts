// Decides whether a classified address may be dialled: global unicast, or inside a host-exempted CIDR (`unsafeAllow`).
import ipaddr from 'ipaddr.js'
import { describeValue, optionProblem, type OptionCheck } from '../options.js'
import { parseAddress, type ClassifiedAddress } from './classify.js'

export interface AddressPolicyOptions {
  /**
   * CIDRs (or single addresses) exempted from the blocklist, for tests and private deployments,
   * such as `["127.0.0.1/32"]`. Empty by default. An exemption never opens an IPv4 address that
   * an exempted IPv6 prefix wraps: the embedded address must pass on its own.
   */
  unsafeAllow?: readonly string[]
  /** @deprecated The old name of `unsafeAllow`, with the same meaning; give one of the two. */
  allow?: readonly string[]
}

const cidrList: OptionCheck = (value, path) => {
  if (!Array.isArray(value)) return `${path} must be an array of CIDR strings, such as ["127.0.0.1/32"], not ${describeValue(value)}`
  const i = value.findIndex((entry) => typeof entry !== 'string')
  return i < 0 ? undefined : `${path}[${i}] must be a CIDR string, such as "127.0.0.1/32", not ${describeValue(value[i])}`
}

/** The first problem with address policy options (unknown keys, shapes, both names given), or undefined. */
export function addressPolicyProblem(options: unknown, path = 'addressPolicy'): string | undefined {
  const problem = optionProblem(options, { unsafeAllow: cidrList, allow: cidrList }, `${path}.`, { allow: 'unsafeAllow' })
  if (problem !== undefined) return problem
  const given = options as AddressPolicyOptions | undefined
  if (given?.unsafeAllow !== undefined && given.allow !== undefined) {
    return `${path}: give "unsafeAllow" or its deprecated alias "allow", not both`
  }
  return undefined
}

export interface AddressPolicy {
  /** True when `address` (and every IPv4 it embeds) may be dialled. */
  isAllowed(address: ClassifiedAddress): boolean
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number]

// The address part goes through the same strict parser as the addresses it is matched against,
// so an entry such as `::127.0.0.1/128` means the address it spells (ipaddr.js reads it as mapped).
function parseAllowEntry(entry: string, name: string): Range {
  const slash = entry.indexOf('/')
  const address = parseAddress(slash < 0 ? entry : entry.slice(0, slash))
  const max = address?.kind() === 'ipv4' ? 32 : 128
  const prefix = slash < 0 ? String(max) : entry.slice(slash + 1)
  const bits = /^(0|[1-9]\d{0,2})$/.test(prefix) ? Number(prefix) : NaN
  if (!address || !(bits <= max)) {
    throw new TypeError(
      `${name}: "${entry}" is not a CIDR; write it as "127.0.0.1/32" or "fd00::/8"`,
    )
  }
  return [address, bits]
}

// Local-use NAT64 (RFC 8215) puts the IPv4 address at a place that depends on the operator's
// prefix length, so the address it carries cannot be checked: no exemption ever opens it.
const UNCHECKABLE_EMBEDDINGS: readonly Range[] = [ipaddr.parseCIDR('64:ff9b:1::/48')]

function inRanges(ranges: readonly Range[], address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits))
}

/** Throws a TypeError naming the option the host used (`addressPolicy.unsafeAllow` or `.allow`) when one is wrong. */
export function createAddressPolicy(options: AddressPolicyOptions = {}): AddressPolicy {
  const problem = addressPolicyProblem(options)
  if (problem !== undefined) throw new TypeError(problem)
  const name = options.allow !== undefined ? 'addressPolicy.allow' : 'addressPolicy.unsafeAllow'
  const allowed = (options.unsafeAllow ?? options.allow ?? []).map((entry) => parseAllowEntry(entry, name))
  return {
    isAllowed(address) {
      if (inRanges(UNCHECKABLE_EMBEDDINGS, address.parsed)) return false
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
