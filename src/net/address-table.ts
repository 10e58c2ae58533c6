// The special-purpose address blocks, as data: every IANA IPv4 block and the IPv6 blocks inside 2000::/3.

/** The name of an address class. Only `unicast` is reachable unless the host allows more. */
export type AddressClass =
  | 'unicast'
  | 'this-network'
  | 'private'
  | 'cgnat'
  | 'loopback'
  | 'link-local'
  | 'ietf-protocol'
  | 'documentation'
  | 'as112'
  | 'amt'
  | '6to4-relay'
  | 'benchmarking'
  | 'multicast'
  | 'reserved'
  | 'broadcast'
  | 'unspecified'
  | 'ipv4-mapped'
  | 'ipv4-compatible'
  | 'ipv4-translated'
  | 'nat64'
  | 'discard'
  | 'teredo'
  | '6to4'
  | 'orchid'
  | 'unique-local'
  | 'site-local'
  | 'not-global-unicast'
  | 'platform'

export type Row = readonly [cidr: string, addressClass: AddressClass, source: string]

/**
 * IANA IPv4 Special-Purpose Address Registry plus multicast and the limited broadcast address.
 * Every row is refused, including the few the registry marks globally reachable (AS112, AMT):
 * no capsule has business with that infrastructure. More specific rows come first.
 * https://www.iana.org/assignments/iana-ipv4-special-registry/
 * Also `platform`: addresses that are public unicast by IANA but answer as a cloud platform's
 * own endpoint (metadata-like) from inside that cloud.
 */
export const IPV4_SPECIAL: readonly Row[] = [
  ['0.0.0.0/8', 'this-network', 'RFC 791 §3.2'],
  ['10.0.0.0/8', 'private', 'RFC 1918'],
  ['100.64.0.0/10', 'cgnat', 'RFC 6598'],
  ['127.0.0.0/8', 'loopback', 'RFC 1122 §3.2.1.3'],
  ['168.63.129.16/32', 'platform', 'Azure WireServer (DHCP, DNS, health probes, VM agent; not in the IANA registry): https://learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16'],
  ['169.254.0.0/16', 'link-local', 'RFC 3927'],
  ['172.16.0.0/12', 'private', 'RFC 1918'],
  ['192.0.0.0/24', 'ietf-protocol', 'RFC 6890 §2.1 (includes DS-Lite, PCP/TURN anycast, NAT64 discovery)'],
  ['192.0.2.0/24', 'documentation', 'RFC 5737 TEST-NET-1'],
  ['192.31.196.0/24', 'as112', 'RFC 7535'],
  ['192.52.193.0/24', 'amt', 'RFC 7450'],
  ['192.88.99.0/24', '6to4-relay', 'RFC 7526 (deprecated 6to4 relay anycast)'],
  ['192.168.0.0/16', 'private', 'RFC 1918'],
  ['192.175.48.0/24', 'as112', 'RFC 7534 (direct delegation AS112)'],
  ['198.18.0.0/15', 'benchmarking', 'RFC 2544'],
  ['198.51.100.0/24', 'documentation', 'RFC 5737 TEST-NET-2'],
  ['203.0.113.0/24', 'documentation', 'RFC 5737 TEST-NET-3'],
  ['224.0.0.0/4', 'multicast', 'RFC 5771'],
  ['255.255.255.255/32', 'broadcast', 'RFC 919 / RFC 8190'],
  ['240.0.0.0/4', 'reserved', 'RFC 1112 §4'],
]

/**
 * IPv6 is an allow-list: only 2000::/3 (global unicast) is reachable, minus the special blocks
 * inside it listed here. Rows outside 2000::/3 are listed only to name the class in logs; any
 * other address outside 2000::/3 is `not-global-unicast`, so blocks the registry adds there
 * later are refused by construction.
 * https://www.iana.org/assignments/iana-ipv6-special-registry/
 */
export const IPV6_GLOBAL_UNICAST = '2000::/3'

export const IPV6_SPECIAL: readonly Row[] = [
  // Inside 2000::/3: refused explicitly.
  ['2001::/32', 'teredo', 'RFC 4380'],
  ['2001:2::/48', 'benchmarking', 'RFC 5180'],
  ['2001:10::/28', 'orchid', 'RFC 4843 (deprecated)'],
  ['2001:20::/28', 'orchid', 'RFC 7343 ORCHIDv2'],
  ['2001::/23', 'ietf-protocol', 'RFC 2928 (PCP/TURN anycast, AMT, AS112-v6, DRIP, ...)'],
  ['2001:db8::/32', 'documentation', 'RFC 3849'],
  ['2002::/16', '6to4', 'RFC 3056'],
  ['2620:4f:8000::/48', 'as112', 'RFC 7534 (direct delegation AS112)'],
  ['3fff::/20', 'documentation', 'RFC 9637'],
  // Outside 2000::/3: refused anyway; the rows give the class a name.
  ['::/128', 'unspecified', 'RFC 4291 §2.5.2'],
  ['::1/128', 'loopback', 'RFC 4291 §2.5.3'],
  ['::ffff:0:0/96', 'ipv4-mapped', 'RFC 4291 §2.5.5.2'],
  ['::ffff:0:0:0/96', 'ipv4-translated', 'RFC 2765 (SIIT)'],
  ['::/96', 'ipv4-compatible', 'RFC 4291 §2.5.5.1 (deprecated)'],
  ['64:ff9b::/96', 'nat64', 'RFC 6052'],
  ['64:ff9b:1::/48', 'nat64', 'RFC 8215 (local-use NAT64; never exempted: see address-policy.ts)'],
  ['100::/64', 'discard', 'RFC 6666'],
  ['100:0:0:1::/64', 'discard', 'RFC 9780 (dummy prefix)'],
  ['5f00::/16', 'reserved', 'RFC 9602 (SRv6 SIDs)'],
  ['fc00::/7', 'unique-local', 'RFC 4193'],
  ['fe80::/10', 'link-local', 'RFC 4291 §2.5.6'],
  ['fec0::/10', 'site-local', 'RFC 3879 (deprecated)'],
  ['ff00::/8', 'multicast', 'RFC 4291 §2.7'],
]

/**
 * IPv6 blocks that carry an IPv4 address, and where. Each embedded IPv4 is classified too, so an
 * address-policy exemption for one of these prefixes can never open the IPv4 it wraps.
 * `bits` is the bit offset of the 32-bit address; `xor` undoes Teredo's obfuscation.
 */
export const IPV6_EMBEDDINGS: ReadonlyArray<{
  readonly cidr: string
  readonly form: string
  readonly embedded: ReadonlyArray<{ readonly bits: number; readonly xor: boolean }>
}> = [
  { cidr: '::ffff:0:0/96', form: 'ipv4-mapped', embedded: [{ bits: 96, xor: false }] },
  { cidr: '::ffff:0:0:0/96', form: 'ipv4-translated', embedded: [{ bits: 96, xor: false }] },
  { cidr: '::/96', form: 'ipv4-compatible', embedded: [{ bits: 96, xor: false }] },
  { cidr: '64:ff9b::/96', form: 'nat64', embedded: [{ bits: 96, xor: false }] },
  { cidr: '2002::/16', form: '6to4', embedded: [{ bits: 16, xor: false }] },
  // Teredo: server IPv4 at bits 32-63, client IPv4 (inverted) at bits 96-127.
  { cidr: '2001::/32', form: 'teredo', embedded: [{ bits: 32, xor: false }, { bits: 96, xor: true }] },
]
